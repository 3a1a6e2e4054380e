"""``consentdesk`` (no subcommand) and ``consentdesk sidebar``: open the agent sidebar."""

from __future__ import annotations

import argparse
from typing import Any

from consentdesk.cli.common import Context, UsageError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sidebar",
        help="open the agent sidebar (what plain `consentdesk` does)",
        description="Open the agent sidebar. With --caller it opens on that caller as a "
        "manual call, e.g. consentdesk sidebar --caller +4915112345678",
    )
    p.add_argument(
        "--caller",
        metavar="NUMBER",
        help="open with this caller as a manual call (any number format)",
    )
    # Read by gui.telephony_glue.attach_telephony. Declared here, not imported from
    # there, so that building the parser never loads Qt (``consentdesk call`` must
    # return at once).
    p.add_argument(
        "--baresip",
        metavar="HOST:PORT",
        default=argparse.SUPPRESS,
        help="baresip ctrl_tcp address (overrides telephony.baresip; '' turns it off)",
    )
    p.set_defaults(handler=launch_sidebar)


def launch_sidebar(args: argparse.Namespace, ctx: Context) -> int:
    """Run the sidebar until the agent closes it; a display problem is one clear line."""
    caller = getattr(args, "caller", None)
    number = None
    if caller is not None:
        # Only here: libphonenumber's metadata costs tens of ms before the first paint.
        from consentdesk.domain import phone

        try:
            number = phone.normalize(caller, ctx.region)
        except phone.InvalidNumber as exc:
            raise UsageError(f"--caller: {exc}") from None
    from consentdesk.gui.app import DisplayUnavailable

    try:
        from consentdesk.gui.main import run_sidebar

        return run_sidebar(ctx, args, caller=number)
    except DisplayUnavailable as exc:
        raise UsageError(str(exc)) from None
    except ImportError as exc:
        raise UsageError(
            f"cannot start the sidebar: {exc} (is PySide6 installed with its system libraries?)"
        ) from None
