"""The demo customers: realistic, built from real scripts, and seeded only once."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consentdesk.domain.model import ConsentState, Jurisdiction, RequestStatus
from consentdesk.domain.references import is_valid_reference
from consentdesk.domain.scripts import load_scripts
from consentdesk.stores.demo import DEMO_CALLER, DEMO_COMPANY, demo_reference, seed
from consentdesk.stores.ledger import EmbeddedLedger, open_ledger

NOW = datetime.now(UTC)


@pytest.fixture
def ledger(data_dir: Path) -> Iterator[EmbeddedLedger]:
    with open_ledger(data_dir) as led:
        yield led


def test_seeding_again_adds_nothing_even_days_later(ledger: EmbeddedLedger) -> None:
    first = seed(ledger, now=NOW)
    count = ledger.count()
    assert first.added > 0
    assert count >= first.added
    for later in (NOW, NOW + timedelta(days=3)):
        again = seed(ledger, now=later)
        assert (again.consents_added, again.requests_added) == (0, 0)
        assert again.consents_present == first.consents_added
        assert again.requests_present == first.requests_added
        assert ledger.count() == count
    assert ledger.verify().ok


def test_demo_covers_the_cases_a_desk_meets(ledger: EmbeddedLedger) -> None:
    summary = seed(ledger, now=NOW)
    assert 5 <= len(summary.subjects) <= 6
    assert DEMO_CALLER in summary.subjects
    assert any(n.startswith("+1") for n in summary.subjects)
    histories = {n: ledger.history(n) for n in summary.subjects}
    assert max(histories, key=lambda n: len(histories[n])) == DEMO_CALLER

    events = [e for h in histories.values() for e in h]
    states = {e.state for e in events}
    assert {ConsentState.GIVEN, ConsentState.REFUSED, ConsentState.WITHDRAWN} <= states
    assert any(e.corrects is not None and e.correction_reason for e in events)
    assert any(e.jurisdiction == Jurisdiction.CCPA for e in events)
    spread = max(e.at for e in events) - min(e.at for e in events)
    assert spread > timedelta(days=180)  # histories over months

    caller = ledger.status(DEMO_CALLER)
    assert caller.subject.display_name and caller.subject.customer_ref
    cell_states = {c.state for c in caller.cells}
    assert {ConsentState.EXPIRED, ConsentState.WITHDRAWN, ConsentState.GIVEN} <= cell_states

    today = NOW.date()
    requests = ledger.requests()
    assert any(r.is_overdue(today) for r in requests)
    assert any(r.is_open and 0 <= r.days_left(today) <= 3 for r in requests)
    assert any(r.status == RequestStatus.COMPLETED for r in requests)
    assert all(is_valid_reference(r.reference) for r in requests)


def test_every_record_carries_the_hash_of_a_real_script(ledger: EmbeddedLedger) -> None:
    summary = seed(ledger, now=NOW)
    published = {(s.id, s.version, s.language) for s in load_scripts()}
    notices = [e.notice for n in summary.subjects for e in ledger.history(n)]
    assert notices
    for notice in notices:
        assert (notice.script_id, notice.version, notice.language) in published
        assert notice.sha256 == hashlib.sha256(notice.text.encode("utf-8")).hexdigest()
        assert DEMO_COMPANY in notice.text
        assert "{{" not in notice.text


def test_demo_numbers_are_read_in_the_given_region(data_dir: Path) -> None:
    with open_ledger(data_dir) as led:
        summary = seed(led, region="US", now=NOW)
    assert DEMO_CALLER in summary.subjects


def test_demo_references_are_fixed_and_valid() -> None:
    assert demo_reference("x") == demo_reference("x")
    assert demo_reference("x") != demo_reference("y")
    assert is_valid_reference(demo_reference("x"))
