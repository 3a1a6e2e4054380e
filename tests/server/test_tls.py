"""TLS to the team server: verified against the trust store plus IT's CA bundle."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from server_records import CATALOGUE, NUMBER, SCRIPTS
from server_support import seed_users, sqlite_url, wait_until

from consentdesk.server import db
from consentdesk.server.app import create_app
from consentdesk.stores.http_backend import HttpBackend, InsecureServer, probe_server
from consentdesk.stores.outbox import Outbox


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private CA (as IT would run) and a certificate for localhost signed by it."""
    d = tmp_path_factory.mktemp("pki")
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=Consent Desk test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        cwd=d,
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        cwd=d,
    )
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
        cwd=d,
    )
    return d


@pytest.fixture(scope="module")
def tls_server(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    engine = db.make_engine(sqlite_url(tmp_path_factory.mktemp("tls") / "server.db"))
    db.upgrade(engine)
    token = seed_users(engine)["alice"]
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(engine, catalogue=CATALOGUE, scripts=SCRIPTS),
        log_config=None,
        lifespan="off",
        ws="none",
        ssl_certfile=str(pki / "server.pem"),
        ssl_keyfile=str(pki / "server.key"),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, what="the TLS server")
    yield f"https://localhost:{port}", token
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()
    engine.dispose()


def test_the_ca_bundle_makes_the_server_trusted(
    tls_server: tuple[str, str], pki: Path, tmp_path: Path
) -> None:
    url, token = tls_server
    assert probe_server(url, token, ca_bundle=pki / "ca.pem").name == "alice"
    backend = HttpBackend(
        url, token, outbox=Outbox.for_server(tmp_path, url), ca_bundle=pki / "ca.pem"
    )
    try:
        assert backend.status(NUMBER).subject.number == NUMBER
    finally:
        backend.close()


def test_an_untrusted_certificate_is_refused_with_a_reason(
    tls_server: tuple[str, str], tmp_path: Path
) -> None:
    url, token = tls_server
    with pytest.raises(InsecureServer, match="certificate is not trusted"):
        probe_server(url, token)
    backend = HttpBackend(url, token, outbox=Outbox.for_server(tmp_path, url))
    try:
        with pytest.raises(InsecureServer, match=r"server\.ca_bundle"):
            backend.status(NUMBER)
    finally:
        backend.close()


def test_the_certificate_must_name_the_host(tls_server: tuple[str, str], pki: Path) -> None:
    url, token = tls_server
    by_ip = url.replace("localhost", "127.0.0.1")
    with pytest.raises(InsecureServer, match="not trusted"):
        probe_server(by_ip, token, ca_bundle=pki / "ca.pem")
