"""The ledger's API for the review side: append_record (idempotent, checked in the
write transaction, on the same hash chain) and read (read-only snapshots)."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from ledger_support import NUMBER, OTHER, T0, Clock, consent, make_ledger, new_request, verified

from consentdesk.domain.backend import BackendError
from consentdesk.domain.incident import CallTag, IncidentClosed, IncidentOpened
from consentdesk.domain.model import DomainError
from consentdesk.domain.review import FlagAction, FlagNote, ReadAccess, ReadKind
from consentdesk.stores.ledger import (
    BUSY_TIMEOUT_S,
    FILE_NAME,
    GENESIS,
    EmbeddedLedger,
    LedgerReadOnly,
    link_hash,
)


@pytest.fixture
def ledger(data_dir: Path) -> Iterator[EmbeddedLedger]:
    with make_ledger(data_dir / FILE_NAME, Clock()) as opened:
        yield opened


def flag(event_id: uuid.UUID, comment: str = "wrong purpose read out") -> FlagNote:
    return FlagNote(uuid.uuid4(), event_id, FlagAction.RAISE, "lena", comment, at=T0)


def opened_incident() -> IncidentOpened:
    return IncidentOpened(
        incident_id=uuid.uuid4(),
        title="Wrong recipients",
        what_happened="A mailing exposed addresses.",
        aware_at=T0,
        purposes=("marketing",),
        regions=("DE",),
        script="We know about the email sent in error.",
        by="root",
        at=T0 + timedelta(hours=1),
    )


def _entry(ledger: EmbeddedLedger, seq: int) -> tuple[str, str, str | None, str | None]:
    with ledger.read() as conn:
        row = conn.execute(
            "SELECT kind, event_id, subject, ref FROM entries WHERE seq = ?", (seq,)
        ).fetchone()
    return tuple(row)  # type: ignore[no-any-return]


# --- append_record --------------------------------------------------------------------


def test_a_record_is_chained_with_the_columns_of_its_kind(ledger: EmbeddedLedger) -> None:
    first = ledger.capture(consent())
    read = ReadAccess("lena", NUMBER, ReadKind.DETAIL, at=T0, about=first.event_id)
    receipt = ledger.append_record(read)
    assert receipt.seq == first.seq + 1 and not receipt.duplicate
    with ledger.read() as conn:
        prev_hash, body = conn.execute(
            "SELECT prev_hash, body FROM entries WHERE seq = ?", (receipt.seq,)
        ).fetchone()
    assert prev_hash == first.hash and receipt.hash == link_hash(first.hash, body)
    # subject: whose data was read; ref: who read it.
    assert _entry(ledger, receipt.seq) == ("read-log", str(read.record_id), NUMBER, "lena")


def test_the_same_record_twice_is_recorded_once(ledger: EmbeddedLedger) -> None:
    note = flag(ledger.capture(consent()).event_id)
    receipt = ledger.append_record(note)
    again = ledger.append_record(note)
    assert again == dataclasses.replace(receipt, duplicate=True)
    assert ledger.count() == 2


def test_a_retry_is_not_checked_again(ledger: EmbeddedLedger) -> None:
    """A retried append returns its receipt even if the rule would now refuse it."""
    note = flag(ledger.capture(consent()).event_id)
    receipt = ledger.append_record(note)

    def refuse(conn: sqlite3.Connection) -> None:
        raise DomainError("this flag is already resolved")

    assert ledger.append_record(note, check=refuse) == dataclasses.replace(receipt, duplicate=True)


def test_the_same_id_with_other_content_is_refused(ledger: EmbeddedLedger) -> None:
    note = flag(ledger.capture(consent()).event_id)
    ledger.append_record(note)
    with pytest.raises(DomainError, match="different content"):
        ledger.append_record(dataclasses.replace(note, comment="something else"))
    # An id is unique across kinds too: a consent event's id cannot name a review record.
    event = consent(OTHER)
    ledger.capture(event)
    with pytest.raises(DomainError, match="different content"):
        ledger.append_record(dataclasses.replace(flag(event.event_id), record_id=event.event_id))
    assert ledger.count() == 3 and ledger.verify().ok


def test_only_review_records_are_appended(ledger: EmbeddedLedger) -> None:
    with pytest.raises(TypeError, match="not a review record"):
        ledger.append_record(consent())  # type: ignore[arg-type]
    assert ledger.count() == 0


def test_check_runs_inside_the_write_transaction(ledger: EmbeddedLedger) -> None:
    target = ledger.capture(consent())
    seen: list[int] = []

    def check(conn: sqlite3.Connection) -> None:
        assert conn.in_transaction
        seen.append(conn.execute("SELECT count(*) FROM entries").fetchone()[0])
        # The write lock is held: no other writer can slip in between check and append.
        other = sqlite3.connect(ledger.path, timeout=0)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()

    ledger.append_record(flag(target.event_id), check=check)
    assert seen == [1] and ledger.count() == 2


def test_a_failing_check_rolls_back_and_reaches_the_caller(ledger: EmbeddedLedger) -> None:
    target = ledger.capture(consent())
    note = flag(target.event_id)

    def refuse(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO subjects (number, updated_at) VALUES (?, ?)", (OTHER, "x"))
        raise DomainError("this flag is already resolved")

    with pytest.raises(DomainError, match="already resolved"):
        ledger.append_record(note, check=refuse)
    assert ledger.count() == 1
    with ledger.read() as conn:
        assert conn.execute("SELECT count(*) FROM subjects").fetchone()[0] == 0
    # Nothing was half-written: the same record goes in cleanly afterwards.
    assert ledger.append_record(note).seq == 2
    assert ledger.verify().ok


def test_the_chain_verifies_across_all_kinds(ledger: EmbeddedLedger) -> None:
    receipts = [ledger.capture(consent())]
    request = new_request()
    ledger.create_request(request)
    incident = opened_incident()
    receipts.append(ledger.append_record(incident))
    receipts.append(ledger.append_record(flag(receipts[0].event_id)))
    receipts.append(ledger.append_record(CallTag(incident.incident_id, "call-9", "anna", at=T0)))
    ledger.update_request(verified(request.request_id))
    receipts.append(ledger.append_record(ReadAccess("lena", NUMBER, ReadKind.STATUS, at=T0)))
    receipts.append(ledger.append_record(ReadAccess("root", None, ReadKind.EXPORT, at=T0)))
    closed = IncidentClosed(incident.incident_id, "customers informed", by="root", at=T0)
    receipts.append(ledger.append_record(closed))
    receipts.append(ledger.capture(consent(OTHER)))
    assert [r.seq for r in receipts] == [1, 3, 4, 5, 7, 8, 9, 10]
    result = ledger.verify()
    assert result.ok and result.count == 10
    with ledger.read() as conn:
        kinds = [k for (k,) in conn.execute("SELECT kind FROM entries ORDER BY seq")]
        first_prev = conn.execute("SELECT prev_hash FROM entries WHERE seq = 1").fetchone()[0]
    assert first_prev == GENESIS
    assert set(kinds) == {
        "consent",
        "request",
        "request-change",
        "incident",
        "flag",
        "call-tag",
        "read-log",
    }


def test_verify_catches_a_review_record_with_wrong_columns(ledger: EmbeddedLedger) -> None:
    receipt = ledger.append_record(ReadAccess("lena", NUMBER, ReadKind.STATUS, at=T0))
    raw = sqlite3.connect(ledger.path)
    raw.execute("DROP TRIGGER entries_no_update")
    raw.execute("UPDATE entries SET subject = ? WHERE seq = ?", (OTHER, receipt.seq))
    raw.commit()
    raw.close()
    result = ledger.verify()
    assert not result.ok and result.first_bad_seq == receipt.seq
    assert result.reason == "columns do not match the stored record"


# --- read -------------------------------------------------------------------------------


def test_a_read_is_a_read_only_snapshot(ledger: EmbeddedLedger) -> None:
    ledger.capture(consent())
    with ledger.read() as conn:
        before = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
        ledger.capture(consent(OTHER))  # committed meanwhile, on the write connection
        assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == before == 1
    with ledger.read() as conn:
        assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == 2
    with pytest.raises(LedgerReadOnly), ledger.read() as conn:
        conn.execute("DELETE FROM subjects")


def test_read_errors_are_the_ledgers(ledger: EmbeddedLedger) -> None:
    with pytest.raises(BackendError, match="no such table"), ledger.read() as conn:
        conn.execute("SELECT * FROM nothing_here")
    ledger.close()
    with pytest.raises(BackendError, match="closed"), ledger.read():
        pass


def test_a_read_does_not_wait_for_a_writer(ledger: EmbeddedLedger) -> None:
    """Another thread reads the last committed state while a write transaction is open."""
    ledger.capture(consent())
    counts: list[int] = []

    def count_entries() -> None:
        with ledger.read() as conn:
            counts.append(conn.execute("SELECT count(*) FROM entries").fetchone()[0])

    def check(conn: sqlite3.Connection) -> None:
        reader = threading.Thread(target=count_entries)
        reader.start()
        reader.join(timeout=BUSY_TIMEOUT_S * 2)
        assert not reader.is_alive(), "the read waited for the writer"

    ledger.append_record(ReadAccess("lena", NUMBER, ReadKind.STATUS, at=T0), check=check)
    assert counts == [1]
    with ledger.read() as conn:
        assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == 2
