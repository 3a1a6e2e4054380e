"""Verifiable-log benchmark: capture with checkpointing, ledger verify, inclusion proofs.

    CONSENTDESK_BENCH_LOG_ENTRIES=20000 python -m pytest -m benchmark tests/benchmarks/bench_log.py

Builds a ledger of N consent events (default 1,000,000) through the real bulk
path (one signed checkpoint per 5,000-entry batch), then measures: durable
capture p99 with a signed checkpoint per capture (target <= 15 ms), the full
``ledger verify`` (chain and tree audit; target <= 30 s at 1M) and inclusion
proof p99 from the stored tree (target <= 5 ms). Keys live in an in-memory
keyring (the test-wide one), so the keyring write is not what is measured.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from datetime import timedelta
from pathlib import Path

import pytest
from bench_ledger import T0, _cells, _event

from consentdesk.domain.catalogue import load_catalogue
from consentdesk.stores.ledger import EmbeddedLedger
from consentdesk.stores.ledger_log import audit_file

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(3 * 3600)]

ENTRIES = int(os.environ.get("CONSENTDESK_BENCH_LOG_ENTRIES", "1000000"))
OPS = 300
CAPTURE_P99_MS, VERIFY_S_AT_1M, PROOF_P99_MS = 15.0, 30.0, 5.0


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def test_log_benchmark(tmp_path: Path) -> None:
    catalogue = load_catalogue()
    cells = _cells(catalogue)
    rng = random.Random(12)
    ledger = EmbeddedLedger(tmp_path / "ledger.sqlite3", catalogue=catalogue)
    events = (
        _event(rng, cells, f"+49151{i % 200_000:08d}", T0 + timedelta(seconds=i))
        for i in range(ENTRIES)
    )
    ledger.import_events(events)

    capture_ms = []
    for i in range(OPS):
        event = _event(rng, cells, f"+49152{i:08d}", T0 + timedelta(days=900, seconds=i))
        start = time.perf_counter()
        ledger.capture(event)
        capture_ms.append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    assert ledger.verify().ok
    chain_s = time.perf_counter() - start
    with ledger.read() as conn:
        result = audit_file(conn, ledger.desk_log, ledger.desk_log.public_key(conn))
    verify_s = time.perf_counter() - start
    tree_s = verify_s - chain_s
    assert result.ok, result.problems

    proof_ms = []
    with ledger.read() as conn:
        note = ledger.desk_log.newest(conn, ledger.desk_log.public_key(conn))
        assert note is not None
        ids = [
            r[0]
            for r in conn.execute("SELECT event_id FROM entries ORDER BY random() LIMIT ?", (OPS,))
        ]
        for event_id in ids:
            start = time.perf_counter()
            ledger.desk_log.prove(conn, event_id, note)
            proof_ms.append((time.perf_counter() - start) * 1000)
    ledger.close()

    total = ENTRIES + OPS
    print(
        f"\nlog at {total} entries: capture p99 {_p99(capture_ms):.2f} ms, "
        f"verify {verify_s:.1f} s (chain and records {chain_s:.1f} s, tree {tree_s:.1f} s), "
        f"inclusion proof p99 {_p99(proof_ms):.2f} ms"
    )
    assert _p99(capture_ms) <= CAPTURE_P99_MS
    assert _p99(proof_ms) <= PROOF_P99_MS
    assert verify_s <= VERIFY_S_AT_1M * max(total, 1) / 1_000_000 + 1.0
