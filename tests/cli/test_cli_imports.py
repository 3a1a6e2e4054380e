"""What building the parser and the softphone hand-off load.

``consentdesk call`` and ``open-uri`` run on every call and softphones wait for
them, so neither they nor the parser they build may load the ledger, review,
export, GUI or server code. Each check runs a fresh interpreter and reads its
``sys.modules``; how fast that is stays in tests/benchmarks/bench_screenpop.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consentdesk.telephony.handoff import (
    FrameReader,
    InstancePaths,
    decode_body,
    encode_message,
    event_from_message,
)

HEAVY = (
    "consentdesk.stores.ledger",
    "consentdesk.domain.review",  # review, review_records, review_sql
    "consentdesk.domain.export",
    "consentdesk.domain.incident",
    "consentdesk.stores.demo",
    "consentdesk.domain.capture",
    "consentdesk.domain.scripts",
    "consentdesk.gui",
    "consentdesk.server",
    "PySide6",
    "sqlalchemy",
    "fastapi",
    "httpx",
    "importlib.metadata",
    "zipfile",
)
ERIKA = "+4915112345678"

# Prints the exit code (None when only the parser is built) and the heavy modules loaded.
PROBE = """\
import json, sys
from consentdesk import cli
argv = sys.argv[1:]
code = cli.main(argv) if argv else (cli.build_parser() and None)
heavy = sorted(m for m in sys.modules if m.startswith({heavy!r}))
print(json.dumps({{"code": code, "heavy": heavy}}))
"""


def probe(*argv: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return out


class StandInSidebar:
    """Accepts hand-offs on the sidebar's socket and acknowledges them, as the sidebar does."""

    def __init__(self, paths: InstancePaths) -> None:
        self.received: list[dict[str, Any]] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(paths.server_name)
        self._server.listen()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return  # closed
            with conn:
                reader = FrameReader()
                while chunk := conn.recv(4096):
                    bodies = list(reader.feed(chunk))
                    if bodies:
                        # As the sidebar does: it, not the client, parses the number.
                        self.received.extend(
                            {"event": event_from_message(decode_body(b), region="DE")}
                            for b in bodies
                        )
                        conn.sendall(encode_message({"ok": True}))
                        break

    def close(self) -> None:
        self._server.close()
        self._thread.join(timeout=5)


@pytest.fixture
def sidebar(data_dir: Path) -> Iterator[StandInSidebar]:
    paths = InstancePaths.for_data_dir(data_dir)
    # A fresh launch marker: if a hand-off were not acknowledged, the command
    # must not start a real sidebar from this test.
    paths.launch_marker.write_text("test", encoding="utf-8")
    stand_in = StandInSidebar(paths)
    yield stand_in
    stand_in.close()
    paths.launch_marker.unlink()
    Path(paths.server_name).unlink()
    assert not paths.spool_dir.exists() or not any(paths.spool_dir.iterdir())


def test_building_the_parser_loads_no_heavy_module() -> None:
    assert probe() == {"code": None, "heavy": []}


@pytest.mark.skipif(os.name == "nt", reason="Windows hands off through Qt's named-pipe client")
@pytest.mark.parametrize(
    "argv",
    [
        ["call", "0151 1234 5678", "--call-id", "ms-1"],
        ["open-uri", "consentdesk://call?number=%2B4915112345678&id=ms-1&event=incoming"],
    ],
    ids=["call", "open-uri"],
)
def test_hand_off_loads_no_heavy_module(
    argv: list[str], data_dir: Path, sidebar: StandInSidebar
) -> None:
    result = probe("--data-dir", str(data_dir), *argv)
    assert result == {"code": 0, "heavy": []}
    [message] = sidebar.received
    assert (message["event"].number, message["event"].call_id) == (ERIKA, "ms-1")


# What the client must not load once a sidebar answers: the sidebar parses the
# number (phonenumbers), and the client needs neither config nor argparse.
CLIENT_NEEDLESS = (
    "phonenumbers",
    "consentdesk.domain",
    "consentdesk.platform",
    "consentdesk.cli.common",
    "consentdesk.telephony.numbers",
    "consentdesk.telephony.events",
    "argparse",
    "tomllib",
)


@pytest.mark.skipif(os.name == "nt", reason="Windows hands off through Qt's named-pipe client")
@pytest.mark.parametrize(
    "argv",
    [
        ["call", "0151 1234 5678", "--call-id", "ms-1"],
        ["open-uri", "consentdesk://call?number=%2B4915112345678&id=ms-1&event=incoming"],
    ],
    ids=["call", "open-uri"],
)
def test_hand_off_to_a_running_sidebar_loads_only_the_client(
    argv: list[str], data_dir: Path, sidebar: StandInSidebar
) -> None:
    script = PROBE.format(heavy=CLIENT_NEEDLESS)
    result = subprocess.run(
        [sys.executable, "-c", script, "--data-dir", str(data_dir), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"code": 0, "heavy": []}
    [message] = sidebar.received
    assert (message["event"].number, message["event"].call_id) == (ERIKA, "ms-1")


class SilentSidebar:
    """Takes the connection and the bytes, then never answers (or hangs up)."""

    def __init__(self, paths: InstancePaths, *, hang_up: bool) -> None:
        self.received = threading.Event()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(paths.server_name)
        self._server.listen()
        self._conns: list[socket.socket] = []
        self._hang_up = hang_up
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self._server.accept()
        except OSError:
            return
        self._conns.append(conn)
        if conn.recv(4096):
            self.received.set()
        if self._hang_up:
            conn.close()

    def close(self) -> None:
        for sock in [self._server, *self._conns]:
            sock.close()
        self._thread.join(timeout=5)


@pytest.mark.skipif(os.name == "nt", reason="Windows hands off through Qt's named-pipe client")
@pytest.mark.parametrize(
    ("hang_up", "reason"),
    [(False, "no answer within"), (True, "closed the connection")],
    ids=["silent", "hangs-up"],
)
def test_call_fails_with_one_line_when_the_sidebar_does_not_acknowledge(
    data_dir: Path, hang_up: bool, reason: str
) -> None:
    paths = InstancePaths.for_data_dir(data_dir)
    paths.launch_marker.write_text("test", encoding="utf-8")  # never start a real one
    silent = SilentSidebar(paths, hang_up=hang_up)
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "consentdesk",
                "--data-dir",
                str(data_dir),
                "call",
                ERIKA,
                "--call-id",
                "unacked-1",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    finally:
        silent.close()
        paths.launch_marker.unlink()
        Path(paths.server_name).unlink()
    assert silent.received.is_set(), "the sidebar had the bytes"
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "did not acknowledge the call" in result.stderr
    assert reason in result.stderr
    # Not spooled: the sidebar has it; a second copy would pop the call twice.
    assert not paths.spool_dir.exists() or not any(paths.spool_dir.iterdir())
