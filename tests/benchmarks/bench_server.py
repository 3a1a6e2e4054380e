"""Team server benchmark on PostgreSQL: status lookups, captures, outbox drain.

    python -m pytest -m benchmark tests/benchmarks/bench_server.py -s

A fresh PostgreSQL database (127.0.0.1:5432) is bulk-loaded with 1,000,000
consent events for 100,000 subjects (real canonical bodies and a real hash
chain, written with COPY), then ``consentdesk serve --workers 3`` runs on it
and 50 concurrent clients on loopback measure:

- status lookups at a steady 200 per second in total (every client one lookup
  each 250 ms, each with an X-Call-Id so every read is logged; a busy agent looks
  up about one caller a minute, so this is far above a real floor): p99 <= 20 ms.
  The same lookups back to back are reported too: that is the server's capacity,
  and its latency is the queue of 50 clients in front of it;
- captures per second with every client posting back to back: >= 1,000;
- one desk's outbox holding 10,000 captures made while offline, drained into the
  running server: <= 30 s.

Set CONSENTDESK_BENCH_KEEP_DB=1 to keep the loaded database (``cdbench_server``)
for the next run instead of dropping it.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from consentdesk.domain import capture
from consentdesk.domain.catalogue import load_catalogue
from consentdesk.domain.codec import GENESIS, link_hash
from consentdesk.domain.model import Channel, ConsentState, Jurisdiction, LawfulBasis, to_jsonable
from consentdesk.domain.review import Role
from consentdesk.domain.scripts import ScriptKind, covers, load_scripts, render, script_context
from consentdesk.server import db
from consentdesk.server.store import Store
from consentdesk.stores.http_backend import HttpBackend
from consentdesk.stores.outbox import Outbox

pytestmark = [pytest.mark.benchmark, pytest.mark.postgres, pytest.mark.timeout(3 * 3600)]

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
KEPT_DB = "cdbench_server"
SUBJECTS = 100_000
EVENTS = 1_000_000
CLIENTS = 50
WORKERS = 3  # server processes: more than cores, as each spends time waiting on PostgreSQL
PACED_INTERVAL_S = 0.25  # each client: one lookup every 250 ms (200/s in all)
PACED_SECONDS = 20.0
SATURATED_SECONDS = 10.0
CAPTURE_SECONDS = 10.0
OUTBOX_CAPTURES = 10_000
STATUS_P99_MS = 20.0
CAPTURES_PER_S = 1_000.0
DRAIN_S = 30.0
AGENT = "bench-agent"
T0 = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]

CATALOGUE = load_catalogue()
SCRIPTS = load_scripts()
CELLS = [
    (p.id, ch)
    for p in CATALOGUE
    if Jurisdiction.GDPR in p.jurisdictions and p.lawful_basis == LawfulBasis.CONSENT
    for ch in p.channels
    if any(s.kind == ScriptKind.CONSENT and covers(s, p.id) for s in SCRIPTS)
]


def number(i: int) -> str:
    return f"+49151{i:08d}"


def consent_event(subject: str, purpose: str, channel: Channel, state: ConsentState) -> Any:
    script = next(
        s
        for s in SCRIPTS
        if s.language == "en"
        and s.kind
        == (ScriptKind.WITHDRAWAL if state == ConsentState.WITHDRAWN else ScriptKind.CONSENT)
        and covers(s, purpose)
    )
    context = script_context(
        language="en",
        company="Example Energy GmbH",
        agent_name="Alex",
        purposes=[CATALOGUE.get(purpose)],
        channels=[channel],
    )
    return capture.consent_event(
        catalogue=CATALOGUE,
        purpose=purpose,
        channel=channel,
        state=state,
        rendered=render(script, context),
        agent=AGENT,
        jurisdiction=Jurisdiction.GDPR,
        call_id="call-bench",
        subject=subject,
    )


# --- the database -----------------------------------------------------------------------


def _templates() -> dict[tuple[str, Channel, ConsentState], dict[str, Any]]:
    """One real event per cell and state; the load varies ids, subjects and times."""
    out = {}
    for purpose, channel in CELLS:
        for state in (ConsentState.GIVEN, ConsentState.REFUSED, ConsentState.WITHDRAWN):
            out[(purpose, channel, state)] = to_jsonable(
                consent_event(number(0), purpose, channel, state)
            )
    return out


def bulk_load(url: str) -> None:
    """1,000,000 events through COPY: canonical bodies, chained hashes, review columns."""
    started = time.perf_counter()
    templates = _templates()
    keys = list(templates)
    rng = random.Random(7)
    validity = {p.id: p.validity_days for p in CATALOGUE}
    engine = db.make_engine(url)
    db.upgrade(engine)
    with engine.begin() as conn:
        for index in db.entries.indexes:
            index.drop(conn)
    engine.dispose()
    columns = (
        "seq, kind, event_id, subject, agent, team, recorded_at, body, prev_hash, hash, action,"
        " at, purpose, channel, jurisdiction, script_id, script_version, call_id"
    )
    prev = GENESIS
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        with conn.cursor().copy(f"COPY entries ({columns}) FROM STDIN") as copy:
            for seq in range(1, EVENTS + 1):
                purpose, channel, state = keys[rng.randrange(len(keys))]
                body = dict(templates[(purpose, channel, state)])
                at = T0 + timedelta(seconds=seq * 30)
                body["subject"] = number(rng.randrange(SUBJECTS))
                body["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                body["at"] = at.isoformat()
                days = validity[purpose]
                if state == ConsentState.GIVEN and days:
                    body["valid_until"] = (at + timedelta(days=days)).isoformat()
                text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                digest = link_hash(prev, text)
                action = {"given": "consent", "refused": "refusal", "withdrawn": "withdrawal"}
                copy.write_row(
                    (
                        seq,
                        "consent",
                        body["event_id"],
                        body["subject"],
                        AGENT,
                        "floor-1",
                        at,
                        text,
                        prev,
                        digest,
                        action[state.value],
                        at,
                        purpose,
                        channel.value,
                        "gdpr",
                        body["notice"]["script_id"],
                        body["notice"]["version"],
                        "call-bench",
                    )
                )
                prev = digest
        conn.commit()
    engine = db.make_engine(url)
    with engine.begin() as conn:
        for index in db.entries.indexes:
            index.create(conn)
    engine.dispose()
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    took = time.perf_counter() - started
    print(f"\nloaded {EVENTS:,} events for {SUBJECTS:,} subjects in {took:.0f} s")


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    keep = os.environ.get("CONSENTDESK_BENCH_KEEP_DB") == "1"
    name = KEPT_DB if keep else f"cdbench_{os.getpid()}"
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and not keep:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(url) as conn:
            has_table = conn.execute("SELECT to_regclass('entries')").fetchone()[0]
            loaded = (
                has_table
                and conn.execute(
                    "SELECT count(*) FROM entries WHERE agent = %s", (AGENT,)
                ).fetchone()[0]
                >= EVENTS
            )
        if not loaded:
            bulk_load(url)
        yield url
    finally:
        if not keep:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def token(database: str) -> str:
    engine = db.make_engine(database)
    store = Store(engine, catalogue=CATALOGUE, scripts=SCRIPTS)
    if AGENT not in {v.name for v in store.users()}:
        store.add_user(AGENT, Role.AGENT, team="floor-1")
    minted = store.create_token(AGENT)
    engine.dispose()
    return minted


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with socket_port() as port:
        log = (tmp_path_factory.mktemp("bench") / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "consentdesk",
            "serve",
            "--database",
            database,
            "--port",
            str(port),
            "--workers",
            str(WORKERS),
            "--log-level",
            "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


class socket_port:
    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


# --- a small keep-alive HTTP/1.1 client (cheap, so the clients measure the server) -------


class Connection:
    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.auth = f"Authorization: Bearer {token}\r\nHost: {host}:{port}\r\n".encode()

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(
        self, method: str, path: str, body: bytes = b"", extra: bytes = b""
    ) -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nContent-Length: {len(body)}\r\n".encode()
        if body:
            head += b"Content-Type: application/json\r\n"
        self.writer.write(head + self.auth + extra + b"\r\n" + body)
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "count": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


async def status_load(
    url: str, token: str, *, seconds: float, interval: float | None
) -> dict[str, Any]:
    """CLIENTS clients looking up random subjects; paced every *interval*, or back to back."""
    host, port = url.removeprefix("http://").split(":")
    conns = [Connection(host, int(port), token) for _ in range(CLIENTS)]
    await asyncio.gather(*(c.open() for c in conns))
    samples: list[float] = []
    errors = 0
    end = time.perf_counter() + seconds

    async def client(i: int, conn: Connection) -> None:
        nonlocal errors
        rng = random.Random(i)
        due = time.perf_counter() + rng.random() * (interval or 0)
        while True:
            if interval is not None:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                due += interval
            if time.perf_counter() >= end:
                return
            extra = f"X-Call-Id: bench-{i}\r\n".encode()
            started = time.perf_counter()
            code, _ = await conn.request(
                "GET", f"/v1/subjects/{number(rng.randrange(SUBJECTS))}/status", extra=extra
            )
            samples.append(time.perf_counter() - started)
            errors += code != 200

    started = time.perf_counter()
    await asyncio.gather(*(client(i, c) for i, c in enumerate(conns)))
    elapsed = time.perf_counter() - started
    for c in conns:
        c.close()
    return {**_ms(samples), "per_s": round(len(samples) / elapsed, 1), "errors": errors}


async def capture_load(
    url: str, token: str, bodies: list[bytes], *, seconds: float
) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    conns = [Connection(host, int(port), token) for _ in range(CLIENTS)]
    await asyncio.gather(*(c.open() for c in conns))
    samples: list[float] = []
    errors = 0
    queue = iter(bodies)
    end = time.perf_counter() + seconds

    async def client(conn: Connection) -> None:
        nonlocal errors
        for body in queue:
            if time.perf_counter() >= end:
                return
            started = time.perf_counter()
            code, _ = await conn.request("POST", "/v1/consents", body)
            samples.append(time.perf_counter() - started)
            errors += code != 201

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in conns))
    elapsed = time.perf_counter() - started
    for c in conns:
        c.close()
    return {**_ms(samples), "per_s": round(len(samples) / elapsed, 1), "errors": errors}


def capture_bodies(count: int) -> list[bytes]:
    """Unique, valid consent events as the desk sends them (template + fresh ids)."""
    templates = [
        to_jsonable(consent_event(number(0), purpose, channel, ConsentState.GIVEN))
        for purpose, channel in CELLS
    ]
    rng = random.Random(11)
    out = []
    for i in range(count):
        body = dict(templates[i % len(templates)])
        body["subject"] = number(rng.randrange(SUBJECTS))
        body["event_id"] = str(uuid.uuid4())
        out.append(json.dumps(body).encode())
    return out


def test_server_benchmark(
    server: str, token: str, database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results: dict[str, Any] = {}
    asyncio.run(status_load(server, token, seconds=3, interval=None))  # warm up
    results["status_paced"] = asyncio.run(
        status_load(server, token, seconds=PACED_SECONDS, interval=PACED_INTERVAL_S)
    )
    results["status_saturated"] = asyncio.run(
        status_load(server, token, seconds=SATURATED_SECONDS, interval=None)
    )
    bodies = capture_bodies(60_000)
    results["captures"] = asyncio.run(capture_load(server, token, bodies, seconds=CAPTURE_SECONDS))

    outbox = Outbox.for_server(tmp_path / "desk", server)
    desk = HttpBackend(server, token, outbox=outbox)
    desk.me()
    desk.catalogue()
    started = time.perf_counter()
    for i in range(OUTBOX_CAPTURES):
        purpose, channel = CELLS[i % len(CELLS)]
        desk.capture(consent_event(number(i % SUBJECTS), purpose, channel, ConsentState.GIVEN))
    queued = time.perf_counter() - started
    started = time.perf_counter()
    passes = 0
    while desk.pending_count():
        report = desk.sync_once()
        passes += 1
        assert report.error is None and not report.rejected, report
    drained = time.perf_counter() - started
    desk.close()
    results["outbox"] = {
        "captures": OUTBOX_CAPTURES,
        "queue_s": round(queued, 1),
        "drain_s": round(drained, 2),
        "per_s": round(OUTBOX_CAPTURES / drained, 1),
        "sync_passes": passes,
    }
    with psycopg.connect(database) as conn:
        count, top = conn.execute("SELECT count(*), max(seq) FROM entries").fetchone()
    results["ledger_entries"] = count

    with capsys.disabled():
        print(
            f"\nteam server benchmark (PostgreSQL, {WORKERS} server processes, {CLIENTS} clients)"
        )
        print(json.dumps(results, indent=2))
    assert count == top  # one unbroken run of sequence numbers
    assert results["status_paced"]["errors"] == 0 and results["captures"]["errors"] == 0
    assert results["status_paced"]["p99_ms"] <= STATUS_P99_MS
    assert results["captures"]["per_s"] >= CAPTURES_PER_S
    assert drained <= DRAIN_S
