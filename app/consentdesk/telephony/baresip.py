"""baresip ``ctrl_tcp`` client: call events from a running baresip, on a plain thread.

ctrl_tcp speaks netstring-framed JSON. Events look like::

    {"event":true,"class":"call","type":"CALL_INCOMING","accountaor":"sip:agent@pbx",
     "direction":"incoming","peeruri":"sip:+4915112345678@pbx","peerdisplayname":"Erika",
     "id":"<SIP Call-ID>","param":"…"}

ctrl_tcp serves one client at a time (a new client replaces the old one), and
baresip may be restarted under us, so the connector reconnects with capped
exponential backoff and reports the link going up and down.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from consentdesk.telephony.events import CallEvent, CallPhase, CallSource, is_valid_call_id
from consentdesk.telephony.netstring import (
    DEFAULT_MAX_FRAME,
    NetstringDecoder,
    NetstringError,
    encode,
)
from consentdesk.telephony.numbers import (
    Caller,
    InvalidCaller,
    clean_display_name,
    parse_caller,
)

log = logging.getLogger("consentdesk.telephony")

# ctrl_tcp event type → our phase. CALL_RINGING/CALL_PROGRESS are an outgoing
# call being set up: the callee is popped just like an incoming caller.
_PHASES = {
    "CALL_INCOMING": CallPhase.INCOMING,
    "CALL_RINGING": CallPhase.INCOMING,
    "CALL_PROGRESS": CallPhase.INCOMING,
    "CALL_OUTGOING": CallPhase.INCOMING,
    "CALL_ESTABLISHED": CallPhase.ANSWERED,
    "CALL_CLOSED": CallPhase.ENDED,
}
_ORDER = {CallPhase.INCOMING: 0, CallPhase.ANSWERED: 1, CallPhase.ENDED: 2}
# Kernel receive buffer of the ctrl_tcp socket: ~300 call events. Together with
# the bounded inbox this is all a flood can queue on our side.
RECEIVE_BUFFER = 64 * 1024


def parse_hostport(text: str) -> tuple[str, int]:
    """``HOST:PORT`` → (host, port); ValueError with a one-line reason otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"baresip address must be HOST:PORT, got {text[:80]!r}")
    return host.strip("[]"), int(port)


@functools.lru_cache(maxsize=1024)
def _parse_peer(peer: str, name: str, region: str) -> Caller:
    """parse_caller, remembered: a retry storm repeats the same few callers."""
    return parse_caller(peer, region=region, display_name=name)


class CallTracker:
    """Turn ctrl_tcp messages into call events, once per phase per call.

    baresip with auto-answer reports CALL_ESTABLISHED without CALL_INCOMING,
    and a connector that joins mid-call sees only later steps; the tracker
    emits the missing INCOMING first so every call starts with one.
    """

    MAX_CALLS = 64

    def __init__(self, *, region: str) -> None:
        self.region = region
        self._seen: OrderedDict[str, CallPhase] = OrderedDict()
        # The caller of each open call, parsed once: a call's peer does not
        # change, and parsing a number is most of the cost of an event.
        self._callers: dict[str, tuple[Caller | None, str]] = {}

    def events(self, message: Mapping[str, Any]) -> list[CallEvent]:
        if message.get("event") is not True or message.get("class") != "call":
            return []
        phase = _PHASES.get(str(message.get("type")))
        if phase is None:
            return []
        call_id = message.get("id")
        if not isinstance(call_id, str) or not is_valid_call_id(call_id):
            log.warning("baresip call event without a usable call id; ignored")
            return []
        last = self._seen.get(call_id)
        if last is not None and _ORDER[last] >= _ORDER[phase]:
            return []
        if last is None and phase == CallPhase.ENDED:
            return []  # a call we never showed: nothing to clear
        known = self._callers.get(call_id)
        caller, fallback_name = known if known is not None else self._caller(message)
        out: list[CallEvent] = []
        missed_incoming = last is None and phase != CallPhase.INCOMING
        phases = [CallPhase.INCOMING, phase] if missed_incoming else [phase]
        for step in phases:
            out.append(
                CallEvent(
                    phase=step,
                    call_id=call_id,
                    source=CallSource.BARESIP,
                    number=caller.number if caller else None,
                    raw_number=caller.raw if caller else "",
                    display_name=caller.display_name if caller else fallback_name,
                )
            )
        if phase == CallPhase.ENDED:
            self._seen.pop(call_id, None)
            self._callers.pop(call_id, None)
        else:
            self._seen[call_id] = phase
            self._seen.move_to_end(call_id)
            self._callers[call_id] = (caller, fallback_name)
            while len(self._seen) > self.MAX_CALLS:
                gone, _phase = self._seen.popitem(last=False)
                self._callers.pop(gone, None)
        return out

    def _caller(self, message: Mapping[str, Any]) -> tuple[Caller | None, str]:
        """(caller, display name to show when the caller is unusable)."""
        peer = message.get("peeruri")
        name = message.get("peerdisplayname")
        try:
            caller = _parse_peer(
                peer if isinstance(peer, str) else "",
                name if isinstance(name, str) else "",
                self.region,
            )
        except InvalidCaller as exc:
            log.warning("baresip call event with an unusable peer URI (%s); shown as unknown", exc)
            return None, clean_display_name(name if isinstance(name, str) else "")
        return caller, ""


class BaresipConnector:
    """Background thread holding the ctrl_tcp connection to one baresip.

    ``on_event`` and ``on_link`` run on the connector's thread; a GUI must
    hop to its own thread (a Qt signal does that). Exceptions they raise are
    logged and do not stop the connector.
    """

    STABLE_AFTER_S = 2.0

    def __init__(
        self,
        host: str,
        port: int,
        *,
        region: str,
        on_event: Callable[[CallEvent], None],
        on_link: Callable[[bool], None] | None = None,
        backoff_initial: float = 0.25,
        backoff_max: float = 5.0,
        connect_timeout: float = 2.0,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> None:
        self.host = host
        self.port = port
        self.region = region
        self._on_event = on_event
        self._on_link = on_link
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.connect_timeout = connect_timeout
        self.max_frame = max_frame
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._link_up = False
        self.connects = 0

    @property
    def link_up(self) -> bool:
        return self._link_up

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("connector already started")
        self._thread = threading.Thread(
            target=self._run, name=f"baresip-{self.host}:{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self, *, timeout: float = 5.0) -> None:
        """Close the link and wait for the thread; safe to call twice."""
        self._stop.set()
        with self._lock:
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout)

    def command(self, name: str, params: str = "", *, token: str = "") -> bool:
        """Send a ctrl_tcp command (e.g. ``accept``); False if the link is down.

        Fire and forget: the response arrives as a message the connector logs
        at debug level only.
        """
        body = json.dumps({"command": name, "params": params, "token": token}).encode()
        with self._lock:
            if self._sock is None or not self._link_up:
                return False
            try:
                self._sock.sendall(encode(body))
            except OSError:
                return False
        return True

    # --- thread ----------------------------------------------------------------

    def _run(self) -> None:
        delay = self.backoff_initial
        while not self._stop.is_set():
            try:
                sock = self._connect()
            except OSError as exc:
                log.debug("baresip ctrl_tcp connect failed: %s", exc.strerror or exc)
            else:
                started = time.monotonic()
                self._serve(sock)
                # A link that held for a while was healthy: retry quickly. One
                # dropped at once (baresip refusing us) keeps backing off.
                if time.monotonic() - started > self.STABLE_AFTER_S:
                    delay = self.backoff_initial
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, self.backoff_max)

    def _connect(self) -> socket.socket:
        """Connect with a small receive buffer: what the kernel holds for us is
        bounded too, so a flooding peer is held back by TCP, not queued for us."""
        last: OSError = OSError("no address for the baresip host")
        for family, kind, proto, _name, address in socket.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM
        ):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
                sock.settimeout(self.connect_timeout)
                sock.connect(address)
                return sock
            except OSError as exc:
                last = exc
                sock.close()
        raise last

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(None)
        with self._lock:
            if self._stop.is_set():
                sock.close()
                return
            self._sock = sock
        self.connects += 1
        tracker = CallTracker(region=self.region)
        decoder = NetstringDecoder(max_frame=self.max_frame)
        log.info("baresip link up (%s:%d)", self.host, self.port)
        self._set_link(True)
        try:
            while not self._stop.is_set():
                try:
                    data = sock.recv(65536)
                except OSError as exc:
                    log.info("baresip link lost: %s", exc.strerror or exc)
                    break
                if not data:
                    log.info("baresip closed the ctrl_tcp connection")
                    break
                try:
                    frames = decoder.feed(data)
                except NetstringError as exc:
                    log.warning("baresip sent a malformed netstring (%s); reconnecting", exc)
                    break
                for frame in frames:
                    self._dispatch(tracker, frame)
        finally:
            with self._lock:
                self._sock = None
            sock.close()
            self._set_link(False)

    def _dispatch(self, tracker: CallTracker, frame: bytes) -> None:
        try:
            message = json.loads(frame.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            # ValueError covers bad UTF-8, bad JSON and oversized integers; the
            # reason names the defect, never the content.
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
            log.warning("baresip frame of %d bytes is not JSON (%s); skipped", len(frame), reason)
            return
        if not isinstance(message, dict):
            log.warning("baresip frame is JSON but not an object; skipped")
            return
        if message.get("response") is True:
            log.debug("baresip command response ok=%s", message.get("ok"))
            return
        for event in tracker.events(message):
            try:
                self._on_event(event)
            except Exception:
                log.exception("call event handler failed")

    def _set_link(self, up: bool) -> None:
        self._link_up = up
        if self._on_link is None:
            return
        try:
            self._on_link(up)
        except Exception:
            log.exception("link state handler failed")
