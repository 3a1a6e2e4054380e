"""Handing a call to the running sidebar: instance paths, wire format, spool.

One sidebar runs per user and data folder. It listens on a local socket
(``gui.ipc`` owns the Qt server); ``consentdesk call`` and ``open-uri`` are
short-lived clients that must return at once. This module is their Qt-free
half, so that hand-off never pays for importing Qt:

* wire format: 4-byte big-endian length, then a UTF-8 JSON object, at most
  :data:`MAX_MESSAGE` bytes; the server answers with one frame ``{"ok": …}``.
* spool: when no sidebar listens yet, the event is written to a private spool
  folder and a sidebar is started; it drains the spool once it listens.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import getpass
import hashlib
import json
import logging
import os
import re
import socket
import stat
import struct
import sys
import time
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from consentdesk.domain.model import DomainError, to_jsonable
from consentdesk.platform.config import APP
from consentdesk.telephony.events import CallEvent, CallPhase, call_event_from_json

log = logging.getLogger("consentdesk.telephony")

PROTOCOL = 1
MAX_MESSAGE = 8 * 1024
HEADER = struct.Struct(">I")
SPOOL_MAX_FILES = 64
SPOOL_MAX_AGE_S = 120.0  # an older hand-off is no longer a live call
LAUNCH_GRACE_S = 30.0  # a sidebar start older than this is presumed failed


class HandoffError(Exception):
    """Hand-off cannot work here (unsafe runtime folder, bad message); safe to show."""


# --- where the instance lives --------------------------------------------------


def _user_key() -> str:
    if hasattr(os, "getuid"):
        return str(os.getuid())
    return re.sub(r"[^A-Za-z0-9_.-]", "_", getpass.getuser())[:32] or "user"


def _private_runtime_dir() -> Path:
    """The per-user runtime folder, created 0700 and checked to be ours."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to a
        # private folder under the temp dir; that fallback is what we want.
        warnings.simplefilter("ignore")
        path = Path(platformdirs.user_runtime_dir(APP, appauthor=False))
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name != "nt":
        info = os.lstat(path)
        if (
            not stat.S_ISDIR(info.st_mode)
            or info.st_uid != os.getuid()
            or stat.S_IMODE(info.st_mode) & 0o077
        ):
            raise HandoffError(f"runtime folder {path} is not private to this user")
    return path


@dataclass(frozen=True, slots=True)
class InstancePaths:
    """Names of one sidebar instance: its server, spool and launch marker."""

    runtime_dir: Path
    key: str

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> InstancePaths:
        digest = hashlib.sha256(str(data_dir.resolve()).encode("utf-8")).hexdigest()[:10]
        return cls(runtime_dir=_private_runtime_dir(), key=f"{_user_key()}-{digest}")

    @property
    def server_name(self) -> str:
        """QLocalServer name: an absolute socket path on POSIX, a pipe name on Windows."""
        name = f"{APP}-{self.key}"
        return name if os.name == "nt" else str(self.runtime_dir / f"{name}.sock")

    @property
    def spool_dir(self) -> Path:
        return self.runtime_dir / f"spool-{self.key}"

    @property
    def launch_marker(self) -> Path:
        return self.runtime_dir / f"launch-{self.key}"

    @property
    def lock_file(self) -> Path:
        return self.runtime_dir / f"instance-{self.key}.lock"


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

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing drops the lock


# --- wire format -----------------------------------------------------------------


def encode_message(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(body) > MAX_MESSAGE:
        raise HandoffError("hand-off message is too large")
    return HEADER.pack(len(body)) + body


def call_message(event: CallEvent) -> dict[str, Any]:
    return {"v": PROTOCOL, "kind": "call", "event": to_jsonable(event)}


def control_message(kind: str) -> dict[str, Any]:
    """``show`` brings the sidebar forward; ``drain`` makes it read the spool."""
    return {"v": PROTOCOL, "kind": kind}


def decode_body(body: bytes) -> dict[str, Any]:
    """Parse one message body; raises HandoffError with a reason safe to log."""
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
    elif kind not in ("show", "drain"):
        raise HandoffError("hand-off message has an unknown kind")
    return message


class FrameReader:
    """Incremental reader of length-prefixed frames (server and client side)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Yield each complete body; raises HandoffError on an oversized frame."""
        self._buf += data
        while len(self._buf) >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buf)
            if length > MAX_MESSAGE:
                raise HandoffError(f"hand-off frame of {length} bytes exceeds {MAX_MESSAGE}")
            if len(self._buf) < HEADER.size + length:
                return
            body = bytes(self._buf[HEADER.size : HEADER.size + length])
            del self._buf[: HEADER.size + length]
            yield body


# --- client (POSIX; Windows uses gui.ipc's QLocalSocket client) --------------------


class Delivery(enum.Enum):
    """How far a hand-off got."""

    ACKED = "acked"  # the sidebar confirmed it
    SENT = "sent"  # a sidebar accepted the connection and has the bytes, but is busy
    UNREACHABLE = "unreachable"  # no sidebar listens

    @property
    def delivered(self) -> bool:
        # A connected sidebar reads what was written even if it answers late;
        # spooling it as well would pop the call twice.
        return self is not Delivery.UNREACHABLE


def send_message(paths: InstancePaths, message: dict[str, Any], *, timeout_ms: int) -> Delivery:
    """Deliver *message* to the running sidebar over its POSIX socket."""
    frame = encode_message(message)
    deadline = time.monotonic() + timeout_ms / 1000
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.settimeout(timeout_ms / 1000)
            sock.connect(paths.server_name)
        except OSError:
            return Delivery.UNREACHABLE
        try:
            sock.sendall(frame)
        except OSError:
            return Delivery.UNREACHABLE  # it went away mid-write: treat as absent
        reader = FrameReader()
        try:
            while True:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = sock.recv(4096)
                if not chunk:
                    return Delivery.SENT
                for body in reader.feed(chunk):
                    reply = json.loads(body.decode("utf-8"))
                    ok = isinstance(reply, dict) and reply.get("ok") is True
                    return Delivery.ACKED if ok else Delivery.UNREACHABLE
        except (OSError, HandoffError, ValueError, RecursionError):
            return Delivery.SENT


def send_to_running(paths: InstancePaths, event: CallEvent, *, timeout_ms: int = 150) -> bool:
    """True if the running sidebar has *event* (see :attr:`Delivery.delivered`)."""
    return send_message(paths, call_message(event), timeout_ms=timeout_ms).delivered


# --- spool --------------------------------------------------------------------------


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def spool_event(paths: InstancePaths, event: CallEvent) -> Path:
    """Leave *event* for the sidebar that is about to start (atomic, private file)."""
    spool = _private_dir(paths.spool_dir)
    name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    tmp = spool / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(encode_message(call_message(event))[HEADER.size :])
    final = spool / f"{name}.json"
    os.replace(tmp, final)
    return final


def drain_spool(paths: InstancePaths, *, now: float | None = None) -> list[CallEvent]:
    """Take every spooled event, oldest first; stale or broken files are dropped."""
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
            message = decode_body(body)
        except HandoffError as exc:
            log.warning("dropped a spooled hand-off: %s", exc)
            continue
        event: CallEvent = message["event"]
        if now - event.at.timestamp() > SPOOL_MAX_AGE_S:
            log.info("dropped a spooled hand-off older than %d s", SPOOL_MAX_AGE_S)
            continue
        events.append(event)
    return events


def claim_launch(paths: InstancePaths) -> bool:
    """True if this process should start the sidebar (nobody else is starting one)."""
    marker = paths.launch_marker
    for _ in range(2):
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            try:
                age = time.time() - marker.stat().st_mtime
            except FileNotFoundError:
                continue
            if age < LAUNCH_GRACE_S:
                return False
            with contextlib.suppress(FileNotFoundError):
                marker.unlink()
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        return True
    return False


def release_launch(paths: InstancePaths) -> None:
    """The sidebar listens now: later hand-offs may start one again if it dies."""
    with contextlib.suppress(FileNotFoundError):
        paths.launch_marker.unlink()


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
