"""The change feed's kernel on a real embedded ledger: what each entry changed,
in ledger order, the same however the entries are paged."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from ledger_support import (
    CATALOGUE,
    NUMBER,
    OTHER,
    Clock,
    consent,
    make_ledger,
    new_request,
    verified,
)

from consentdesk.domain.changes import (
    CONSENT_CHANGED,
    REQUEST_CHANGED,
    Change,
    check_event_types,
    parse_cursor,
    subject_pseudonym,
)
from consentdesk.domain.model import Channel, ConsentState, DomainError
from consentdesk.domain.status import current_status
from consentdesk.stores.changes import pseudonym_key, read_changes
from consentdesk.stores.ledger import EmbeddedLedger


def cells(changes: list[Change]) -> list[tuple[str, str, str, str | None]]:
    return [
        (
            c.subject or "",
            f"{c.data['purpose']}/{c.data['channel']}",
            c.data["state"],
            c.data["previous_state"],
        )
        for c in changes
        if c.type == CONSENT_CHANGED
    ]


@pytest.fixture
def ledger(tmp_path: Path) -> EmbeddedLedger:
    clock = Clock()
    return make_ledger(tmp_path / "ledger.sqlite3", clock)


def test_status_changes_per_cell_corrections_and_repeats(ledger: EmbeddedLedger) -> None:
    given = ledger.capture(consent())
    ledger.capture(consent(channel=Channel.EMAIL))
    ledger.capture(consent())  # the same answer again: no change
    withdrawn = consent(state=ConsentState.WITHDRAWN)
    ledger.capture(withdrawn)
    # A correction voids the withdrawal: the cell is given again.
    ledger.capture(consent(state=ConsentState.VOID, corrects=withdrawn.event_id, reason="misheard"))
    changes, nxt = read_changes(ledger, CATALOGUE, 0)
    assert nxt == 5
    assert cells(changes) == [
        (NUMBER, "marketing/phone", "given", "unknown"),
        (NUMBER, "marketing/email", "given", "unknown"),
        (NUMBER, "marketing/phone", "withdrawn", "given"),
        (NUMBER, "marketing/phone", "given", "withdrawn"),
    ]
    assert [c.seq for c in changes] == [1, 2, 4, 5]
    assert changes[0].data["event_id"] == str(given.event_id)


def test_requests_and_paging(ledger: EmbeddedLedger) -> None:
    request = ledger.create_request(new_request(OTHER))
    ledger.capture(consent(OTHER, "profiling", Channel.ONLINE))
    ledger.update_request(verified(request.request_id))
    whole, nxt = read_changes(ledger, CATALOGUE, 0)
    assert [c.type for c in whole] == [REQUEST_CHANGED, CONSENT_CHANGED, REQUEST_CHANGED]
    assert (whole[0].data["status"], whole[0].data["previous_status"]) == ("received", None)
    assert (whole[2].data["status"], whole[2].data["previous_status"]) == (
        "verifying",
        "received",
    )
    assert whole[2].data["reference"] == request.reference
    # One entry per page gives the same changes: each page learns what came before.
    paged, after = [], 0
    while True:
        page, after_next = read_changes(ledger, CATALOGUE, after, limit=1)
        if after_next == after:
            break
        paged += page
        after = after_next
    assert paged == whole and after == nxt


def test_the_feed_ends_where_the_status_fold_ends(ledger: EmbeddedLedger) -> None:
    clock_states = [ConsentState.GIVEN, ConsentState.REFUSED, ConsentState.WITHDRAWN]
    for i in range(12):
        number = (NUMBER, OTHER)[i % 2]
        purpose = ("marketing", "call-recording")[i % 3 == 0]
        ledger.capture(consent(number, purpose, state=clock_states[i % 3]))
    changes, _ = read_changes(ledger, CATALOGUE, 0)
    last: dict[tuple[str, str], str] = {}
    for subject, cell, state, _ in cells(changes):
        last[(subject, cell)] = state
    for number in (NUMBER, OTHER):
        now = ledger.history(number)[-1].at + timedelta(seconds=1)
        for c in current_status(ledger.history(number), CATALOGUE, now):
            key = (number, f"{c.purpose}/{c.channel.value}")
            assert last.get(key, "unknown") == c.state.value


def test_wire_form_pseudonyms_and_inputs(tmp_path: Path, ledger: EmbeddedLedger) -> None:
    ledger.capture(consent())
    (change,), _ = read_changes(ledger, CATALOGUE, 0)
    key = pseudonym_key(tmp_path)
    assert (
        pseudonym_key(tmp_path) == key
        and (tmp_path / "feed-pseudonym.key").stat().st_mode & 0o077 == 0
    )
    sid = subject_pseudonym(key, NUMBER)
    hidden = change.to_json(subject_id=sid, include_number=False)
    assert NUMBER not in str(hidden) and hidden["data"]["subject_id"] == sid
    assert change.to_json(subject_id=sid, include_number=True)["data"]["subject"] == NUMBER
    assert subject_pseudonym(b"other key", NUMBER) != sid
    assert parse_cursor(None) == 0 and parse_cursor(" 42 ") == 42
    for bad in ("-1", "abc", "1.5", str(2**63)):
        with pytest.raises(DomainError):
            parse_cursor(bad)
    assert check_event_types(["request.changed", "request.changed"]) == ("request.changed",)
    with pytest.raises(DomainError):
        check_event_types(["consent.deleted"])
