"""Team server commands: ``serve``, ``db upgrade|verify``, ``user add|disable|enable|list``
(tokens and enrollment codes: :mod:`consentdesk.cli.token_cmds`).

They need the ``server`` extra; its packages are imported only when one of
these commands runs, so the desktop CLI stays quick and works without them.
Every command takes ``--database URL`` or ``CONSENTDESK_DATABASE``; a SQLite
URL (``sqlite:////path/ledger.db``) works the same as a PostgreSQL one.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from consentdesk.cli.common import Context, UsageError

DATABASE_ENV = "CONSENTDESK_DATABASE"
ROLES = ("agent", "lead", "admin")
EXTRA_HINT = "this command needs the server extra: pip install 'consentdesk[server]'"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the team ledger server (HTTP API under /v1)",
        description="Run the team ledger server. Run `consentdesk db upgrade` first.",
    )
    _database_option(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_port, default=8765, help="port (default 8765)")
    serve.add_argument(
        "--workers", type=_workers, default=1, help="server processes sharing the port"
    )
    serve.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    serve.add_argument("--openapi", action="store_true", help="print the OpenAPI document and exit")
    serve.set_defaults(handler=cmd_serve)

    db = sub.add_parser("db", help="team server database: upgrade the schema, verify the chain")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = db_sub.add_parser("upgrade", help="create or migrate the schema to this version")
    _database_option(upgrade)
    upgrade.set_defaults(handler=cmd_db_upgrade)
    verify = db_sub.add_parser("verify", help="check the ledger's hash chain end to end")
    _database_option(verify)
    verify.add_argument(
        "--key",
        action="append",
        metavar="PUBKEY",
        help="a public key of the log (repeat for keys it had before a rotation); "
        "default: CONSENTDESK_LOG_KEY's and CONSENTDESK_LOG_PUBLIC_KEYS",
    )
    verify.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="a checkpoint of this ledger held elsewhere (e.g. fetched from /v1/log/checkpoint)",
    )
    verify.set_defaults(handler=cmd_db_verify)
    log_key = db_sub.add_parser(
        "log-key", help="make a signing key for the server's log (prints private and public key)"
    )
    log_key.add_argument("--origin", required=True, help="the log's name, e.g. ledger.example.com")
    log_key.set_defaults(handler=cmd_db_log_key)

    user = sub.add_parser("user", help="team server users: add, disable, enable, list")
    user_sub = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    add = user_sub.add_parser("add", help="add a user")
    add.add_argument("name", help="the user's id, recorded as the agent on captures")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--team", help="team (required for a lead; an agent's lead sees it)")
    _database_option(add)
    add.set_defaults(handler=cmd_user_add)
    for action, help_text in (("disable", "block a user's tokens"), ("enable", "unblock")):
        p = user_sub.add_parser(action, help=help_text)
        p.add_argument("name")
        _database_option(p)
        p.set_defaults(handler=cmd_user_disable, disable=action == "disable")
    listing = user_sub.add_parser("list", help="list users")
    listing.add_argument("--json", action="store_true")
    _database_option(listing)
    listing.set_defaults(handler=cmd_user_list)

    from consentdesk.cli import token_cmds

    token_cmds.register(sub)


def _database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database",
        metavar="URL",
        help=f"postgresql://user@host/db or sqlite:////path/file.db (env {DATABASE_ENV})",
    )


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError("must be a port number from 1 to 65535")
    return int(text)


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError("must be from 1 to 64")
    return int(text)


def _database_url(args: argparse.Namespace) -> str:
    url = args.database or os.environ.get(DATABASE_ENV)
    if not url:
        raise UsageError(f"give --database URL or set {DATABASE_ENV}")
    return str(url)


@contextmanager
def _server_errors() -> Iterator[None]:
    """Missing extra and database trouble become one line, never a traceback."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in (
            "fastapi",
            "uvicorn",
            "sqlalchemy",
            "alembic",
            "psycopg",
            "starlette",
            "pydantic",
        ):
            raise UsageError(EXTRA_HINT) from None
        raise
    except Exception as exc:
        from sqlalchemy.exc import SQLAlchemyError

        from consentdesk.domain.backend import BackendError

        if isinstance(exc, SQLAlchemyError):
            raise BackendError(f"database error: {_first_line(exc)}") from None
        if isinstance(exc, BackendError):
            raise
        raise


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _engine(args: argparse.Namespace, *, current: bool = True) -> Any:
    from consentdesk.server import db

    engine = db.make_engine(_database_url(args))
    if current:
        db.check_schema(engine)
    return engine


def _store(args: argparse.Namespace) -> Any:
    from consentdesk.domain.catalogue import load_catalogue
    from consentdesk.domain.scripts import load_scripts
    from consentdesk.server.store import Store

    return Store(_engine(args), catalogue=load_catalogue(), scripts=load_scripts())


def _run(body: Callable[[], int]) -> int:
    with _server_errors():
        return body()


def cmd_serve(args: argparse.Namespace, ctx: Context) -> int:
    def body() -> int:
        import uvicorn

        from consentdesk.server import app as server_app

        if args.openapi:
            from consentdesk.server.db import make_engine

            doc = server_app.create_app(make_engine("sqlite://")).openapi()
            json.dump(doc, sys.stdout, indent=2, ensure_ascii=False, sort_keys=True)
            sys.stdout.write("\n")
            return 0
        from consentdesk.platform.calendar import calendar_env, controller_calendar
        from consentdesk.server.db import make_engine, wait_for_database

        url = _database_url(args)
        calendar = controller_calendar(ctx.config)
        _setup_logging(args.log_level)
        engine = make_engine(url)
        wait_for_database(engine)  # a database still starting is waited for
        common: dict[str, Any] = {
            "host": args.host,
            "port": args.port,
            "access_log": False,  # uvicorn's names the full path, numbers included
            "log_config": None,
            "log_level": args.log_level,
            "proxy_headers": False,
        }
        if args.workers > 1:
            engine.dispose()
            os.environ[DATABASE_ENV] = url
            os.environ.update(calendar_env(calendar))
            uvicorn.run(
                "consentdesk.server.app:app_from_env", factory=True, workers=args.workers, **common
            )
        else:
            uvicorn.run(server_app.create_app(engine, calendar=calendar), **common)
        return 0

    return _run(body)


def _setup_logging(level: str) -> None:
    from consentdesk.platform.logs import FORMAT, RedactingFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for name in ("consentdesk", "uvicorn"):
        logging.getLogger(name).setLevel(level.upper())


def cmd_db_upgrade(args: argparse.Namespace, ctx: Context) -> int:
    def body() -> int:
        from consentdesk.server import db

        engine = _engine(args, current=False)
        before = db.current_revision(engine)
        after = db.upgrade(engine)
        print(f"schema {before or 'empty'} → {after}" if before != after else f"schema {after}")
        from consentdesk.server import log_store

        # Entries written before the log existed join the tree now, not in the first append.
        with db.write_transaction(engine) as conn:
            size = log_store.tree_size(conn)
            log_store.extend(conn, log_store.load_signer())
            grown = log_store.tree_size(conn) - size
        if grown:
            print(f"log: {grown} earlier entries added to the tree", file=sys.stderr)
        return 0

    return _run(body)


def cmd_db_verify(args: argparse.Namespace, ctx: Context) -> int:
    def body() -> int:
        from consentdesk.cli.log_cmds import server_audit

        store = _store(args)
        report = store.verify()
        tree = server_audit(store.engine, args.key, args.checkpoint)
        if not tree.ok:
            problems = "; ".join(tree.problems)
            print(f"BROKEN: {problems} ({tree.size} entries in the database)", file=sys.stderr)
            return 1
        if report.ok:
            print(f"OK {report.checked} entries")
            return 0
        print(f"BROKEN at entry {report.first_bad_seq}: {report.message}", file=sys.stderr)
        return 1

    return _run(body)


def cmd_user_add(args: argparse.Namespace, ctx: Context) -> int:
    def body() -> int:
        from consentdesk.domain.review import Role

        _store(args).add_user(args.name, Role(args.role), team=args.team)
        team = f" in team {args.team}" if args.team else ""
        print(f"added {args.role} {args.name}{team}")
        return 0

    return _run(body)


def cmd_user_disable(args: argparse.Namespace, ctx: Context) -> int:
    def body() -> int:
        _store(args).set_disabled(args.name, args.disable)
        print(f"{'disabled' if args.disable else 'enabled'} {args.name}")
        return 0

    return _run(body)


def cmd_user_list(args: argparse.Namespace, ctx: Context) -> int:
    def body() -> int:
        viewers = _store(args).users()
        if args.json:
            from consentdesk.cli.common import print_json

            print_json(viewers)
        else:
            for v in viewers:
                print(f"{v.name}\t{v.role}\t{v.team or ''}")
        return 0

    return _run(body)


def cmd_db_log_key(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.domain.checkpoint import CheckpointError, Signer

    try:
        signer = Signer.generate(args.origin)
    except CheckpointError as exc:
        raise UsageError(f"--origin: {exc}") from None
    print(
        f"private (set CONSENTDESK_LOG_KEY, or put it in CONSENTDESK_LOG_KEY_FILE): {signer.text()}"
    )
    print(f"public (publish it): {signer.verifier().text()}")
    return 0
