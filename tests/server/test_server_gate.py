"""The server's own gate and operations: 415 for non-JSON bodies, a client that hangs
up mid-upload costs one log line, latencies stay readable in the log, ``/metrics``
speaks Prometheus, and a server started before its database waits for it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from server_records import NUMBER, consent
from server_support import (
    PG_ADMIN,
    REPO,
    Api,
    free_port,
    seed_users,
    sqlite_url,
    wait_until,
)

from consentdesk.domain.model import to_jsonable
from consentdesk.platform.logs import redact
from consentdesk.server import db
from consentdesk.server.http import ACCESS_FORMAT
from consentdesk.server.wire import dumps

PROMETHEUS_LINE = re.compile(r'^[a-z_]+(\{([a-z_]+="[^"]*",?)*\})? -?[0-9.e+]+$')


def consent_body() -> bytes:
    return dumps(to_jsonable(consent(agent="alice")))


# --- content types ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_body_that_is_not_json_is_refused_with_415(api: Api, content_type: str) -> None:
    with api.client("alice") as client:
        answer = client.post(
            "/v1/consents", content=consent_body(), headers={"Content-Type": content_type}
        )
    assert answer.status_code == 415
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"].endswith("unsupported-media-type")
    assert answer.headers["accept"] == "application/json"
    assert api.count("entries") == 0


def test_json_with_parameters_or_a_suffix_is_accepted(api: Api) -> None:
    with api.client("alice") as client:
        answer = client.post(
            "/v1/consents",
            content=consent_body(),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        assert answer.status_code == 201, answer.text
        # A GET without a body is not judged by its Content-Type.
        status = client.get(f"/v1/subjects/{NUMBER}/status", headers={"Content-Type": "text/x"})
        assert status.status_code == 200


# --- metrics ------------------------------------------------------------------------------


def test_metrics_in_the_prometheus_text_format(api: Api) -> None:
    with api.client("alice") as client:
        assert (
            client.post("/v1/consents", json=to_jsonable(consent(agent="alice"))).status_code == 201
        )
        client.get(f"/v1/subjects/{NUMBER}/status")
    with httpx.Client(base_url=api.url) as anonymous:
        answer = anonymous.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = [line for line in answer.text.splitlines() if line and not line.startswith("#")]
    assert all(PROMETHEUS_LINE.match(line) for line in samples), samples
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in samples}
    assert values["consentdesk_ledger_entries"] == 1
    assert values["consentdesk_requests_open"] == 0
    assert values['consentdesk_users{state="disabled"}'] == 1
    assert values["consentdesk_tokens_live"] == 5
    assert values["consentdesk_database_up"] == 1
    pid = os.getpid()
    labels = f'pid="{pid}",method="POST",route="/v1/consents",status="201"'
    posted = f"consentdesk_http_requests_total{{{labels}}}"
    assert values[posted] >= 1
    assert "# TYPE consentdesk_http_request_duration_seconds histogram" in answer.text
    assert NUMBER not in answer.text  # routes are templates, never a number


# --- one real server process: its log -----------------------------------------------------


@pytest.fixture
def logged_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    url = sqlite_url(tmp_path / "server.db")
    engine = db.make_engine(url)
    db.upgrade(engine)
    tokens = seed_users(engine)
    engine.dispose()
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "consentdesk", "serve", "--database", url, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(base, proc), what="the server to start")
        yield base, tokens, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _ready(base: str, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, "the server exited"
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_a_client_gone_mid_upload_is_one_log_line(
    logged_server: tuple[str, dict[str, str], Path],
) -> None:
    base, tokens, log = logged_server
    port = int(base.rsplit(":", 1)[1])
    signed_in = b"Authorization: Bearer " + tokens["alice"].encode() + b"\r\n"
    for auth in (signed_in, b"", signed_in):  # with a token or without any
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(
                b"POST /v1/consents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + auth
                + b"Content-Length: 5000\r\n\r\n"
                + b'{"event_id": "'
            )
            time.sleep(0.2)  # let the server start reading the body, then hang up
    with httpx.Client(base_url=base) as client:
        answer = client.get("/metrics")
    gone = [
        line
        for line in answer.text.splitlines()
        if line.startswith("consentdesk_client_disconnects_total")
    ]
    wait_until(lambda: log.read_text().count("client disconnected") == 3, what="three lines")
    text = log.read_text()
    assert "Traceback" not in text and "ERROR" not in text, text
    assert gone and float(gone[0].rsplit(" ", 1)[1]) >= 1


def test_latencies_stay_readable_in_the_log(
    logged_server: tuple[str, dict[str, str], Path],
) -> None:
    base, tokens, log = logged_server
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tokens['alice']}"}) as c:
        assert c.get(f"/v1/subjects/{NUMBER}/status").status_code == 200
    wait_until(lambda: "/v1/subjects/{e164}/status" in log.read_text(), what="the access line")
    line = next(x for x in log.read_text().splitlines() if "/v1/subjects/{e164}/status" in x)
    assert re.search(r"GET /v1/subjects/\{e164\}/status -> 200 in \d+\.\dms$", line), line
    assert NUMBER not in log.read_text()
    # The redaction leaves slow answers' figures alone (it used to take "200 1234" for a number).
    for ms in (999.9, 1234.5, 98765.4):
        slow = ACCESS_FORMAT % ("POST", "/v1/batch", 201, ms)
        assert redact(slow) == slow


# --- start-up waits for the database ------------------------------------------------------


@pytest.mark.postgres
def test_a_server_started_before_its_database_waits_for_it(tmp_path: Path) -> None:
    name = f"cdwait_{os.getpid()}_{int(time.time())}"
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    port = free_port()
    log = tmp_path / "server.log"
    env = {**os.environ, "CONSENTDESK_DB_WAIT": "60"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "consentdesk", "serve", "--database", url, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=env,
        )
    try:
        wait_until(lambda: "retrying for up to" in log.read_text(), what="a retry")
        assert proc.poll() is None  # still waiting, not exited
        # The database appears whole (made and upgraded under another name), as
        # when PostgreSQL itself comes up.
        staging = f"{name}_new"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{staging}"')
        engine = db.make_engine(url.replace(name, staging))
        db.upgrade(engine)
        engine.dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{staging}" RENAME TO "{name}"')
        wait_until(lambda: _ready(f"http://127.0.0.1:{port}", proc), what="the server to start")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            for leftover in (name, f"{name}_new"):
                conn.execute(f'DROP DATABASE IF EXISTS "{leftover}" WITH (FORCE)')


def test_the_wait_is_bounded(tmp_path: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:1/none"  # nothing listens on port 1
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "consentdesk", "serve", "--database", url],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "CONSENTDESK_DB_WAIT": "2"},
        timeout=60,
    )
    assert done.returncode != 0
    assert "cannot reach the database" in done.stderr and "Traceback" not in done.stderr
    assert time.monotonic() - started < 30
