"""Team server log benchmark: inclusion proofs served at a million entries.

    CONSENTDESK_BENCH_LOG_ENTRIES=100000 python -m pytest -m benchmark \
        tests/benchmarks/bench_server_log.py -s

A fresh PostgreSQL database gets the stored tree of N leaves (default
1,000,000; random leaf hashes, the perfect subtrees written with COPY) and one
signed checkpoint; ``consentdesk serve`` then answers inclusion proofs of
random leaves over loopback, one client back to back. Target: p99 <= 5 ms.
Each answer is checked against the signed root.
"""

from __future__ import annotations

import base64
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from consentdesk.domain import merkle
from consentdesk.domain.catalogue import load_catalogue
from consentdesk.domain.checkpoint import Checkpoint, Signer, sign_checkpoint
from consentdesk.domain.review import Role
from consentdesk.domain.scripts import load_scripts
from consentdesk.server import db
from consentdesk.server.store import Store

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(3600)]

LEAVES = int(os.environ.get("CONSENTDESK_BENCH_LOG_ENTRIES", "1000000"))
PROOFS = 1000
PROOF_P99_MS = 5.0
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SIGNER = Signer.generate("bench.ledger.example")


@pytest.fixture(scope="module")
def database() -> Iterator[tuple[str, bytes]]:
    name = f"cdbench_log_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        rng = random.Random(6962)
        compact = merkle.CompactRange()
        started = time.perf_counter()
        with psycopg.connect(url) as conn, conn.cursor() as cur:
            with cur.copy("COPY log_nodes (level, idx, hash) FROM STDIN") as copy:
                for _ in range(LEAVES):
                    for row in compact.append(merkle.leaf_hash(rng.randbytes(64))):
                        copy.write_row(row)
            root = compact.root()
            note = sign_checkpoint(Checkpoint(SIGNER.name, LEAVES, root), SIGNER).render()
            cur.execute(
                "INSERT INTO log_checkpoints (size, root, note) VALUES (%s, %s, %s)",
                (LEAVES, root, note),
            )
        print(f"\nstored a tree of {LEAVES:,} leaves in {time.perf_counter() - started:.0f} s")
        yield url, root
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_inclusion_proofs_at_size(database: tuple[str, bytes], tmp_path: Path) -> None:
    url, root = database
    engine = db.make_engine(url)
    store = Store(engine, catalogue=load_catalogue(), scripts=load_scripts())
    store.add_user("bench", Role.AGENT, team="t")
    token = store.create_token("bench")
    engine.dispose()
    port = _port()
    with (tmp_path / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "consentdesk", "serve", "--database", url,
             "--port", str(port), "--log-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.2)
        rng = random.Random(9162)
        samples = []
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers) as client:
            for i in range(PROOFS + 50):
                index = rng.randrange(LEAVES)
                start = time.perf_counter()
                response = client.get("/v1/log/proof/inclusion", params={"index": index})
                took = (time.perf_counter() - start) * 1000
                assert response.status_code == 200, response.text
                if i >= 50:  # after warm-up
                    samples.append(took)
                body = response.json()
                assert body["size"] == LEAVES
                path = [base64.b64decode(p) for p in body["proof"]]
                assert merkle.root_from_inclusion(index, LEAVES, _leaf_at(url, index), path) == root
            # The same server's cheapest authenticated answer, to judge the machine's load by.
            baseline = []
            for _ in range(PROOFS):
                start = time.perf_counter()
                assert client.get("/v1/me").status_code == 200
                baseline.append((time.perf_counter() - start) * 1000)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    p99 = statistics.quantiles(samples, n=100)[98]
    base99 = statistics.quantiles(baseline, n=100)[98]
    print(f"inclusion proof at {LEAVES:,} entries over HTTP: p50 "
          f"{statistics.median(samples):.2f} ms, p99 {p99:.2f} ms "
          f"(GET /v1/me on the same server: p50 {statistics.median(baseline):.2f} ms, "
          f"p99 {base99:.2f} ms)")  # fmt: skip
    assert p99 <= PROOF_P99_MS


_LEAF_CONN: dict[str, psycopg.Connection] = {}


def _leaf_at(url: str, index: int) -> bytes:
    conn = _LEAF_CONN.get(url) or _LEAF_CONN.setdefault(url, psycopg.connect(url))
    row = conn.execute(
        "SELECT hash FROM log_nodes WHERE level = 0 AND idx = %s", (index,)
    ).fetchone()
    assert row is not None
    return bytes(row[0])
