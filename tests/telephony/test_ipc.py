"""Single instance over QLocalServer: hand-off between processes, stale sockets, garbage."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import stat
import sys
import threading
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from consentdesk.gui import ipc
from consentdesk.gui.ipc import InstanceServer, claim_instance
from consentdesk.telephony import handoff
from consentdesk.telephony.events import CallEvent, CallPhase, CallSource, call_event_from_json
from consentdesk.telephony.handoff import HEADER, InstancePaths, spool_event

from .helpers import LineProcess, peer_args

ERIKA = "+4915112345678"

CLIENT_SCRIPT = """
import sys
from pathlib import Path
from consentdesk.telephony.events import CallEvent, CallPhase, CallSource
from consentdesk.telephony.handoff import InstancePaths, send_to_running
paths = InstancePaths.for_data_dir(Path(sys.argv[1]))
event = CallEvent(CallPhase(sys.argv[2]), sys.argv[3], CallSource.COMMAND, sys.argv[4])
sys.exit(0 if send_to_running(paths, event, timeout_ms=3000) else 1)
"""


def event(call_id: str = "c1", phase: CallPhase = CallPhase.INCOMING) -> CallEvent:
    return CallEvent(phase, call_id, CallSource.COMMAND, ERIKA, raw_number="015112345678")


def run_client(data_dir: Path, call_id: str, phase: str = "incoming") -> LineProcess:
    return LineProcess([sys.executable, "-c", CLIENT_SCRIPT, str(data_dir), phase, call_id, ERIKA])


@pytest.fixture
def server(qtbot: QtBot, data_dir: Path) -> InstanceServer:
    srv = claim_instance(data_dir)
    assert srv is not None
    yield srv
    srv.close()


def test_python_client_reaches_server_in_another_process(
    spawn: type[LineProcess], data_dir: Path
) -> None:
    peer = spawn(peer_args(data_dir))
    peer.expect("READY")
    paths = InstancePaths.for_data_dir(data_dir)
    sent = event()
    assert handoff.send_to_running(paths, sent, timeout_ms=3000)
    assert call_event_from_json(json.loads(peer.expect("CALL"))) == sent


def test_qt_client_reaches_server_in_another_process(
    qtbot: QtBot, spawn: type[LineProcess], data_dir: Path
) -> None:
    peer = spawn(peer_args(data_dir))
    peer.expect("READY")
    paths = InstancePaths.for_data_dir(data_dir)
    sent = event("qt-1", CallPhase.ENDED)
    assert ipc.send_to_running(sent, 3000, paths=paths)
    assert call_event_from_json(json.loads(peer.expect("CALL"))) == sent


def test_no_server_means_false_quickly(qtbot: QtBot, data_dir: Path) -> None:
    paths = InstancePaths.for_data_dir(data_dir)
    assert not handoff.send_to_running(paths, event(), timeout_ms=200)
    assert not ipc.send_to_running(event(), 200, paths=paths)


def test_server_socket_is_private(server: InstanceServer) -> None:
    info = os.stat(server.name)
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) & 0o077 == 0
    assert info.st_uid == os.getuid()


def test_server_receives_from_client_process(
    qtbot: QtBot, server: InstanceServer, data_dir: Path
) -> None:
    with qtbot.waitSignal(server.call_received, timeout=10_000) as blocker:
        client = run_client(data_dir, "from-child")
    assert client.stop() == 0
    received = blocker.args[0]
    assert (received.call_id, received.number, received.source) == (
        "from-child",
        ERIKA,
        CallSource.COMMAND,
    )


def test_second_start_finds_the_first_and_asks_it_to_show(
    qtbot: QtBot, spawn: type[LineProcess], data_dir: Path
) -> None:
    peer = spawn(peer_args(data_dir))
    peer.expect("READY")
    assert claim_instance(data_dir) is None
    peer.expect("SHOW")
    other = spawn(peer_args(data_dir))
    other.expect("ALREADY")
    assert other.stop() == 3


def test_stale_socket_after_a_crash_is_removed(
    qtbot: QtBot, spawn: type[LineProcess], data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    peer = spawn(peer_args(data_dir))
    peer.expect("READY")
    paths = InstancePaths.for_data_dir(data_dir)
    peer.proc.send_signal(signal.SIGKILL)
    peer.stop()
    assert Path(paths.server_name).exists()  # the crash left its socket behind
    caplog.set_level(logging.INFO, logger="consentdesk.ipc")
    server = claim_instance(data_dir)
    assert server is not None
    try:
        assert "removing a stale hand-off socket" in caplog.text
        with qtbot.waitSignal(server.call_received, timeout=10_000):
            client = run_client(data_dir, "after-crash")
        assert client.stop() == 0
    finally:
        server.close()


def test_spooled_calls_are_drained_on_start(qtbot: QtBot, data_dir: Path) -> None:
    paths = InstancePaths.for_data_dir(data_dir)
    spool_event(paths, event("early"))
    server = claim_instance(data_dir)
    assert server is not None
    try:
        with qtbot.waitSignal(server.call_received) as blocker:
            assert server.drain() == 1
        assert blocker.args[0].call_id == "early"
    finally:
        server.close()


def _raw_exchange(path: str, payload: bytes, result: dict[str, bytes]) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(payload)
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        result["reply"] = data


@pytest.mark.parametrize(
    ("payload", "log_text"),
    [
        (HEADER.pack(10_000_000), "exceeds"),
        (HEADER.pack(9) + b"not json!", "not UTF-8 JSON"),
        (HEADER.pack(31) + b'{"v":1,"kind":"exec","cmd":"x"}', "unknown kind"),
        (
            HEADER.pack(64) + b'{"v":1,"kind":"call","event":{"phase":"incoming","call_id":"x"}}',
            "malformed",
        ),
    ],
)
def test_garbage_is_rejected_with_a_log_line_and_server_survives(
    qtbot: QtBot,
    server: InstanceServer,
    data_dir: Path,
    payload: bytes,
    log_text: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    result: dict[str, bytes] = {}
    worker = threading.Thread(target=_raw_exchange, args=(server.name, payload, result))
    worker.start()
    qtbot.waitUntil(lambda: not worker.is_alive(), timeout=10_000)
    assert b'"ok":false' in result["reply"]
    assert "rejected a hand-off message" in caplog.text and log_text in caplog.text
    with qtbot.waitSignal(server.call_received, timeout=10_000):
        client = run_client(data_dir, "still-alive")
    assert client.stop() == 0


def test_idle_client_is_dropped(
    qtbot: QtBot,
    server: InstanceServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(ipc, "CLIENT_IDLE_MS", 100)
    caplog.set_level(logging.INFO, logger="consentdesk.ipc")
    result: dict[str, bytes] = {}
    worker = threading.Thread(target=_raw_exchange, args=(server.name, HEADER.pack(50), result))
    worker.start()
    qtbot.waitUntil(lambda: not worker.is_alive(), timeout=10_000)
    assert result["reply"] == b""
    assert "dropped an idle hand-off connection" in caplog.text
