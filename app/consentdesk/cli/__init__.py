"""The ``consentdesk`` command: the sidebar by default, or a subcommand.

Each subcommand group lives in its own module with ``register(subparsers)``;
a handler takes ``(args, ctx)`` and returns the exit code. User mistakes raise
:class:`UsageError` (or a DomainError/BackendError) and become one line on
stderr with a non-zero exit, never a traceback.

``call`` and ``open-uri`` to a running sidebar take a fast path
(:mod:`consentdesk.cli.handoff_fast`) before anything else is imported:
softphones wait for them on every call.
"""

from __future__ import annotations

import sys

from consentdesk import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (hand-off speed)
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

# Subcommand modules, in help order. Each has register(subparsers).
COMMAND_MODULES = [
    "consentdesk.cli.ledger_cmds",
    "consentdesk.cli.support_cmds",
    "consentdesk.cli.telephony_cmds",
    "consentdesk.cli.server_cmds",
    "consentdesk.cli.sidebar_cmds",
    "consentdesk.cli.review_cmds",
    "consentdesk.cli.config_cmds",
    "consentdesk.cli.outbox_cmds",
    "consentdesk.cli.log_cmds",
    "consentdesk.cli.changes_cmds",
    "consentdesk.cli.webhook_cmds",
    "consentdesk.cli.mail_cmds",
]
SERVER_COMMANDS = "consentdesk.cli.server_cmds"
# Commands that open a window: a broken config shows an error window there, since
# a menu or autostart launch has no terminal to print the one-line error to.
WINDOW_COMMANDS = {None, "sidebar", "open-uri"}


def server_available() -> bool:
    """Whether this installation carries the team server (the desktop build leaves it out)."""
    import importlib.util

    try:
        return importlib.util.find_spec("consentdesk.server") is not None
    except (ImportError, ValueError):
        return False


def build_parser(*, server: bool | None = None) -> argparse.ArgumentParser:
    """The whole command line; server commands only where the server can run."""
    import importlib

    from consentdesk.cli.common import ArgumentParser

    if server is None:
        server = server_available()

    parser = ArgumentParser(
        prog="consentdesk",
        description="Consent Desk: consent status and privacy requests beside the softphone.",
    )
    parser.add_argument("--version", action="version", version=f"consentdesk {__version__}")
    parser.add_argument(
        "--data-dir", metavar="DIR", help="ledger and state folder (env CONSENTDESK_DATA_DIR)"
    )
    parser.add_argument("--config", metavar="FILE", help="user config file to read instead")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="check this installation: open the sidebar offscreen on demo data, then exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        if server or name != SERVER_COMMANDS:
            importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from consentdesk.cli.handoff_fast import run_fast

    fast = run_fast(sys.argv[1:] if argv is None else argv)
    if fast is not None:
        return fast
    from consentdesk.cli.common import UsageError, context_from_args, run_handler

    parser = build_parser()
    args = parser.parse_args(argv)
    from consentdesk.platform.logs import setup_logging

    handler = getattr(args, "handler", None)
    try:
        setup_logging()
        if getattr(args, "without_context", False):
            # ``config check`` reads the files itself: it must run when they are broken.
            return run_handler(handler, args, None)  # type: ignore[arg-type]
        ctx = context_from_args(args)
    except ValueError as exc:  # a bad CONSENTDESK_LOG_LEVEL
        print(f"consentdesk: {exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"consentdesk: {exc}", file=sys.stderr)
        if args.command in WINDOW_COMMANDS and not args.smoke:
            from consentdesk.gui.config_error import show_startup_error

            show_startup_error(str(exc))
        return 2
    if args.smoke:
        from consentdesk.smoke import run_smoke

        handler = run_smoke
    if handler is None:
        from consentdesk.cli.sidebar_cmds import launch_sidebar

        handler = launch_sidebar
    return run_handler(handler, args, ctx)


if __name__ == "__main__":
    sys.exit(main())
