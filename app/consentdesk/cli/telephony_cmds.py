"""``consentdesk call``, ``open-uri`` and ``calls``: softphone hand-off and recent calls.

``call`` and ``open-uri`` are run by softphones and the desktop on every call
and must return at once (MicroSIP waits for them), so this module imports
nothing heavy at load time and never imports Qt on POSIX.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from consentdesk.cli.common import Context, UsageError, print_json

if TYPE_CHECKING:
    import subprocess

    from consentdesk.telephony.events import CallEvent
    from consentdesk.telephony.handoff import InstancePaths

HANDOFF_TIMEOUT_MS = 150
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
    from consentdesk.telephony.events import CallEvent, CallPhase, CallSource, is_valid_call_id
    from consentdesk.telephony.numbers import parse_caller

    if args.call_id and not is_valid_call_id(args.call_id):
        raise UsageError("--call-id must be 1-256 printable ASCII characters without spaces")
    caller = parse_caller(args.number, region=ctx.region)
    event = CallEvent(
        phase=CallPhase(args.event),
        call_id=args.call_id,
        source=CallSource.COMMAND,
        number=caller.number,
        raw_number=caller.raw,
        display_name=caller.display_name,
    )
    return hand_off(event, ctx, args)


def open_uri_cmd(args: argparse.Namespace, ctx: Context) -> int:
    if args.uri is None:
        return show_sidebar(ctx, args)
    from consentdesk.telephony.uri import parse_call_uri

    return hand_off(parse_call_uri(args.uri, region=ctx.region), ctx, args)


def show_sidebar(ctx: Context, args: argparse.Namespace) -> int:
    """Bring the running sidebar forward, or start one; never waits for it."""
    from consentdesk.telephony.handoff import (
        HandoffError,
        InstancePaths,
        claim_launch,
        control_message,
    )

    try:
        paths = InstancePaths.for_data_dir(ctx.data_dir)
        if not _deliver(paths, control_message("show")) and claim_launch(paths):
            start_sidebar(ctx, args)
    except (HandoffError, OSError) as exc:
        print(f"consentdesk: cannot open the sidebar: {exc}", file=sys.stderr)
        return 1
    return 0


def _deliver(paths: InstancePaths, message: dict[str, Any]) -> bool:
    if os.name == "nt":
        # Named pipes: Qt's client is the reliable one there.
        from consentdesk.gui.ipc import send_message as qt_send

        return qt_send(paths, message, timeout_ms=HANDOFF_TIMEOUT_MS).delivered
    from consentdesk.telephony.handoff import send_message

    return send_message(paths, message, timeout_ms=HANDOFF_TIMEOUT_MS).delivered


def hand_off(event: CallEvent, ctx: Context, args: argparse.Namespace) -> int:
    """Give *event* to the running sidebar, or spool it and start one; never waits."""
    from consentdesk.telephony.handoff import (
        HandoffError,
        InstancePaths,
        call_message,
        claim_launch,
        control_message,
        spool_event,
    )

    try:
        paths = InstancePaths.for_data_dir(ctx.data_dir)
        if _deliver(paths, call_message(event)):
            return 0
        spool_event(paths, event)
        # A sidebar may have started listening since the first try: nudge it.
        if _deliver(paths, control_message("drain")):
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
