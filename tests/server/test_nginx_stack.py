"""The production stack for real: Debian's nginx with the shipped site, terminating
TLS in front of two server workers on PostgreSQL.

nginx runs as a foreground child with its own prefix in a temporary folder; the
shipped site file (packaging/server) is used as it is, with only its ports,
host name and certificate paths replaced.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from server_records import NUMBER, consent
from server_support import REPO, free_port, postgres_database, seed_users, wait_until

from consentdesk.server import db, tokens
from consentdesk.stores.enrollment import enroll
from consentdesk.stores.http_backend import HttpBackend, probe_server
from consentdesk.stores.outbox import Outbox

SITE = REPO / "packaging" / "server" / "nginx-consentdesk-server.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not Path(NGINX).exists(), reason="needs Debian's nginx"),
]


def site_seconds(directive: str) -> int:
    """A timeout as the shipped site sets it (the test follows the file)."""
    found = re.search(rf"^\s*{directive}\s+(\d+)s;", SITE.read_text(), re.MULTILINE)
    assert found, directive
    return int(found.group(1))


def rewrite(site: str, **ports: int | str) -> str:
    """The shipped site with this machine's ports and certificate; each line must exist."""
    replacements = [
        ("    listen 80;\n", f"    listen 127.0.0.1:{ports['plain']};\n"),
        ("    listen [::]:80;\n", ""),
        ("    listen 443 ssl http2;\n", f"    listen 127.0.0.1:{ports['tls']} ssl http2;\n"),
        ("    listen [::]:443 ssl http2;\n", ""),
        ("server_name ledger.example.com;", "server_name localhost;"),
        ("/etc/ssl/certs/consentdesk-server.pem", str(ports["cert"])),
        ("/etc/ssl/private/consentdesk-server.key", str(ports["key"])),
        ("server 127.0.0.1:8765;", f"server 127.0.0.1:{ports['upstream']};"),
    ]
    for old, new in replacements:
        assert old in site, f"the shipped site no longer has {old!r}"
        site = site.replace(old, new)
    return site


@dataclass
class Stack:
    url: str  # https through nginx
    plain: str  # http through nginx (redirects)
    tls_port: int
    cert: Path
    tokens: dict[str, str]
    database: str
    nginx_log: Path
    workers: subprocess.Popen[bytes]


def _start_nginx(tmp: Path, site: str) -> subprocess.Popen[bytes]:
    for sub in ("logs", "temp"):
        (tmp / sub).mkdir()
    (tmp / "site.conf").write_text(site)
    (tmp / "nginx.conf").write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"""daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/logs/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {tmp}/logs/access.log;
    client_body_temp_path {tmp}/temp/body;
    proxy_temp_path {tmp}/temp/proxy;
    fastcgi_temp_path {tmp}/temp/fastcgi;
    uwsgi_temp_path {tmp}/temp/uwsgi;
    scgi_temp_path {tmp}/temp/scgi;
    include {tmp}/site.conf;
}}
"""
    )
    check = subprocess.run(
        [NGINX, "-t", "-p", str(tmp), "-c", str(tmp / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    with (tmp / "logs" / "stderr.log").open("wb") as err:
        return subprocess.Popen(
            [NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def _certificate(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "server.pem", tmp / "server.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def trust(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def _ready(url: str, **kwargs: object) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1, **kwargs).status_code == 200  # type: ignore[arg-type]
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("nginx")
    with postgres_database("cdnginx") as database:
        engine = db.make_engine(database)
        db.upgrade(engine)
        users = seed_users(engine)
        engine.dispose()
        upstream, tls, plain = free_port(), free_port(), free_port()
        serve = ["serve", "--database", database, "--port", str(upstream), "--workers", "2"]
        with (tmp / "workers.log").open("wb") as out:
            workers = subprocess.Popen(
                [sys.executable, "-m", "consentdesk", *serve, "--log-level", "warning"],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        cert, key = _certificate(tmp)
        site = rewrite(
            SITE.read_text(), plain=plain, tls=tls, cert=cert, key=key, upstream=upstream
        )
        nginx = _start_nginx(tmp, site)
        url = f"https://localhost:{tls}"
        try:
            wait_until(lambda: _ready(f"http://127.0.0.1:{upstream}"), what="the workers")
            wait_until(lambda: _ready(url, verify=trust(cert)), what="nginx")
            logs = tmp / "logs"
            yield Stack(url, f"http://127.0.0.1:{plain}", tls, cert, users, database, logs, workers)
        finally:
            nginx.terminate()
            nginx.wait(timeout=30)
            workers.terminate()
            workers.wait(timeout=30)


def test_captures_flow_over_tls(stack: Stack, tmp_path: Path) -> None:
    desk = HttpBackend(
        stack.url,
        stack.tokens["alice"],
        outbox=Outbox.for_server(tmp_path, stack.url),
        ca_bundle=stack.cert,
    )
    try:
        assert desk.me().name == "alice"
        events = [consent(agent="alice", call_id=f"call-{i}") for i in range(5)]
        for event in events:
            desk.capture(event)
        report = desk.sync_once()
        assert len(report.sent) == 5 and report.pending == 0, report
        status = desk.status(NUMBER)
        assert status.subject.number == NUMBER and status.cells
    finally:
        desk.close()
    engine = db.make_engine(stack.database)
    with engine.connect() as conn:
        stored = {r[0] for r in conn.exec_driver_sql("SELECT event_id FROM entries")}
    engine.dispose()
    assert {str(e.event_id) for e in events} <= stored
    moved = httpx.get(f"{stack.plain}/v1/me")
    assert moved.status_code == 301
    assert moved.headers["location"].startswith("https://")


def test_an_oversized_body_is_refused_by_nginx(stack: Stack) -> None:
    with httpx.Client(base_url=stack.url, verify=trust(stack.cert)) as client:
        answer = client.post(
            "/v1/consents",
            content=b"{" + b" " * 70_000 + b"}",
            headers={
                "Authorization": f"Bearer {stack.tokens['alice']}",
                "Content-Type": "application/json",
            },
        )
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith("too-large")
    assert answer.headers["server"].startswith("nginx")


def test_malformed_http_is_answered_as_a_problem(stack: Stack) -> None:
    with _tls(socket.create_connection(("127.0.0.1", stack.tls_port)), stack.cert) as sock:
        sock.sendall(b"GET /v1/me HTTP/1.1\r\nHost: localhost\r\nBroken header line\r\n\r\n")
        sock.settimeout(10)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer
    assert b"Content-Type: application/problem+json" in head
    assert b'"status":400' in body


def test_metrics_through_nginx_from_the_monitoring_host(stack: Stack) -> None:
    answer = httpx.get(f"{stack.url}/metrics", verify=trust(stack.cert))
    assert answer.status_code == 200
    assert "consentdesk_ledger_entries" in answer.text


def _tls(sock: socket.socket, cert: Path) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(cert))
    return ctx.wrap_socket(sock, server_hostname="localhost")


def _closed_by(sock: socket.socket, deadline: float) -> float | None:
    """When the peer closed *sock* (monotonic), or None if it was still open at *deadline*."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            return None
        except (ConnectionError, ssl.SSLError, OSError):
            return time.monotonic()
        if not data:
            return time.monotonic()
        # nginx may say 408 before it closes; keep reading until it does


def test_slow_clients_are_dropped_within_the_timeouts(stack: Stack) -> None:
    header_timeout = site_seconds("client_header_timeout")
    body_timeout = site_seconds("client_body_timeout")
    token = stack.tokens["alice"].encode()
    opened: list[tuple[str, socket.socket]] = []
    started = time.monotonic()
    for _ in range(10):
        silent = socket.create_connection(("127.0.0.1", stack.tls_port))
        opened.append(("silent", silent))
        partial_header = _tls(socket.create_connection(("127.0.0.1", stack.tls_port)), stack.cert)
        partial_header.sendall(b"GET /v1/me HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        opened.append(("partial header", partial_header))
        partial_body = _tls(socket.create_connection(("127.0.0.1", stack.tls_port)), stack.cert)
        partial_body.sendall(
            b"POST /v1/consents HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token + b'\r\nContent-Length: 4000\r\n\r\n{"event_id":'
        )
        opened.append(("partial body", partial_body))
    # While they hang, the desk is served as usual (they tie up nginx, not a worker).
    answer = httpx.get(
        f"{stack.url}/v1/me",
        headers={"Authorization": f"Bearer {stack.tokens['bert']}"},
        verify=trust(stack.cert),
    )
    assert answer.status_code == 200
    slack = 3.0
    deadline = started + max(header_timeout, body_timeout) + slack
    late = []
    for kind, sock in opened:
        closed = _closed_by(sock, deadline)
        limit = header_timeout if kind != "partial body" else body_timeout
        if closed is None or closed - started > limit + slack:
            late.append(kind)
        sock.close()
    assert not late, f"still open after the timeout: {late}"
    assert time.monotonic() - started >= min(header_timeout, body_timeout) - 1


def test_enrollment_over_tls_and_guessing_limited_by_nginx(stack: Stack) -> None:
    engine = db.make_engine(stack.database)
    code, _ = tokens.create_code(engine, "bert", token_days=30)
    engine.dispose()
    token, viewer = enroll(stack.url, code, label="desk-1", ca_bundle=stack.cert)
    assert viewer.name == "bert" and probe_server(stack.url, token, ca_bundle=stack.cert)
    with httpx.Client(base_url=stack.url, verify=trust(stack.cert)) as client:
        answers = [client.post("/v1/enroll", json={"code": "ZZZZ-ZZZZ"}) for _ in range(12)]
    codes = [a.status_code for a in answers]
    assert codes[0] == 401 and 429 in codes, codes
    limited = next(a for a in answers if a.status_code == 429)
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.headers["retry-after"] == "60"


def test_workers_down_is_a_problem_with_retry_after(stack: Stack) -> None:
    """Last in this module: it stops the workers."""
    stack.workers.terminate()
    stack.workers.wait(timeout=30)
    answer = httpx.get(f"{stack.url}/v1/me", verify=trust(stack.cert))
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "1"
    assert answer.json()["type"].endswith("unavailable")
