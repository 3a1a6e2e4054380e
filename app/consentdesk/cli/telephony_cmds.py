"""``consentdesk call``, ``open-uri`` and ``calls``: softphone hand-off and recent calls.

``call`` and ``open-uri`` are run by softphones and the desktop on every call
and must return at once (MicroSIP waits for them), so this module imports
nothing heavy at load time and never imports Qt on POSIX. With a sidebar
running, :mod:`consentdesk.cli.handoff_fast` answers before this module is
even loaded; this is the full path (help, errors, starting a sidebar).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from consentdesk.cli.common import Context, UsageError, print_json

if TYPE_CHECKING:
    import subprocess

PHASES = ("incoming", "answered", "ended")
APP_MODULE = "consentdesk"

# Sidebars started by this process. Kept referenced so the child is not
# reported as leaked; it runs in its own session and outlives us.
_LAUNCHED: list[subprocess.Popen[bytes]] = []


def register(sub: Any) -> None:
    p = sub.add_parser(
        "call",
        help="hand a call to the running sidebar (softphone hook); starts one if needed",
        description="Pop the caller in the sidebar. Returns at once; for MicroSIP's "
        "cmdIncomingCall / cmdCallAnswer / cmdCallEnd and similar softphone hooks.",
    )
    p.add_argument("number", metavar="NUMBER", help="caller number, tel: or sip: URI")
    p.add_argument("--call-id", metavar="ID", default="", help="the softphone's call id")
    p.add_argument("--event", choices=PHASES, default="incoming", help="call step (incoming)")
    p.set_defaults(handler=call_cmd)

    p = sub.add_parser(
        "open-uri",
        help="hand a consentdesk://, tel: or sip: URI to the sidebar (URL handler)",
        description="What the desktop runs for consentdesk://call?number=…&id=…&event=… "
        "and tel:/sip: links.",
    )
    # Optional: a desktop launcher runs "open-uri %u" with no URL when the
    # agent just starts the app; that opens (or raises) the sidebar.
    p.add_argument("uri", metavar="URI", nargs="?")
    p.set_defaults(handler=open_uri_cmd)

    p = sub.add_parser("calls", help="this shift's recent calls")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=calls_cmd)


# --- hand-off ---------------------------------------------------------------------


def call_cmd(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.cli.handoff_fast import CALL_ID_RULE
    from consentdesk.telephony.handoff_client import hook_message, valid_call_id

    if args.call_id and not valid_call_id(args.call_id):
        raise UsageError(CALL_ID_RULE)
    return hand_off(hook_message(args.number, call_id=args.call_id, phase=args.event), ctx, args)


def open_uri_cmd(args: argparse.Namespace, ctx: Context) -> int:
    if args.uri is None:
        return show_sidebar(ctx, args)
    from consentdesk.telephony.handoff_client import uri_message

    return hand_off(uri_message(args.uri), ctx, args)


def show_sidebar(ctx: Context, args: argparse.Namespace) -> int:
    """Bring the running sidebar forward, or start one; never waits for it."""
    from consentdesk.cli.handoff_fast import deliver
    from consentdesk.telephony.handoff_client import (
        HandoffError,
        InstancePaths,
        claim_launch,
        control_message,
    )

    try:
        paths = InstancePaths.for_data_dir(ctx.data_dir)
        reached = deliver(paths, control_message("show")).delivery.delivered
        if not reached and claim_launch(paths):
            start_sidebar(ctx, args)
    except (HandoffError, OSError) as exc:
        print(f"consentdesk: cannot open the sidebar: {exc}", file=sys.stderr)
        return 1
    return 0


def hand_off(message: dict[str, Any], ctx: Context, args: argparse.Namespace) -> int:
    """Give a hook or URI message to the running sidebar (which answers whether
    it took it), or check it here, spool it and start a sidebar."""
    from consentdesk.cli.handoff_fast import deliver, report
    from consentdesk.telephony.handoff import decode_body, encode_message, event_from_message
    from consentdesk.telephony.handoff_client import (
        HEADER,
        HandoffError,
        InstancePaths,
        claim_launch,
        control_message,
        spool_message,
    )

    try:
        paths = InstancePaths.for_data_dir(ctx.data_dir)
        code = report(deliver(paths, message))
        if code is not None:
            return code
        # No sidebar yet: refuse a bad number or URI now, as a running one would.
        try:
            body = encode_message(message)[HEADER.size :]
            event_from_message(decode_body(body), region=ctx.region)
        except HandoffError as exc:
            raise UsageError(str(exc)) from None
        spool_message(paths, message)
        # A sidebar may have started listening since the first try: nudge it.
        if deliver(paths, control_message("drain")).delivery.delivered:
            return 0
        if claim_launch(paths):
            start_sidebar(ctx, args)
    except (HandoffError, OSError) as exc:
        print(f"consentdesk: cannot hand the call to the sidebar: {exc}", file=sys.stderr)
        return 1
    return 0


def sidebar_command(ctx: Context, args: argparse.Namespace) -> list[str]:
    """Command line of a sidebar for the same data folder and config as this call."""
    base = [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-m", APP_MODULE]
    cmd = [*base, "--data-dir", str(ctx.data_dir)]
    if getattr(args, "config", None):
        cmd += ["--config", str(args.config)]
    return cmd  # no subcommand: plain ``consentdesk`` opens the sidebar


def start_sidebar(ctx: Context, args: argparse.Namespace) -> None:
    """Start a detached sidebar; it drains the spooled call once it listens."""
    import subprocess

    options: dict[str, Any] = {
        "stdin": subprocess.DEVNULL,
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
        "close_fds": True,
    }
    if sys.platform == "win32":
        flags = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
        options["creationflags"] = flags
    else:
        options["start_new_session"] = True
    _LAUNCHED.append(subprocess.Popen(sidebar_command(ctx, args), **options))


# --- recent calls -------------------------------------------------------------------


def calls_cmd(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.telephony.calls import RecentCalls

    records = RecentCalls.open(ctx.data_dir, ctx.config).recent()
    if args.json:
        print_json(records)
        return 0
    if not records:
        print("No calls this shift.")
        return 0
    from consentdesk.domain import phone

    print(f"{'time':8}  {'caller':20}  {'name':18}  {'answered':8}  {'ended':8}  captures  source")
    for r in records:
        who = phone.display(r.number) if r.number else (r.raw_number or "withheld")
        print(
            f"{r.incoming_at.astimezone():%H:%M:%S}  {who[:20]:20}  {r.display_name[:18]:18}  "
            f"{_clock(r.answered_at):8}  {_clock(r.ended_at):8}  {len(r.captures):8}  {r.source}"
        )
    return 0


def _clock(value: Any) -> str:
    return f"{value.astimezone():%H:%M:%S}" if value is not None else "-"
