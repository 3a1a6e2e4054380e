"""Ledger benchmark: status lookup and durable capture in a 1,000,000-event ledger.

    python -m pytest -m benchmark tests/benchmarks/bench_ledger.py

One subject has 1,000 events spread through the ledger (with corrections);
the rest belong to 200,000 ordinary callers. The first run builds the ledger
through the real bulk path (real hashes, same checks as capture) and caches
it in tests/artifacts/; each run measures on a fresh copy. Targets on a 2-core
machine: status lookup p99 <= 5 ms, durable capture p99 <= 15 ms.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consentdesk.domain.admission import expected_validity
from consentdesk.domain.catalogue import Catalogue, load_catalogue
from consentdesk.domain.model import (
    Channel,
    ConsentEvent,
    ConsentState,
    Jurisdiction,
    LawfulBasis,
    Notice,
)
from consentdesk.domain.scripts import load_scripts, render, script_by_id, script_context
from consentdesk.stores.ledger import EmbeddedLedger, schema_version

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(3 * 3600)]

EVENTS = 1_000_000
HEAVY_EVENTS = 1_000
ORDINARY_SUBJECTS = 200_000
HEAVY = "+4915100000000"
OPS = 500
LOOKUP_P99_MS = 5.0
CAPTURE_P99_MS = 15.0

SCRIPTS = load_scripts()
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
GENERATOR_VERSION = 3  # bump when the generated events change
T0 = datetime(2023, 1, 2, 8, 0, tzinfo=UTC)

Cell = tuple[str, Channel]
_NOTICES: dict[tuple[str, Channel, ConsentState], Notice] = {}


def _cells(catalogue: Catalogue) -> list[Cell]:
    """The cells a desk asks consent for (admission refuses the others)."""
    return [
        (p.id, ch)
        for p in catalogue
        if p.lawful_basis == LawfulBasis.CONSENT and Jurisdiction.GDPR in p.jurisdictions
        for ch in p.channels
    ]


def _notice(catalogue: Catalogue, purpose: str, channel: Channel, state: ConsentState) -> Notice:
    """The published script as read for this cell (rendered once per cell and kind)."""
    kind = ConsentState.WITHDRAWN if state == ConsentState.WITHDRAWN else ConsentState.GIVEN
    key = (purpose, channel, kind)
    if key not in _NOTICES:
        script_id = "withdrawal-general" if kind == ConsentState.WITHDRAWN else "consent-general"
        script = script_by_id(SCRIPTS, script_id, "en")
        context = script_context(
            language="en",
            company="Example Energy GmbH",
            agent_name="Alex",
            purposes=[catalogue.get(purpose)],
            channels=[channel],
        )
        _NOTICES[key] = render(script, context).notice()
    return _NOTICES[key]


def _event(
    rng: random.Random,
    catalogue: Catalogue,
    cells: list[Cell],
    number: str,
    at: datetime,
    corrects: uuid.UUID | None = None,
) -> ConsentEvent:
    purpose, channel = rng.choice(cells)
    state = rng.choice((ConsentState.GIVEN, ConsentState.REFUSED, ConsentState.WITHDRAWN))
    return ConsentEvent(
        subject=number,
        purpose=purpose,
        channel=channel,
        state=state,
        jurisdiction=Jurisdiction.GDPR,
        lawful_basis=LawfulBasis.CONSENT,
        notice=_notice(catalogue, purpose, channel, state),
        agent=f"agent-{rng.randrange(400):03d}",
        call_id=f"call-{rng.getrandbits(48):012x}",
        valid_until=expected_validity(catalogue.get(purpose), state, at),
        corrects=corrects,
        correction_reason="agent picked the wrong option" if corrects else None,
        at=at,
        event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
    )


def generate(catalogue: Catalogue) -> Iterator[ConsentEvent]:
    """The benchmark ledger's events, the same on every run."""
    rng = random.Random(20250303)
    cells = _cells(catalogue)
    every = EVENTS // HEAVY_EVENTS
    last_heavy: uuid.UUID | None = None
    for i in range(EVENTS):
        at = T0 + timedelta(seconds=60 * i)
        if i % every == every - 1:
            heavy_no = i // every
            fix = last_heavy if heavy_no % 50 == 49 else None
            event = _event(rng, catalogue, cells, HEAVY, at, corrects=fix)
            last_heavy = event.event_id
        else:
            number = f"+49152{rng.randrange(ORDINARY_SUBJECTS):08d}"
            event = _event(rng, catalogue, cells, number, at)
        yield event


def cached_ledger(catalogue: Catalogue) -> Path:
    """Build the 1,000,000-event ledger once; later runs reuse the file."""
    ARTIFACTS.mkdir(exist_ok=True)
    name = f"bench-ledger-{EVENTS}-s{schema_version()}-g{GENERATOR_VERSION}.sqlite3"
    final = ARTIFACTS / name
    if final.exists():
        return final
    building = ARTIFACTS / "building"
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir()
    started = time.perf_counter()
    with EmbeddedLedger(building / name, catalogue=catalogue, scripts=SCRIPTS) as led:
        added = led.import_events(generate(catalogue), batch_size=20_000)
    assert added == EVENTS
    (building / name).rename(final)
    shutil.rmtree(building)
    print(f"built {EVENTS:,} events in {time.perf_counter() - started:.0f} s")
    return final


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


def test_ledger_benchmark(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalogue = load_catalogue()
    with capsys.disabled():
        source = cached_ledger(catalogue)
    run_file = ARTIFACTS / "bench-run" / "ledger.sqlite3"
    shutil.rmtree(run_file.parent, ignore_errors=True)
    run_file.parent.mkdir()
    shutil.copyfile(source, run_file)
    # Flush the copy now, or the first capture's fsync would pay for writing it out.
    with run_file.open("rb+") as fh:
        os.fsync(fh.fileno())
    try:
        with EmbeddedLedger(run_file, catalogue=catalogue, scripts=SCRIPTS) as led:
            results = _measure(led, catalogue)
    finally:
        shutil.rmtree(run_file.parent, ignore_errors=True)
    (ARTIFACTS / "bench_ledger.json").write_text(json.dumps(results, indent=2) + "\n")
    with capsys.disabled():
        print()
        print(
            f"ledger benchmark ({results['events']:,} events; subject with {HEAVY_EVENTS:,};"
            f" load average {results['load_average_1m']})"
        )
        for key in ("status_first_ms", "history_heavy_ms"):
            print(f"  {key:<20} {results[key]:8.2f} ms")
        for key in ("status_heavy", "status_ordinary", "capture_durable"):
            r = results[key]
            print(
                f"  {key:<20} p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms"
                f"  max {r['max_ms']:6.2f} ms  (n={r['n']})"
            )
    assert results["status_heavy"]["p99_ms"] <= LOOKUP_P99_MS
    assert results["capture_durable"]["p99_ms"] <= CAPTURE_P99_MS


def _measure(led: EmbeddedLedger, catalogue: Catalogue) -> dict[str, object]:
    events = led.count()
    assert events == EVENTS

    started = time.perf_counter()
    first = led.status(HEAVY)
    status_first = time.perf_counter() - started
    # Every purpose × channel of the catalogue, the ones shown as information included.
    assert len(first.cells) == sum(len(p.channels) for p in catalogue)

    started = time.perf_counter()
    assert len(led.history(HEAVY)) == HEAVY_EVENTS
    history_heavy = time.perf_counter() - started

    heavy: list[float] = []
    for _ in range(OPS):
        started = time.perf_counter()
        led.status(HEAVY)
        heavy.append(time.perf_counter() - started)

    rng = random.Random(7)
    ordinary: list[float] = []
    for _ in range(OPS):
        number = f"+49152{rng.randrange(ORDINARY_SUBJECTS):08d}"
        started = time.perf_counter()
        led.status(number)
        ordinary.append(time.perf_counter() - started)

    cells = _cells(catalogue)
    captures: list[float] = []
    now = datetime.now(UTC)
    for i in range(OPS):
        event = _event(rng, catalogue, cells, f"+49157{i:08d}", now)
        started = time.perf_counter()
        led.capture(event)
        captures.append(time.perf_counter() - started)
    assert led.count() == EVENTS + OPS

    return {
        "events": events,
        # Other work on the machine shows up in the tails: keep it next to the figures.
        "load_average_1m": round(os.getloadavg()[0], 2),
        "status_first_ms": round(status_first * 1000, 3),
        "history_heavy_ms": round(history_heavy * 1000, 3),
        "status_heavy": _ms(heavy),
        "status_ordinary": _ms(ordinary),
        "capture_durable": _ms(captures),
    }
