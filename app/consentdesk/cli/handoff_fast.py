"""The fast path of ``consentdesk call`` and ``open-uri`` to a running sidebar.

Softphones run these on every call and wait. When a sidebar listens, the
command needs no config, no argparse tree and no phone-number library: it
reads its few options by hand, sends what it was given, and waits for the
sidebar's answer. Anything unusual (``--help``, a bad option, no sidebar
listening) returns ``None`` and the full command line takes over.

Exit codes: 0 acknowledged; 2 the sidebar refused the call (bad number or
URI, one-line reason); 1 the sidebar took the bytes but did not answer.
"""

from __future__ import annotations

import os
import sys

from consentdesk.telephony.handoff_client import (
    PHASES,
    Delivery,
    HandoffError,
    InstancePaths,
    Outcome,
    hook_message,
    uri_message,
    valid_call_id,
)
from consentdesk.telephony.handoff_client import send_message as socket_send

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

CONNECT_MS = 150  # no sidebar answers the connect in this time: none runs
ACK_MS = 1000  # a sidebar that took the call must confirm it within this
CALL_ID_RULE = "--call-id must be 1-256 printable ASCII characters without spaces"
_GLOBAL = ("--data-dir", "--config")


class FastArgs:
    """The few options a hand-off takes (a plain class: dataclasses import slowly)."""

    def __init__(self) -> None:
        self.command = ""
        self.data_dir: str | None = None
        self.config: str | None = None
        self.target: str | None = None  # NUMBER or URI
        self.call_id = ""
        self.event = "incoming"


def _take(argv: Sequence[str], i: int) -> tuple[str, str | None, int]:
    """Option name, its value (``--opt=v`` or ``--opt v``) and the next index."""
    name, eq, value = argv[i].partition("=")
    if eq:
        return name, value, i + 1
    if i + 1 < len(argv):
        return name, argv[i + 1], i + 2
    return name, None, i + 1


def parse(argv: Sequence[str]) -> FastArgs | None:
    """The hand-off's arguments, or None if argparse should read this command line."""
    i, found = 0, FastArgs()
    while i < len(argv) and argv[i].startswith("--"):
        name, value, i = _take(argv, i)
        if name not in _GLOBAL or value is None:
            return None
        setattr(found, name[2:].replace("-", "_"), value)
    if i >= len(argv) or argv[i] not in ("call", "open-uri"):
        return None
    found.command = argv[i]
    i += 1
    while i < len(argv):
        arg = argv[i]
        if (
            arg.startswith("-")
            and found.command == "call"
            and arg.split("=")[0]
            in (
                "--call-id",
                "--event",
            )
        ):
            name, value, i = _take(argv, i)
            if value is None:
                return None
            setattr(found, name[2:].replace("-", "_"), value)
        elif arg.startswith("-") or found.target is not None:
            return None  # an option we do not handle here, or a second positional
        else:
            found.target, i = arg, i + 1
    if found.target is None or found.event not in PHASES:
        return None
    return found


def instance_of(fast: FastArgs) -> InstancePaths:
    """The sidebar to talk to. With no folder named, the default folder's sidebar
    answers under an alias, so its path (platformdirs) need not be computed here."""
    chosen = fast.data_dir or os.environ.get("CONSENTDESK_DATA_DIR")
    if chosen:
        return InstancePaths.for_data_dir(chosen)
    if os.name == "nt":
        from consentdesk.telephony.handoff_client import default_data_dir

        return InstancePaths.for_data_dir(default_data_dir())
    return InstancePaths.default_alias()


def message_of(fast: FastArgs) -> dict[str, Any]:
    assert fast.target is not None
    if fast.command == "call":
        return hook_message(fast.target, call_id=fast.call_id, phase=fast.event)
    return uri_message(fast.target)


def deliver(paths: InstancePaths, message: dict[str, Any]) -> Outcome:
    if os.name == "nt":
        # Named pipes: Qt's client is the reliable one there.
        from consentdesk.gui.ipc import send_message as qt_send

        return qt_send(paths, message, timeout_ms=CONNECT_MS, ack_ms=ACK_MS)
    return socket_send(paths, message, connect_ms=CONNECT_MS, ack_ms=ACK_MS)


def report(outcome: Outcome) -> int | None:
    """Exit code for a reached sidebar (printing why on failure); None if none listens."""
    if outcome.delivery is Delivery.ACKED:
        return 0
    if outcome.delivery is Delivery.REFUSED:
        print(f"consentdesk: the sidebar refused the call: {outcome.error}", file=sys.stderr)
        return 2
    if outcome.delivery is Delivery.SENT:
        print(
            f"consentdesk: the sidebar did not acknowledge the call ({outcome.error})",
            file=sys.stderr,
        )
        return 1
    return None


def run_fast(argv: Sequence[str]) -> int | None:
    """Hand the call to a running sidebar; None to fall back to the full command."""
    fast = parse(argv)
    if fast is None:
        return None
    if fast.call_id and not valid_call_id(fast.call_id):
        print(f"consentdesk: {CALL_ID_RULE}", file=sys.stderr)
        return 2
    try:
        return report(deliver(instance_of(fast), message_of(fast)))
    except (HandoffError, OSError):
        return None  # the full command reports it properly
