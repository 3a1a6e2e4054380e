"""Handing a call to the running sidebar: the sidebar's half, and the spool.

One sidebar runs per user and data folder. It listens on a local socket
(``gui.ipc`` owns the Qt server); ``consentdesk call`` and ``open-uri`` are
short-lived clients that must return at once. Their lean half (paths, wire
format, socket client, spool writer) is :mod:`consentdesk.telephony.handoff_client`;
this module adds what only the sidebar needs, still without Qt:

* :func:`decode_body` checks a message; :func:`event_from_message` turns a
  hook or URI into a :class:`CallEvent`, normalising the number in the
  sidebar (the client never loads the phone-number library).
* spool: when no sidebar listens yet, the message is written to a private
  spool folder and a sidebar is started; it drains the spool once it listens.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sys
import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consentdesk.domain.model import DomainError, to_jsonable
from consentdesk.telephony.events import (
    CallEvent,
    CallPhase,
    CallSource,
    call_event_from_json,
    is_valid_call_id,
)
from consentdesk.telephony.handoff_client import (
    HEADER,
    LAUNCH_GRACE_S,
    MAX_MESSAGE,
    PHASES,
    PROTOCOL,
    Delivery,
    FrameReader,
    HandoffError,
    InstancePaths,
    Outcome,
    claim_launch,
    control_message,
    encode_message,
    hook_message,
    release_launch,
    spool_message,
    uri_message,
)
from consentdesk.telephony.handoff_client import send_message as send_message_outcome

__all__ = [
    "HEADER",
    "LAUNCH_GRACE_S",
    "MAX_MESSAGE",
    "PROTOCOL",
    "CallIdResolver",
    "Delivery",
    "FrameReader",
    "HandoffError",
    "InstanceLock",
    "InstancePaths",
    "Outcome",
    "call_message",
    "claim_launch",
    "control_message",
    "decode_body",
    "drain_spool",
    "encode_message",
    "event_from_message",
    "hook_message",
    "release_launch",
    "send_message",
    "send_message_outcome",
    "send_to_running",
    "spool_event",
    "spool_message",
    "uri_message",
]

log = logging.getLogger("consentdesk.telephony")

SPOOL_MAX_FILES = 64
SPOOL_MAX_AGE_S = 120.0  # an older hand-off is no longer a live call
MAX_HOOK_TEXT = 2048


class InstanceLock:
    """An OS file lock held for the sidebar's lifetime; a crash releases it.

    Qt's ``listen`` with socket options renames its socket over any existing
    one, so it cannot tell a live instance from a stale socket by itself; the
    lock makes "who owns the name" race-free.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False if another process holds it."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if sys.platform == "win32":
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing drops the lock


# --- messages ----------------------------------------------------------------------


def call_message(event: CallEvent) -> dict[str, Any]:
    """A call already normalised (the baresip connector, tests, the Qt client)."""
    return {"v": PROTOCOL, "kind": "call", "event": to_jsonable(event)}


def _text(message: dict[str, Any], key: str) -> str:
    value = message.get(key, "")
    if not isinstance(value, str) or len(value) > MAX_HOOK_TEXT:
        raise HandoffError(f"hand-off {key} must be text of at most {MAX_HOOK_TEXT} characters")
    return value


def _at(message: dict[str, Any]) -> datetime:
    """The hook's time: seconds since the epoch, as the client's clock read it."""
    value = message.get("at")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HandoffError("hand-off time must be seconds since the epoch")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise HandoffError("hand-off time is out of range") from None


def decode_body(body: bytes) -> dict[str, Any]:
    """Parse and check one message body; raises HandoffError with a reason safe to log.

    A ``call`` message's event is decoded; a ``hook`` or ``uri`` message is
    checked for shape only: :func:`event_from_message` parses its number.
    """
    try:
        message = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        raise HandoffError("hand-off message is not UTF-8 JSON") from None
    if not isinstance(message, dict) or message.get("v") != PROTOCOL:
        raise HandoffError("hand-off message has an unknown protocol version")
    kind = message.get("kind")
    if kind == "call":
        try:
            message["event"] = call_event_from_json(message.get("event"))
        except DomainError as exc:
            raise HandoffError(f"hand-off call is malformed: {exc}") from None
    elif kind == "hook":
        call_id = _text(message, "call_id")
        if call_id and not is_valid_call_id(call_id):
            raise HandoffError("--call-id must be 1-256 printable ASCII characters without spaces")
        if message.get("phase") not in PHASES:
            raise HandoffError("hand-off phase must be incoming, answered or ended")
        _text(message, "number")
        message["at"] = _at(message)
    elif kind == "uri":
        _text(message, "uri")
        message["at"] = _at(message)
    elif kind not in ("show", "drain"):
        raise HandoffError("hand-off message has an unknown kind")
    return message


def event_from_message(message: dict[str, Any], *, region: str) -> CallEvent:
    """The call a decoded ``call``/``hook``/``uri`` message carries, its number
    normalised for *region*; HandoffError (one line, no number) if unusable."""
    kind = message.get("kind")
    if kind == "call":
        event: CallEvent = message["event"]
        return event
    from consentdesk.telephony.numbers import InvalidCaller, parse_caller
    from consentdesk.telephony.uri import parse_call_uri

    try:
        if kind == "hook":
            caller = parse_caller(message["number"], region=region)
            return CallEvent(
                phase=CallPhase(message["phase"]),
                call_id=message["call_id"],
                source=CallSource.COMMAND,
                number=caller.number,
                raw_number=caller.raw,
                display_name=caller.display_name,
                at=message["at"],
            )
        if kind == "uri":
            event = parse_call_uri(message["uri"], region=region)
            return dataclasses.replace(event, at=message["at"])
    except (InvalidCaller, DomainError) as exc:
        raise HandoffError(str(exc)) from None
    raise HandoffError("hand-off message carries no call")


def send_message(paths: InstancePaths, message: dict[str, Any], *, timeout_ms: int) -> Delivery:
    """Deliver *message* over the POSIX socket; how far it got."""
    return send_message_outcome(paths, message, connect_ms=timeout_ms, ack_ms=timeout_ms).delivery


def send_to_running(paths: InstancePaths, event: CallEvent, *, timeout_ms: int = 150) -> bool:
    """True if the running sidebar has *event* (see :attr:`Delivery.delivered`)."""
    return send_message(paths, call_message(event), timeout_ms=timeout_ms).delivered


# --- spool --------------------------------------------------------------------------


def spool_event(paths: InstancePaths, event: CallEvent) -> Path:
    """Leave *event* for the sidebar that is about to start (atomic, private file)."""
    return spool_message(paths, call_message(event))


def drain_spool(
    paths: InstancePaths, *, region: str = "", now: float | None = None
) -> list[CallEvent]:
    """Take every spooled call, oldest first; stale, broken or refused ones are dropped."""
    spool = paths.spool_dir
    try:
        names = sorted(p for p in spool.iterdir() if p.suffix == ".json")
    except FileNotFoundError:
        return []
    now = time.time() if now is None else now
    if len(names) > SPOOL_MAX_FILES:
        log.warning("hand-off spool held %d events; dropping the oldest", len(names))
    keep = names[-SPOOL_MAX_FILES:]
    events: list[CallEvent] = []
    for path in names:
        try:
            size = path.stat().st_size
            body = path.read_bytes() if size <= MAX_MESSAGE and path in keep else b""
        except OSError:
            continue
        finally:
            with contextlib.suppress(OSError):
                path.unlink()
        if not body:
            continue
        try:
            event = event_from_message(decode_body(body), region=region)
        except HandoffError as exc:
            log.warning("dropped a spooled hand-off: %s", exc)
            continue
        if now - event.at.timestamp() > SPOOL_MAX_AGE_S:
            log.info("dropped a spooled hand-off older than %d s", SPOOL_MAX_AGE_S)
            continue
        events.append(event)
    return events


# --- call ids for hand-offs that name none --------------------------------------


class CallIdResolver:
    """Give hand-off events without a call id one id per call.

    MicroSIP's ``cmdCallAnswer``/``cmdCallEnd`` pass only the number, so the
    answered and ended steps are matched to the open call from that number.
    Lives in the sidebar process, which sees every hand-off.
    """

    MAX_OPEN = 32

    def __init__(self) -> None:
        self._open: OrderedDict[str, str] = OrderedDict()

    @staticmethod
    def new_id() -> str:
        return f"desk-{uuid.uuid4().hex}"

    def resolve(self, event: CallEvent) -> CallEvent:
        if event.call_id:
            return event
        key = event.number or event.raw_number
        if event.phase == CallPhase.INCOMING:
            call_id = self.new_id()
            self._open[key] = call_id
        elif event.phase == CallPhase.ANSWERED:
            call_id = self._open.get(key) or self.new_id()
            self._open[key] = call_id
        else:
            call_id = self._open.pop(key, "") or self.new_id()
        while len(self._open) > self.MAX_OPEN:
            self._open.popitem(last=False)
        return dataclasses.replace(event, call_id=call_id)
