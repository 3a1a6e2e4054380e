"""ctrl_tcp client: event mapping, hostile streams, reconnect and clean stop.

The messages below are verbatim what baresip 1.0 sent on this machine for a
sipp call (see test_softphone.py for the real thing); here a local TCP server
replays them, split and corrupted in ways a real baresip cannot be made to.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import threading
from collections.abc import Iterator

import pytest

from consentdesk.telephony.baresip import BaresipConnector, CallTracker, parse_hostport
from consentdesk.telephony.events import CallEvent, CallPhase, CallSource
from consentdesk.telephony.netstring import encode

ERIKA = "+4915112345678"
CALL_ID = "1-11919@127.0.0.1"


def msg(
    type_: str,
    *,
    peer: str = "sip:+4915112345678@127.0.0.1",
    call_id: str = CALL_ID,
    name: str | None = None,
    cls: str = "call",
) -> dict[str, object]:
    m: dict[str, object] = {
        "event": True,
        "type": type_,
        "class": cls,
        "accountaor": "sip:agent@127.0.0.1",
        "direction": "incoming",
        "peeruri": peer,
        "id": call_id,
        "param": peer,
    }
    if name is not None:
        m["peerdisplayname"] = name
    return m


def frame(m: object) -> bytes:
    return encode(json.dumps(m).encode())


# --- mapping ---------------------------------------------------------------------------


def test_call_lifecycle_maps_to_phases() -> None:
    tracker = CallTracker(region="DE")
    out: list[CallEvent] = []
    for t in [
        "CALL_INCOMING",
        "CALL_REMOTE_SDP",
        "CALL_LOCAL_SDP",
        "CALL_ESTABLISHED",
        "CALL_CLOSED",
    ]:
        out += tracker.events(msg(t, cls="other" if "SDP" in t else "call", name="Erika M"))
    assert [e.phase for e in out] == [CallPhase.INCOMING, CallPhase.ANSWERED, CallPhase.ENDED]
    assert {(e.call_id, e.number, e.source, e.display_name) for e in out} == {
        (CALL_ID, ERIKA, CallSource.BARESIP, "Erika M")
    }


def test_auto_answer_without_incoming_still_starts_with_incoming() -> None:
    tracker = CallTracker(region="DE")
    out = tracker.events(msg("CALL_ESTABLISHED", peer="sip:015112345678@127.0.0.1;user=phone"))
    assert [e.phase for e in out] == [CallPhase.INCOMING, CallPhase.ANSWERED]
    assert out[0].number == ERIKA


def test_repeats_and_unknown_endings_are_ignored() -> None:
    tracker = CallTracker(region="DE")
    assert tracker.events(msg("CALL_CLOSED")) == []  # never shown: nothing to clear
    assert len(tracker.events(msg("CALL_INCOMING"))) == 1
    assert tracker.events(msg("CALL_INCOMING")) == []
    assert tracker.events(msg("CALL_RINGING")) == []
    assert len(tracker.events(msg("CALL_CLOSED"))) == 1
    assert tracker.events({"response": True, "ok": True}) == []
    assert tracker.events({"event": True, "class": "register", "type": "REGISTER_OK"}) == []


@pytest.mark.parametrize("call_id", [None, "", 5, "a b", "x" * 300])
def test_unusable_call_id_is_ignored(call_id: object, caplog: pytest.LogCaptureFixture) -> None:
    m = msg("CALL_INCOMING")
    m["id"] = call_id
    assert CallTracker(region="DE").events(m) == []
    assert "without a usable call id" in caplog.text


def test_withheld_and_hostile_peers_pop_as_unknown(caplog: pytest.LogCaptureFixture) -> None:
    tracker = CallTracker(region="DE")
    [anon] = tracker.events(
        msg("CALL_INCOMING", peer="sip:anonymous@anonymous.invalid", call_id="a")
    )
    assert anon.number is None and anon.raw_number == ""
    [bad] = tracker.events(
        msg("CALL_INCOMING", peer="javascript:alert(1)", call_id="b", name="X\x07")
    )
    assert bad.number is None and bad.display_name == "X"
    [missing] = tracker.events(
        {k: v for k, v in msg("CALL_INCOMING", call_id="c").items() if k != "peeruri"}
    )
    assert missing.number is None
    assert "alert" not in caplog.text


def test_parse_hostport() -> None:
    assert parse_hostport("127.0.0.1:4444") == ("127.0.0.1", 4444)
    assert parse_hostport("[::1]:4444") == ("::1", 4444)
    for bad in ["127.0.0.1", ":4444", "host:0", "host:99999", "host:x"]:
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_hostport(bad)


# --- connector against a replaying server ----------------------------------------------


class ReplayServer:
    """A TCP listener standing in for ctrl_tcp; one client at a time."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.clients: queue.Queue[socket.socket] = queue.Queue()
        self.accepted: list[socket.socket] = []
        self.received: queue.Queue[bytes] = queue.Queue()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)
            self.clients.put(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            self.received.put(data)

    def client(self) -> socket.socket:
        return self.clients.get(timeout=5)

    def close(self) -> None:
        # shutdown() wakes the threads blocked in accept()/recv(); close() alone does not.
        for sock in [self.sock, *self.accepted]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._thread.join(5)


class Recorder:
    def __init__(self) -> None:
        self.events: queue.Queue[CallEvent] = queue.Queue()
        self.links: queue.Queue[bool] = queue.Queue()

    def next_event(self) -> CallEvent:
        return self.events.get(timeout=5)

    def next_link(self) -> bool:
        return self.links.get(timeout=5)


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    srv = ReplayServer()
    yield srv
    srv.close()


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def connector(server: ReplayServer, rec: Recorder) -> Iterator[BaresipConnector]:
    conn = BaresipConnector(
        "127.0.0.1",
        server.port,
        region="DE",
        on_event=rec.events.put,
        on_link=rec.links.put,
        backoff_initial=0.05,
        backoff_max=0.2,
        max_frame=4096,
    )
    conn.start()
    yield conn
    conn.stop()


def test_events_split_across_reads_and_batched(
    server: ReplayServer, rec: Recorder, connector: BaresipConnector
) -> None:
    client = server.client()
    assert rec.next_link() is True
    stream = frame(msg("CALL_INCOMING")) + frame(msg("CALL_LOCAL_SDP", cls="other"))
    stream += frame(msg("CALL_ESTABLISHED"))
    for i in range(0, len(stream), 7):
        client.sendall(stream[i : i + 7])
    assert rec.next_event().phase == CallPhase.INCOMING
    assert rec.next_event().phase == CallPhase.ANSWERED
    client.sendall(frame(msg("CALL_CLOSED")) + frame(msg("CALL_INCOMING", call_id="second")))
    assert rec.next_event().phase == CallPhase.ENDED
    assert rec.next_event().call_id == "second"


def test_bad_json_and_oversized_frames_are_skipped_in_place(
    server: ReplayServer,
    rec: Recorder,
    connector: BaresipConnector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="consentdesk.telephony")
    client = server.client()
    assert rec.next_link() is True
    secret = "+4915112345678"
    client.sendall(
        encode(b'{"event":true,"peeruri":"' + secret.encode() + b'"')  # truncated JSON
        + encode(b"\xff\xfe")
        + encode(b"[" * 3000 + b"]" * 3000)
        + encode(b'"just a string"')
        + encode(json.dumps({"x": secret * 400}).encode())  # over max_frame
        + frame(msg("CALL_INCOMING"))
    )
    event = rec.next_event()
    assert event.number == ERIKA
    assert rec.links.empty()  # the link survived all of that
    assert caplog.text.count("skipped") == 5
    assert secret not in caplog.text and "4915112345678" not in caplog.text


def test_broken_framing_drops_the_link_and_reconnects(
    server: ReplayServer,
    rec: Recorder,
    connector: BaresipConnector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = server.client()
    assert rec.next_link() is True
    client.sendall(b"12:+4915112345678X")  # payload runs into the comma slot
    assert rec.next_link() is False
    assert "malformed netstring" in caplog.text and "4915112345678" not in caplog.text
    client = server.client()
    assert rec.next_link() is True
    client.sendall(frame(msg("CALL_INCOMING")))
    assert rec.next_event().call_id == CALL_ID
    assert connector.connects == 2


def test_peer_that_never_finishes_a_frame_does_not_block_stop(
    server: ReplayServer, rec: Recorder
) -> None:
    conn = BaresipConnector(
        "127.0.0.1", server.port, region="DE", on_event=rec.events.put, on_link=rec.links.put
    )
    conn.start()
    client = server.client()
    assert rec.next_link() is True
    client.sendall(b"60000:{")  # then silence
    conn.stop(timeout=5)
    assert rec.next_link() is False
    assert conn._thread is not None and not conn._thread.is_alive()


def test_reconnects_with_backoff_when_baresip_restarts(rec: Recorder) -> None:
    first = ReplayServer()
    port = first.port
    conn = BaresipConnector(
        "127.0.0.1",
        port,
        region="DE",
        on_event=rec.events.put,
        on_link=rec.links.put,
        backoff_initial=0.05,
        backoff_max=0.2,
    )
    conn.start()
    try:
        first.client()
        assert rec.next_link() is True
        first.close()  # baresip exits
        assert rec.next_link() is False
        second = ReplayServer(port)  # and comes back on the same port
        try:
            client = second.client()
            assert rec.next_link() is True
            client.sendall(frame(msg("CALL_INCOMING")))
            assert rec.next_event().number == ERIKA
        finally:
            second.close()
    finally:
        conn.stop()


def test_connector_starts_before_baresip(rec: Recorder) -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    conn = BaresipConnector(
        "127.0.0.1",
        port,
        region="DE",
        on_event=rec.events.put,
        on_link=rec.links.put,
        backoff_initial=0.05,
        backoff_max=0.1,
    )
    conn.start()
    try:
        late = ReplayServer(port)
        try:
            late.client()
            assert rec.next_link() is True
        finally:
            late.close()
    finally:
        conn.stop()


def test_commands_are_framed_and_refused_when_down(
    server: ReplayServer, rec: Recorder, connector: BaresipConnector
) -> None:
    server.client()
    assert rec.next_link() is True
    assert connector.command("accept", token="t1")
    assert server.received.get(timeout=5) == encode(
        b'{"command": "accept", "params": "", "token": "t1"}'
    )
    connector.stop()
    assert not connector.command("accept")


def test_handler_exceptions_do_not_kill_the_connector(
    server: ReplayServer, rec: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    seen: queue.Queue[CallEvent] = queue.Queue()

    def flaky(event: CallEvent) -> None:
        seen.put(event)
        if event.call_id == "boom":
            raise RuntimeError("handler bug")

    conn = BaresipConnector(
        "127.0.0.1", server.port, region="DE", on_event=flaky, on_link=rec.links.put
    )
    conn.start()
    try:
        client = server.client()
        assert rec.next_link() is True
        client.sendall(frame(msg("CALL_INCOMING", call_id="boom")) + frame(msg("CALL_INCOMING")))
        assert seen.get(timeout=5).call_id == "boom"
        assert seen.get(timeout=5).call_id == CALL_ID
        assert "call event handler failed" in caplog.text
    finally:
        conn.stop()
