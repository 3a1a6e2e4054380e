"""The embedded ledger: capture, status, history, corrections, requests, concurrency."""

from __future__ import annotations

import dataclasses
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger_support import (
    CATALOGUE,
    NUMBER,
    OTHER,
    T0,
    Clock,
    consent,
    make_ledger,
    move,
    new_request,
    verified,
)

from consentdesk.domain.backend import Backend, BackendError, NotFound, Unavailable
from consentdesk.domain.model import (
    Channel,
    ConsentEvent,
    ConsentState,
    DomainError,
    Jurisdiction,
    RequestStatus,
    RequestType,
    Subject,
    to_jsonable,
)
from consentdesk.domain.status import current_status
from consentdesk.stores import ledger as ledger_mod
from consentdesk.stores.ledger import (
    APPLICATION_ID,
    FILE_NAME,
    GENESIS,
    EmbeddedLedger,
    canonical_json,
    link_hash,
    open_ledger,
    schema_version,
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(data_dir: Path, clock: Clock) -> Iterator[EmbeddedLedger]:
    with make_ledger(data_dir / FILE_NAME, clock) as opened:
        yield opened


# --- the file ---------------------------------------------------------------------


def test_open_ledger_creates_a_marked_versioned_wal_file(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"
    with open_ledger(data) as led:
        assert isinstance(led, Backend)
        assert led.path == data / FILE_NAME
    raw = sqlite3.connect(data / FILE_NAME)
    try:
        assert raw.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert raw.execute("PRAGMA user_version").fetchone()[0] == schema_version()
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()
    # Creation goes through a temporary file that must not be left behind.
    assert sorted(p.name for p in data.iterdir()) == [FILE_NAME]


def test_reopening_keeps_everything(data_dir: Path) -> None:
    event = consent()
    with make_ledger(data_dir / FILE_NAME) as led:
        receipt = led.capture(event)
    with make_ledger(data_dir / FILE_NAME) as led:
        assert led.history(NUMBER) == (event,)
        assert led.capture(event) == dataclasses.replace(receipt, duplicate=True)


def test_closed_ledger_refuses_calls(data_dir: Path) -> None:
    led = make_ledger(data_dir / FILE_NAME)
    led.close()
    led.close()
    with pytest.raises(BackendError, match="closed"):
        led.status(NUMBER)


# --- consent --------------------------------------------------------------------------


def test_capture_returns_a_chained_receipt(ledger: EmbeddedLedger, clock: Clock) -> None:
    first, second = consent(), consent(purpose="call-recording")
    r1 = ledger.capture(first)
    clock.advance(timedelta(seconds=5))
    r2 = ledger.capture(second)
    assert (r1.seq, r2.seq) == (1, 2)
    assert r1.hash == link_hash(GENESIS, canonical_json(first))
    assert r2.hash == link_hash(r1.hash, canonical_json(second))
    assert r1.recorded_at == T0 and r2.recorded_at == T0 + timedelta(seconds=5)
    assert not r1.duplicate
    assert ledger.count() == 2


def test_canonical_json_is_sorted_compact_utf8() -> None:
    event = consent(agent="agent-Jürgen")
    text = canonical_json(event)
    assert "Jürgen" in text and ", " not in text and '": ' not in text
    keys = list(to_jsonable(event))
    assert text.startswith('{"' + sorted(keys)[0] + '":')


def test_status_of_a_new_number_is_all_unknown(ledger: EmbeddedLedger) -> None:
    status = ledger.status(NUMBER)
    assert status.subject == Subject(NUMBER)
    assert status.requests == ()
    expected = [(p.id, ch) for p in CATALOGUE for ch in p.channels]
    assert [(c.purpose, c.channel) for c in status.cells] == expected
    assert {c.state for c in status.cells} == {ConsentState.UNKNOWN}
    assert ledger.history(NUMBER) == ()


def test_latest_event_wins_per_cell(ledger: EmbeddedLedger) -> None:
    given_phone = consent(at=T0 - timedelta(days=1))
    given_email = consent(channel=Channel.EMAIL, at=T0 - timedelta(days=1))
    withdrawn = consent(state=ConsentState.WITHDRAWN, at=T0)
    other = consent(OTHER, state=ConsentState.REFUSED)
    for event in (given_phone, given_email, withdrawn, other):
        ledger.capture(event)
    status = ledger.status(NUMBER)
    assert status.cell("marketing", Channel.PHONE).state == ConsentState.WITHDRAWN
    assert status.cell("marketing", Channel.PHONE).event == withdrawn
    assert status.cell("marketing", Channel.EMAIL).event == given_email
    assert status.cell("call-recording", Channel.PHONE).state == ConsentState.UNKNOWN
    assert ledger.history(NUMBER) == (given_phone, given_email, withdrawn)
    assert ledger.history(OTHER) == (other,)


def test_lapsed_validity_shows_expired(ledger: EmbeddedLedger, clock: Clock) -> None:
    ledger.capture(consent(valid_until=T0 + timedelta(days=365)))
    assert ledger.status(NUMBER).cell("marketing", Channel.PHONE).state == ConsentState.GIVEN
    clock.advance(timedelta(days=366))
    cell = ledger.status(NUMBER).cell("marketing", Channel.PHONE)
    assert cell.state == ConsentState.EXPIRED
    assert cell.expires == T0 + timedelta(days=365)


def test_capture_is_idempotent_by_event_id(ledger: EmbeddedLedger, clock: Clock) -> None:
    event = consent()
    first = ledger.capture(event)
    clock.advance(timedelta(minutes=1))
    again = ledger.capture(event)
    assert again.duplicate
    assert (again.event_id, again.seq, again.hash, again.recorded_at) == (
        first.event_id,
        first.seq,
        first.hash,
        first.recorded_at,
    )
    assert ledger.count() == 1


def test_same_event_id_with_other_content_is_refused(ledger: EmbeddedLedger) -> None:
    event = consent()
    ledger.capture(event)
    changed = ConsentEvent(**{**_fields(event), "state": ConsentState.REFUSED})
    with pytest.raises(DomainError, match="different content"):
        ledger.capture(changed)
    assert ledger.count() == 1


def _fields(event: ConsentEvent) -> dict[str, object]:
    return {name: getattr(event, name) for name in ConsentEvent.__dataclass_fields__}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"number": "015112345678"}, "E.164"),
        ({"number": "+0151123456"}, "E.164"),
        ({"number": "+49 151 1234567"}, "E.164"),
        ({"number": "+49１５１１２３４５６７"}, "E.164"),
        ({"purpose": "lottery"}, "unknown purpose"),
        ({"purpose": "profiling", "channel": Channel.PHONE}, "does not apply"),
    ],
)
def test_capture_rejects_bad_events(
    ledger: EmbeddedLedger, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(DomainError, match=message):
        ledger.capture(consent(**kwargs))  # type: ignore[arg-type]
    assert ledger.count() == 0


def test_status_and_history_reject_a_non_e164_number(ledger: EmbeddedLedger) -> None:
    for call in (ledger.status, ledger.history):
        with pytest.raises(DomainError, match=r"E\.164"):
            call("0151 12345678")


def test_correction_replaces_the_corrected_event(ledger: EmbeddedLedger) -> None:
    wrong = consent(channel=Channel.EMAIL)
    ledger.capture(wrong)
    fix = consent(corrects=wrong.event_id, reason="agent clicked e-mail, caller said phone")
    ledger.capture(fix)
    status = ledger.status(NUMBER)
    assert status.cell("marketing", Channel.EMAIL).state == ConsentState.UNKNOWN
    assert status.cell("marketing", Channel.PHONE).event == fix
    assert ledger.history(NUMBER) == (wrong, fix)


def test_void_correction_restores_the_earlier_event(ledger: EmbeddedLedger) -> None:
    earlier = consent(state=ConsentState.REFUSED, at=T0 - timedelta(days=2))
    mistake = consent(at=T0 - timedelta(days=1))
    ledger.capture(earlier)
    ledger.capture(mistake)
    void = consent(
        state=ConsentState.VOID,
        corrects=mistake.event_id,
        reason="captured on the wrong caller",
        at=T0,
    )
    ledger.capture(void)
    assert ledger.status(NUMBER).cell("marketing", Channel.PHONE).event == earlier


def test_correction_must_name_a_consent_event_of_the_same_subject(
    ledger: EmbeddedLedger,
) -> None:
    theirs = consent(OTHER)
    ledger.capture(theirs)
    request = new_request()
    ledger.create_request(request)
    for target in (uuid.uuid4(), theirs.event_id, request.event_id, request.request_id):
        with pytest.raises(DomainError, match="not a consent event of this subject"):
            ledger.capture(consent(corrects=target, reason="typo"))
    assert ledger.count() == 2


def _history_strategy() -> st.SearchStrategy[list[tuple[int, int, int, int | None]]]:
    """Steps (cell, state, days later, index of an earlier event to correct or None)."""
    return st.lists(
        st.tuples(
            st.integers(0, 3),
            st.integers(0, 3),
            st.integers(0, 400),
            st.one_of(st.none(), st.integers(0, 30)),
        ),
        max_size=14,
    )


_CELLS = [(p.id, ch) for p in CATALOGUE for ch in p.channels]
_STATES = [ConsentState.GIVEN, ConsentState.REFUSED, ConsentState.WITHDRAWN, ConsentState.VOID]


def test_status_equals_the_fold_of_the_full_history() -> None:
    """status() reads a projection; it must agree with current_status over history()."""
    counter = iter(range(10_000_000, 99_999_999))
    with tempfile.TemporaryDirectory() as tmp:
        clock = Clock(T0 + timedelta(days=401))  # after every event of a history
        with make_ledger(Path(tmp) / FILE_NAME, clock) as led:

            @settings(
                max_examples=60,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            )
            @given(_history_strategy())
            def check(steps: list[tuple[int, int, int, int | None]]) -> None:
                number = f"+49151{next(counter)}"
                events: list[ConsentEvent] = []
                for cell, state, days, target in steps:
                    purpose, channel = _CELLS[cell]
                    corrects = (
                        events[target % len(events)].event_id
                        if target is not None and events
                        else None
                    )
                    if corrects is None and _STATES[state] == ConsentState.VOID:
                        continue  # void only exists as a correction
                    events.append(
                        consent(
                            number,
                            purpose,
                            channel,
                            _STATES[state],
                            at=T0 + timedelta(days=days),
                            corrects=corrects,
                            reason="fix" if corrects else None,
                        )
                    )
                assert led.import_events(events, batch_size=4) == len(events)
                history = led.history(number)
                assert list(history) == events
                expected = current_status(history, CATALOGUE, clock())
                assert led.status(number).cells == expected

            check()
            assert led.verify().ok


# --- subjects -------------------------------------------------------------------------


def test_subject_profile_is_reference_data(ledger: EmbeddedLedger) -> None:
    ledger.save_subject(Subject(NUMBER, customer_ref="K-1001", display_name="Erika Muster"))
    assert ledger.status(NUMBER).subject == Subject(NUMBER, "K-1001", "Erika Muster")
    ledger.save_subject(Subject(NUMBER, customer_ref="K-1002"))
    assert ledger.status(NUMBER).subject == Subject(NUMBER, "K-1002", None)
    assert ledger.count() == 0  # profiles are not ledger entries
    with pytest.raises(DomainError, match=r"E\.164"):
        ledger.save_subject(Subject("12345"))


# --- bulk import ------------------------------------------------------------------------


def test_import_events_commits_earlier_batches_and_rolls_back_a_bad_one(
    ledger: EmbeddedLedger,
) -> None:
    good = [consent(at=T0 + timedelta(minutes=i)) for i in range(5)]
    bad = consent(purpose="lottery")
    with pytest.raises(DomainError, match="unknown purpose"):
        ledger.import_events([*good, bad], batch_size=3)
    assert ledger.history(NUMBER) == tuple(good[:3])
    assert ledger.import_events(good, batch_size=3) == 2
    assert ledger.history(NUMBER) == tuple(good)
    assert ledger.verify().ok


# --- privacy requests -----------------------------------------------------------------


def test_create_request_and_find_it(ledger: EmbeddedLedger) -> None:
    created = new_request(received=date(2025, 1, 31))
    request = ledger.create_request(created)
    assert request.status == RequestStatus.RECEIVED
    assert request.due == date(2025, 2, 28)  # GDPR: one month, clipped to month end
    assert ledger.request(created.request_id) == request
    assert ledger.find_request(created.reference) == request
    typed = created.reference.lower().replace("-", " ").removeprefix("rq ")
    assert ledger.find_request(typed) == request
    assert ledger.requests() == (request,)
    assert ledger.requests(number=NUMBER, open_only=True) == (request,)
    assert ledger.requests(number=OTHER) == ()
    assert ledger.status(NUMBER).requests == (request,)


def test_request_lifecycle_goes_through_the_rules(ledger: EmbeddedLedger) -> None:
    created = new_request()
    ledger.create_request(created)
    rid = created.request_id
    with pytest.raises(DomainError, match="identity"):
        ledger.update_request(move(rid, RequestStatus.IN_PROGRESS))
    assert ledger.count() == 1
    ledger.update_request(verified(rid))
    progressing = ledger.update_request(move(rid, RequestStatus.IN_PROGRESS))
    assert progressing.status == RequestStatus.IN_PROGRESS
    assert len(progressing.verifications) == 1
    done = ledger.update_request(move(rid, RequestStatus.COMPLETED, at=T0 + timedelta(days=3)))
    assert done.status == RequestStatus.COMPLETED and not done.is_open
    assert ledger.request(rid) == done
    with pytest.raises(DomainError, match="final"):
        ledger.update_request(move(rid, RequestStatus.WITHDRAWN))
    assert ledger.requests(open_only=True) == ()
    assert ledger.count() == 4
    assert ledger.verify().ok


def test_request_writes_are_idempotent(ledger: EmbeddedLedger) -> None:
    created = new_request()
    first = ledger.create_request(created)
    assert ledger.create_request(created) == first
    change = verified(created.request_id)
    updated = ledger.update_request(change)
    assert ledger.update_request(change) == updated
    assert ledger.create_request(created) == updated  # a repeat reports the current state
    assert ledger.count() == 2


def test_request_conflicts_are_refused(ledger: EmbeddedLedger) -> None:
    created = new_request()
    ledger.create_request(created)
    same_reference = new_request(OTHER, reference=created.reference)
    with pytest.raises(DomainError, match="already in use"):
        ledger.create_request(same_reference)
    same_id = dataclasses.replace(new_request(OTHER), request_id=created.request_id)
    with pytest.raises(DomainError, match="already recorded"):
        ledger.create_request(same_id)
    with pytest.raises(DomainError, match="reference"):
        ledger.create_request(new_request(reference="RQ-AAAA-AAAA-AAAA"))
    with pytest.raises(DomainError):
        ledger.create_request(new_request(type=RequestType.OPT_OUT_SALE))  # not a GDPR right
    with pytest.raises(DomainError, match=r"E\.164"):
        ledger.create_request(new_request("004915112345678"))
    assert ledger.count() == 1


def test_unknown_requests_are_not_found(ledger: EmbeddedLedger) -> None:
    with pytest.raises(NotFound):
        ledger.request(uuid.uuid4())
    with pytest.raises(NotFound):
        ledger.update_request(move(uuid.uuid4(), RequestStatus.WITHDRAWN))
    with pytest.raises(NotFound):
        ledger.find_request(new_request().reference)
    with pytest.raises(DomainError, match="check character"):
        ledger.find_request("RQ-AAAA-AAAA-AAAB")


def test_status_shows_open_and_recently_closed_requests(
    ledger: EmbeddedLedger, clock: Clock
) -> None:
    closed_long_ago = new_request(received=date(2025, 3, 3))
    ledger.create_request(closed_long_ago)
    ledger.update_request(move(closed_long_ago.request_id, RequestStatus.WITHDRAWN))
    clock.advance(timedelta(days=40))
    later = T0 + timedelta(days=40)
    closed_recently = new_request(received=date(2025, 4, 10), at=later)
    ledger.create_request(closed_recently)
    ledger.update_request(move(closed_recently.request_id, RequestStatus.WITHDRAWN, at=later))
    opt_out = new_request(
        type=RequestType.OPT_OUT_SALE,
        jurisdiction=Jurisdiction.CCPA,
        received=date(2025, 4, 11),
        at=later,
    )
    open_access = new_request(received=date(2025, 4, 1), at=later)
    ledger.create_request(opt_out)
    ledger.create_request(open_access)
    shown = ledger.status(NUMBER).requests
    assert [r.request_id for r in shown] == [
        open_access.request_id,  # due 1 May
        opt_out.request_id,  # due 15 business days after 11 April: 2 May
        closed_recently.request_id,  # due 10 May
    ]
    every = ledger.requests(number=NUMBER)
    assert every[0].request_id == closed_long_ago.request_id
    assert len(every) == 4


# --- integrity ------------------------------------------------------------------------


def test_verify_counts_a_sound_ledger(ledger: EmbeddedLedger) -> None:
    assert ledger.verify() == ledger_mod.VerifyResult(True, 0, None, None)
    ledger.capture(consent())
    created = new_request()
    ledger.create_request(created)
    ledger.update_request(verified(created.request_id))
    assert ledger.verify() == ledger_mod.VerifyResult(True, 3, None, None)


def test_triggers_refuse_update_and_delete(ledger: EmbeddedLedger) -> None:
    ledger.capture(consent())
    raw = sqlite3.connect(ledger.path)
    try:
        for sql in (
            "UPDATE entries SET body = body || ' '",
            "DELETE FROM entries",
            "UPDATE consent_index SET state = 'given'",
            "DELETE FROM consent_index",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                raw.execute(sql)
    finally:
        raw.close()
    assert ledger.verify().ok


def _tamper(path: Path, *statements: str) -> None:
    """Edit the file the way an attacker with a SQLite shell would: guards off first."""
    raw = sqlite3.connect(path)
    try:
        for table in ("entries", "consent_index"):
            for op in ("update", "delete"):
                raw.execute(f"DROP TRIGGER {table}_no_{op}")
        for sql in statements:
            raw.execute(sql)
        raw.commit()
    finally:
        raw.close()


def _five_entries(ledger: EmbeddedLedger) -> list[ConsentEvent]:
    events = [consent(at=T0 + timedelta(minutes=i)) for i in range(5)]
    for event in events:
        ledger.capture(event)
    return events


@pytest.mark.parametrize(
    ("statements", "seq", "reason"),
    [
        (
            ["UPDATE entries SET body = replace(body, '\"given\"', '\"refused\"') WHERE seq = 3"],
            3,
            "hash does not match",
        ),
        (["UPDATE entries SET subject = '+4915100000000' WHERE seq = 2"], 2, "columns"),
        (["DELETE FROM entries WHERE seq = 4"], 4, "missing"),
        (["UPDATE consent_index SET state = 'refused' WHERE seq = 5"], 5, "consent index"),
    ],
)
def test_tampering_is_named_by_verify(
    data_dir: Path, statements: list[str], seq: int, reason: str
) -> None:
    path = data_dir / FILE_NAME
    with make_ledger(path) as led:
        _five_entries(led)
    _tamper(path, *statements)
    with make_ledger(path) as led:
        result = led.verify()
    assert not result.ok
    assert result.first_bad_seq == seq
    assert result.count == seq - 1
    assert reason in (result.reason or "")


def test_a_rehashed_row_breaks_the_next_link(data_dir: Path) -> None:
    """A careful forger recomputes the edited row's own hash: the next link breaks."""
    path = data_dir / FILE_NAME
    with make_ledger(path) as led:
        _five_entries(led)
    raw = sqlite3.connect(path)
    try:
        body, prev = raw.execute("SELECT body, prev_hash FROM entries WHERE seq = 3").fetchone()
    finally:
        raw.close()
    forged = body.replace('"given"', '"refused"')
    _tamper(path)
    raw = sqlite3.connect(path)
    try:
        raw.execute(
            "UPDATE entries SET body = ?, hash = ? WHERE seq = 3", (forged, link_hash(prev, forged))
        )
        raw.execute("UPDATE consent_index SET state = 'refused' WHERE seq = 3")
        raw.commit()
    finally:
        raw.close()
    with make_ledger(path) as led:
        result = led.verify()
    assert (result.ok, result.first_bad_seq, result.count) == (False, 4, 3)
    assert "link" in (result.reason or "")


def test_byte_edit_of_the_file_is_named_by_verify(data_dir: Path) -> None:
    path = data_dir / FILE_NAME
    with make_ledger(path) as led:
        _five_entries(led)
        led.capture(consent(purpose="call-recording", agent="agent-TAMPER-ME"))
        led.capture(consent(channel=Channel.EMAIL))
    data = path.read_bytes()
    # The record's bytes; the review index holds the agent too, without the key.
    record = b'"agent":"agent-TAMPER-ME"'
    assert data.count(record) == 1
    path.write_bytes(data.replace(record, b'"agent":"agent-TAMPER-US"'))
    with make_ledger(path) as led:
        result = led.verify()
    assert (result.ok, result.first_bad_seq, result.count) == (False, 6, 5)


def test_a_forged_cell_fails_verify(data_dir: Path) -> None:
    path = data_dir / FILE_NAME
    with make_ledger(path) as led:
        _five_entries(led)
        assert led.status(NUMBER).cell("marketing", Channel.PHONE).event.at == T0 + timedelta(
            minutes=4
        )
    raw = sqlite3.connect(path)
    try:
        raw.execute("UPDATE consent_cells SET seq = 2")
        raw.commit()
    finally:
        raw.close()
    with make_ledger(path) as led:
        result = led.verify()
    assert (result.ok, result.count, result.first_bad_seq) == (False, 5, None)
    assert "consent cells" in (result.reason or "")


def test_removed_guards_fail_verify(data_dir: Path) -> None:
    path = data_dir / FILE_NAME
    with make_ledger(path) as led:
        led.capture(consent())
    _tamper(path)
    with make_ledger(path) as led:
        result = led.verify()
    assert not result.ok and result.first_bad_seq is None
    assert "guards" in (result.reason or "")


# --- concurrency ----------------------------------------------------------------------


def test_threads_share_one_ledger(ledger: EmbeddedLedger) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(15):
                ledger.capture(consent(f"+49151000000{n:02d}", at=T0 + timedelta(seconds=i)))
                ledger.status(f"+49151000000{n:02d}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert ledger.count() == 60
    assert ledger.verify().ok


def test_two_handles_on_one_file_keep_one_chain(data_dir: Path) -> None:
    path = data_dir / FILE_NAME
    with make_ledger(path) as a, make_ledger(path) as b:
        for i in range(10):
            (a if i % 2 else b).capture(consent(at=T0 + timedelta(seconds=i)))
        assert a.count() == b.count() == 10
        assert len(b.history(NUMBER)) == 10
        assert a.verify().ok


def test_a_held_write_lock_makes_the_ledger_unavailable(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_mod, "BUSY_TIMEOUT_S", 0.05)
    path = data_dir / FILE_NAME
    with make_ledger(path) as led:
        led.capture(consent())
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(Unavailable, match="busy"):
                led.capture(consent(purpose="call-recording"))
            # Readers are not blocked by a writer in WAL mode.
            assert len(led.history(NUMBER)) == 1
            other.execute("ROLLBACK")
        finally:
            other.close()
        led.capture(consent(purpose="call-recording"))
        assert led.count() == 2
