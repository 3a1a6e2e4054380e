"""Team server sign-ins: ``token create|list|revoke`` and ``enroll-code create``.

A token's lifetime is ``--expires DAYS`` (0: never), by default the site's
``CONSENTDESK_TOKEN_DAYS`` (365 when unset). An enrollment code is a short
one-time code a lead reads or sends to an agent; the agent types it into the
sidebar's sign-in once and the desk receives its own token.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from consentdesk.cli.common import Context, UsageError
from consentdesk.cli.server_cmds import _database_option, _engine, _run

if TYPE_CHECKING:
    from consentdesk.server.tokens import TokenInfo

TOKEN_DAYS_ENV = "CONSENTDESK_TOKEN_DAYS"
DEFAULT_TOKEN_DAYS = 365


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = sub.add_parser("token", help="team server tokens: create, list, revoke")
    token_sub = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = token_sub.add_parser(
        "create", help="make a sign-in token for a user (printed once, stored only as a hash)"
    )
    create.add_argument("name")
    _expires_option(create)
    create.add_argument("--label", help="what the token is for, shown by token list")
    _database_option(create)
    create.set_defaults(handler=cmd_token_create)

    listing = token_sub.add_parser("list", help="list tokens: id, user, state, expiry, last use")
    listing.add_argument("--user", help="only this user's tokens")
    listing.add_argument("--json", action="store_true")
    _database_option(listing)
    listing.set_defaults(handler=cmd_token_list)

    revoke = token_sub.add_parser(
        "revoke", help="revoke a token (by the id from token list) or all of a user's tokens"
    )
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", help="the token's id from token list")
    which.add_argument("--user", help="revoke every token of this user")
    _database_option(revoke)
    revoke.set_defaults(handler=cmd_token_revoke)

    enroll = sub.add_parser("enroll-code", help="one-time enrollment codes for desks")
    enroll_sub = enroll.add_subparsers(dest="enroll_command", metavar="ACTION", required=True)
    code = enroll_sub.add_parser(
        "create", help="make a short one-time code an agent types into the sidebar's sign-in"
    )
    code.add_argument("name", help="the user the desk signs in as")
    code.add_argument(
        "--hours", type=_positive, default=24, help="how long the code is valid (default 24)"
    )
    _expires_option(code)
    _database_option(code)
    code.set_defaults(handler=cmd_enroll_code_create)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("must be a whole number of 1 or more")
    return int(text)


def _days(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError("must be a number of days (0: never expires)")
    return int(text)


def _expires_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--expires",
        metavar="DAYS",
        type=_days,
        help=f"token lifetime in days, 0 for none (default {TOKEN_DAYS_ENV} or "
        f"{DEFAULT_TOKEN_DAYS})",
    )


def token_days(args: argparse.Namespace) -> int:
    """The lifetime asked for, else the site default from the environment."""
    if args.expires is not None:
        return int(args.expires)
    text = os.environ.get(TOKEN_DAYS_ENV, "").strip()
    if not text:
        return DEFAULT_TOKEN_DAYS
    if not text.isdigit():
        raise UsageError(f"{TOKEN_DAYS_ENV} must be a number of days (0: never), not {text!r}")
    return int(text)


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def cmd_token_create(args: argparse.Namespace, ctx: Context) -> int:
    def body() -> int:
        from consentdesk.server import tokens

        token, info = tokens.create_token(
            _engine(args), args.name, days=token_days(args), label=args.label
        )
        print(token)
        expires = f"expires {_when(info.expires_at)}" if info.expires_at else "never expires"
        print(
            f"Token {info.id} for {args.name}, {expires}. Shown once: the server keeps only "
            "its hash. Paste it into the sidebar's sign-in, which stores it in the OS keyring.",
            file=sys.stderr,
        )
        return 0

    return _run(body)


def cmd_token_list(args: argparse.Namespace, ctx: Context) -> int:
    def body() -> int:
        from consentdesk.server import tokens

        now = tokens.utcnow()
        found = tokens.list_tokens(_engine(args), user=args.user)
        if args.json:
            from consentdesk.cli.common import print_json

            print_json([{**_row(t), "state": t.state(now)} for t in found])
            return 0
        print("ID\tUSER\tSTATE\tCREATED\tEXPIRES\tLAST USED\tLABEL")
        for t in found:
            cells = (t.id, t.user, t.state(now), _when(t.created_at), _when(t.expires_at))
            print("\t".join((*cells, _when(t.last_used_at), t.label or "")))
        return 0

    return _run(body)


def _row(t: TokenInfo) -> dict[str, object]:
    from dataclasses import asdict

    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(t).items()}


def cmd_token_revoke(args: argparse.Namespace, ctx: Context) -> int:
    def body() -> int:
        from consentdesk.server import tokens

        count = tokens.revoke(_engine(args), token_id=args.id, user=args.user)
        what = f"token {args.id}" if args.id else f"{count} token(s) of {args.user}"
        if args.id and count == 0:
            print(f"token {args.id} was already revoked")
        else:
            print(f"revoked {what}: refused from the next request on")
        return 0

    return _run(body)


def cmd_enroll_code_create(args: argparse.Namespace, ctx: Context) -> int:
    def body() -> int:
        from consentdesk.server import tokens

        code, expires = tokens.create_code(
            _engine(args), args.name, token_days=token_days(args), hours=args.hours
        )
        print(code)
        print(
            f"One-time code for {args.name}, valid until {_when(expires)}. The agent types it "
            "into the sidebar: Settings → Team server → Token or code → Sign in.",
            file=sys.stderr,
        )
        return 0

    return _run(body)
