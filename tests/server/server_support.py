"""Fixtures for the team server tests: real databases, real servers, real tokens.

PostgreSQL runs on 127.0.0.1:5432 (trust auth); each test session makes its
own database and drops it at the end. Servers are uvicorn, either in a thread
of the test process (API tests) or as ``consentdesk serve`` subprocesses on
free loopback ports (contract and fault tests).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn
from server_records import CATALOGUE, SCRIPTS
from sqlalchemy import Engine, text

from consentdesk.domain.review import Role
from consentdesk.server import db
from consentdesk.server.app import create_app
from consentdesk.server.store import Store

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 30.0

# name: (role, team, disabled)
USERS = {
    "alice": (Role.AGENT, "red", False),
    "bert": (Role.AGENT, "blue", False),
    "lena": (Role.LEAD, "red", False),
    "adam": (Role.ADMIN, None, False),
    "dora": (Role.AGENT, "red", True),
}


def wait_until(check: Callable[[], bool], *, timeout: float = DEADLINE_S, what: str) -> None:
    """Poll *check* until it holds; fail with *what* at the deadline."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- databases -----------------------------------------------------------------------


@contextmanager
def postgres_database(prefix: str = "cdtest") -> Iterator[str]:
    """A fresh PostgreSQL database for the duration; dropped afterwards."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with postgres_database() as url:
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        yield url


TABLES = (
    "enroll_failures",
    "enrollment_codes",
    "tokens",
    "users",
    "read_log",
    "subjects",
    "requests",
    "entries",
    "log_nodes",
    "log_checkpoints",
    "log_witnessed",
    "webhook_deliveries",
    "webhook_endpoints",
    "feed_state",
)


def wipe(engine: Engine) -> None:
    """Empty every table (fresh state per test without re-creating the schema)."""
    with engine.begin() as conn:
        if db.is_sqlite(engine):
            for table in TABLES:
                conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 (fixed names)
        else:
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY"))


def seed_users(engine: Engine) -> dict[str, str]:
    """The test users, each with one token: name → token."""
    store = Store(engine, catalogue=CATALOGUE, scripts=SCRIPTS)
    tokens = {}
    for name, (role, team, disabled) in USERS.items():
        store.add_user(name, role, team=team)
        tokens[name] = store.create_token(name)
        if disabled:
            store.set_disabled(name, True)
    return tokens


# --- servers ---------------------------------------------------------------------------


class ThreadServer:
    """uvicorn serving *app* from a thread of this process, on a free loopback port."""

    def __init__(self, app: object) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        wait_until(lambda: self.server.started, what="the in-process server to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=DEADLINE_S)
        self.sock.close()


class ServerProcess:
    """``consentdesk serve`` in a subprocess: started, killed and restarted on one port."""

    def __init__(self, database_url: str, log_dir: Path, *, port: int | None = None) -> None:
        self.database_url = database_url
        self.port = port or free_port()
        self.log_path = log_dir / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "consentdesk",
                    "serve",
                    "--database",
                    self.database_url,
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO,
            )
        wait_until(self._ready, what=f"the server on port {self.port} ({self.log_path})")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(
                f"server exited with {self.proc.returncode}: {self.log_path.read_text()}"
            )
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """SIGKILL: no goodbye, like a crashed host."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=DEADLINE_S)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start ``consentdesk serve`` processes; all are stopped after the test."""
    started: list[ServerProcess] = []

    def start(database_url: str, *, port: int | None = None) -> ServerProcess:
        proc = ServerProcess(database_url, tmp_path, port=port).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@dataclass
class Api:
    """One in-process server on a fresh database, with a client per test user."""

    url: str
    engine: Engine
    tokens: dict[str, str]
    kind: str

    def client(self, user: str | None = None, **headers: str) -> httpx.Client:
        auth = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return httpx.Client(base_url=self.url, headers={**auth, **headers}, timeout=10.0)

    def count(self, table: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def api_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, Engine]]:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path_factory.mktemp("api") / "server.db")
        engine = db.make_engine(url)
        db.upgrade(engine)
    else:
        url = request.getfixturevalue("pg_url")
        engine = db.make_engine(url)
    with ThreadServer(create_app(engine)) as server:
        yield request.param, server.url, engine
    engine.dispose()


@pytest.fixture
def api(api_server: tuple[str, str, Engine]) -> Api:
    kind, url, engine = api_server
    wipe(engine)
    return Api(url=url, engine=engine, tokens=seed_users(engine), kind=kind)
