"""The hand-off client's half: what ``consentdesk call`` / ``open-uri`` need, and no more.

Softphones run these on every call and wait for them, so this module imports
only the standard library and platformdirs (no Qt, no phone-number library, no
config loader, no domain model). The client sends what the softphone gave it;
the sidebar, which has phonenumbers loaded anyway, normalises the number or
URI and answers ``{"ok": true}`` or ``{"ok": false, "error": …}``.

Wire format: 4-byte big-endian length, then a UTF-8 JSON object of at most
:data:`MAX_MESSAGE` bytes; the sidebar answers with one such frame.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import socket
import stat
import struct
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Every import here is paid on each call a softphone hands over: no dataclasses
# (inspect, ast), no re, no uuid (platform), no contextlib.

APP = "consentdesk"  # = consentdesk.platform.config.APP (importing it costs ~20 ms)
PROTOCOL = 1
MAX_MESSAGE = 8 * 1024
HEADER = struct.Struct(">I")
LAUNCH_GRACE_S = 30.0  # a sidebar start older than this is presumed failed
PHASES = ("incoming", "answered", "ended")
MAX_CALL_ID = 256


class HandoffError(Exception):
    """Hand-off cannot work here (unsafe runtime folder, bad message); safe to show."""


def valid_call_id(text: str) -> bool:
    """= events.is_valid_call_id: 1-256 printable ASCII characters, no spaces."""
    return 1 <= len(text) <= MAX_CALL_ID and all("!" <= c <= "~" for c in text)


# --- where the instance lives --------------------------------------------------


def _user_key() -> str:
    if hasattr(os, "getuid"):
        return str(os.getuid())
    import getpass
    import re

    return re.sub(r"[^A-Za-z0-9_.-]", "_", getpass.getuser())[:32] or "user"


def _private_runtime_dir() -> Path:
    """The per-user runtime folder, created 0700 and checked to be ours."""
    import platformdirs

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


class InstancePaths:
    """Names of one sidebar instance: its server, spool and launch marker."""

    __slots__ = ("key", "runtime_dir")

    def __init__(self, runtime_dir: Path, key: str) -> None:
        self.runtime_dir = runtime_dir
        self.key = key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InstancePaths):
            return NotImplemented
        return (self.runtime_dir, self.key) == (other.runtime_dir, other.key)

    def __hash__(self) -> int:
        return hash((self.runtime_dir, self.key))

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


# --- messages ----------------------------------------------------------------------


def encode_message(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(body) > MAX_MESSAGE:
        raise HandoffError("hand-off message is too large")
    return HEADER.pack(len(body)) + body


def _now() -> str:
    return datetime.now(UTC).isoformat()


def hook_message(number: str, *, call_id: str = "", phase: str = "incoming") -> dict[str, Any]:
    """A softphone hook's call as given (``consentdesk call``); the sidebar parses it."""
    return {
        "v": PROTOCOL,
        "kind": "hook",
        "number": number,
        "call_id": call_id,
        "phase": phase,
        "at": _now(),
    }


def uri_message(uri: str) -> dict[str, Any]:
    """A call URI as given (``consentdesk open-uri``); the sidebar parses it."""
    return {"v": PROTOCOL, "kind": "uri", "uri": uri, "at": _now()}


def control_message(kind: str) -> dict[str, Any]:
    """``show`` brings the sidebar forward; ``drain`` makes it read the spool."""
    return {"v": PROTOCOL, "kind": kind}


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
    REFUSED = "refused"  # the sidebar read it and refused it (Outcome.error says why)
    SENT = "sent"  # a sidebar accepted the connection and the bytes, but never answered
    UNREACHABLE = "unreachable"  # no sidebar listens

    @property
    def delivered(self) -> bool:
        """The sidebar has the message (or will read it): never spool a copy."""
        return self is not Delivery.UNREACHABLE


class Outcome:
    """What became of one hand-off, with a one-line reason when it failed."""

    __slots__ = ("delivery", "error")

    def __init__(self, delivery: Delivery, error: str = "") -> None:
        self.delivery = delivery
        self.error = error

    def __repr__(self) -> str:
        return f"Outcome({self.delivery}, {self.error!r})"


def reply_outcome(body: bytes) -> Outcome:
    """The sidebar's answer frame → ACKED or REFUSED (with its one-line reason)."""
    try:
        reply = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return Outcome(Delivery.SENT, "the sidebar's answer is not JSON")
    if isinstance(reply, dict) and reply.get("ok") is True:
        return Outcome(Delivery.ACKED)
    error = reply.get("error") if isinstance(reply, dict) else None
    text = error if isinstance(error, str) else "refused"
    return Outcome(Delivery.REFUSED, " ".join(text.split())[:200])


def send_message(
    paths: InstancePaths, message: dict[str, Any], *, connect_ms: int, ack_ms: int
) -> Outcome:
    """Deliver *message* to the running sidebar over its POSIX socket and wait
    up to *ack_ms* for its answer."""
    frame = encode_message(message)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.settimeout(connect_ms / 1000)
            sock.connect(paths.server_name)
        except OSError:
            return Outcome(Delivery.UNREACHABLE)
        deadline = time.monotonic() + ack_ms / 1000
        try:
            sock.settimeout(ack_ms / 1000)
            sock.sendall(frame)
        except OSError:
            return Outcome(Delivery.UNREACHABLE)  # it went away mid-write: treat as absent
        reader = FrameReader()
        try:
            while True:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = sock.recv(4096)
                if not chunk:
                    return Outcome(Delivery.SENT, "the sidebar closed the connection")
                for body in reader.feed(chunk):
                    return reply_outcome(body)
        except TimeoutError:
            return Outcome(Delivery.SENT, f"no answer within {ack_ms} ms")
        except (OSError, HandoffError) as exc:
            return Outcome(Delivery.SENT, str(exc) or type(exc).__name__)


# --- spool and launch ----------------------------------------------------------------


def spool_message(paths: InstancePaths, message: dict[str, Any]) -> Path:
    """Leave *message* for the sidebar that is about to start (atomic, private file)."""
    paths.spool_dir.mkdir(mode=0o700, exist_ok=True)
    name = f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(3).hex()}"
    tmp = paths.spool_dir / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(encode_message(message)[HEADER.size :])
    final = paths.spool_dir / f"{name}.json"
    os.replace(tmp, final)
    return final


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
            marker.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        return True
    return False


def release_launch(paths: InstancePaths) -> None:
    """The sidebar listens now: later hand-offs may start one again if it dies."""
    paths.launch_marker.unlink(missing_ok=True)
