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

import os
import struct
import sys
import time

# Every import here is paid on each call a softphone hands over, so this module
# avoids socket.py (enum classes), json (re), pathlib and platformdirs on the
# common path: ``_socket``, a small JSON writer and os.path do the job.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from typing import Any

APP = "consentdesk"  # = consentdesk.platform.config.APP (importing it costs ~20 ms)
PROTOCOL = 1
MAX_MESSAGE = 8 * 1024
HEADER = struct.Struct(">I")
LAUNCH_GRACE_S = 30.0  # a sidebar start older than this is presumed failed
PHASES = ("incoming", "answered", "ended")
MAX_CALL_ID = 256
ACK = b'{"ok":true}'


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


def _is_private_dir(path: str) -> bool:
    """A real folder (not a symlink) owned by us that nobody else may enter."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    import stat

    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not stat.S_IMODE(info.st_mode) & 0o077
    )


def _runtime_base() -> str:
    """$XDG_RUNTIME_DIR when it is usable (as platformdirs would take it), else
    what platformdirs chooses (it warns and falls back to a private folder)."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.name == "posix" and sys.platform != "darwin" and os.path.isabs(xdg):
        if _is_private_dir(xdg):
            return os.path.join(xdg, APP)
    import warnings

    import platformdirs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return str(platformdirs.user_runtime_dir(APP, appauthor=False))


def _private_runtime_dir() -> str:
    """The per-user runtime folder, created 0700 and checked to be ours."""
    path = _runtime_base()
    os.makedirs(path, mode=0o700, exist_ok=True)
    if os.name != "nt" and not _is_private_dir(path):
        raise HandoffError(f"runtime folder {path} is not private to this user")
    return path


def default_data_dir() -> str:
    """The data folder when neither --data-dir nor CONSENTDESK_DATA_DIR names one
    (= platform.context.Context.load)."""
    import platformdirs

    return str(platformdirs.user_data_dir(APP, appauthor=False))


class InstancePaths:
    """Names of one sidebar instance: its server, spool and launch marker."""

    __slots__ = ("_runtime", "key")

    def __init__(self, runtime_dir: str | os.PathLike[str], key: str) -> None:
        self._runtime = os.fspath(runtime_dir)
        self.key = key

    @classmethod
    def for_data_dir(cls, data_dir: str | os.PathLike[str]) -> InstancePaths:
        real = os.path.realpath(os.fspath(data_dir))
        digest = _sha256(real.encode("utf-8"))[:10]
        return cls(_private_runtime_dir(), f"{_user_key()}-{digest}")

    @classmethod
    def default_alias(cls) -> InstancePaths:
        """The name under which the sidebar of the default data folder also listens
        (a symlink to its socket): a hand-off naming no folder needs no platformdirs."""
        return cls(_private_runtime_dir(), f"{_user_key()}-default")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InstancePaths):
            return NotImplemented
        return (self._runtime, self.key) == (other._runtime, other.key)

    def __hash__(self) -> int:
        return hash((self._runtime, self.key))

    @property
    def runtime_dir(self) -> Path:
        from pathlib import Path

        return Path(self._runtime)

    @property
    def server_name(self) -> str:
        """QLocalServer name: an absolute socket path on POSIX, a pipe name on Windows."""
        name = f"{APP}-{self.key}"
        return name if os.name == "nt" else os.path.join(self._runtime, f"{name}.sock")

    @property
    def spool_dir(self) -> Path:
        return self.runtime_dir / f"spool-{self.key}"

    @property
    def launch_marker(self) -> Path:
        return self.runtime_dir / f"launch-{self.key}"

    @property
    def lock_file(self) -> Path:
        return self.runtime_dir / f"instance-{self.key}.lock"


def _sha256(data: bytes) -> str:
    try:  # the builtin module: hashlib would load OpenSSL (~2 ms)
        from _sha256 import sha256  # type: ignore[import-not-found]
    except ImportError:
        from hashlib import sha256
    return str(sha256(data).hexdigest())


# --- messages ----------------------------------------------------------------------


class _NotFlat(Exception):
    pass


# JSON string escapes: quote, backslash and every control character.
_ESCAPES = {i: f"\\u{i:04x}" for i in range(32)} | {ord('"'): '\\"', ord("\\"): "\\\\"}


def _json_value(value: object) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return '"' + value.translate(_ESCAPES) + '"'
    if isinstance(value, int | float) and value == value and abs(value) != float("inf"):
        return repr(value)
    raise _NotFlat


def encode_message(message: dict[str, Any]) -> bytes:
    """Frame *message* (a flat object is written here; json only for nested ones)."""
    try:
        text = "{" + ",".join(f"{_json_value(k)}:{_json_value(v)}" for k, v in message.items())
        text += "}"
    except _NotFlat:
        import json

        text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    try:
        body = text.encode("utf-8")
    except UnicodeEncodeError:
        raise HandoffError("hand-off text is not valid UTF-8") from None
    if len(body) > MAX_MESSAGE:
        raise HandoffError("hand-off message is too large")
    return HEADER.pack(len(body)) + body


def hook_message(number: str, *, call_id: str = "", phase: str = "incoming") -> dict[str, Any]:
    """A softphone hook's call as given (``consentdesk call``); the sidebar parses it."""
    return {
        "v": PROTOCOL,
        "kind": "hook",
        "number": number,
        "call_id": call_id,
        "phase": phase,
        "at": time.time(),
    }


def uri_message(uri: str) -> dict[str, Any]:
    """A call URI as given (``consentdesk open-uri``); the sidebar parses it."""
    return {"v": PROTOCOL, "kind": "uri", "uri": uri, "at": time.time()}


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


class Delivery:
    """How far a hand-off got (a plain class: enum would cost the client ~5 ms)."""

    __slots__ = ("value",)
    ACKED: Delivery  # the sidebar confirmed it
    REFUSED: Delivery  # the sidebar read it and refused it (Outcome.error says why)
    SENT: Delivery  # a sidebar took the connection and the bytes, but never answered
    UNREACHABLE: Delivery  # no sidebar listens

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Delivery.{self.value.upper()}"

    @property
    def delivered(self) -> bool:
        """The sidebar has the message (or will read it): never spool a copy."""
        return self is not Delivery.UNREACHABLE


Delivery.ACKED = Delivery("acked")
Delivery.REFUSED = Delivery("refused")
Delivery.SENT = Delivery("sent")
Delivery.UNREACHABLE = Delivery("unreachable")


class Outcome:
    """What became of one hand-off, with a one-line reason when it failed."""

    __slots__ = ("delivery", "error")

    def __init__(self, delivery: Delivery, error: str = "") -> None:
        self.delivery = delivery
        self.error = error

    def __repr__(self) -> str:
        return f"Outcome({self.delivery!r}, {self.error!r})"


def reply_outcome(body: bytes) -> Outcome:
    """The sidebar's answer frame → ACKED or REFUSED (with its one-line reason)."""
    if body == ACK:
        return Outcome(Delivery.ACKED)
    import json

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
    import _socket

    frame = encode_message(message)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
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
    finally:
        sock.close()


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
