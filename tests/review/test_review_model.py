"""The review query model: search, filters, scope, cursors, proof check, flags, queue."""

from __future__ import annotations

import dataclasses
import time as _time
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from review_support import CATALOGUE, SCRIPTS, T0, consent, notice

from consentdesk.domain.model import (
    Channel,
    DomainError,
    Jurisdiction,
    PrivacyRequest,
    RequestStatus,
    RequestType,
    to_jsonable,
)
from consentdesk.domain.references import new_reference
from consentdesk.domain.review import (
    ActionKind,
    ActionRow,
    Cursor,
    FlagAction,
    FlagNote,
    Forbidden,
    Page,
    QueueBucket,
    ReadAccess,
    ReadKind,
    ReviewFilter,
    Role,
    ScriptVerdict,
    Search,
    SearchKind,
    SortKey,
    SystemLocal,
    Viewer,
    action_kind,
    allowed_moves,
    check_flag_note,
    check_notice,
    fold_flags,
    format_local,
    from_jsonable,
    lead_move,
    local_days,
    local_zone,
    next_cursor,
    parse_search,
    raise_flag,
    request_queue,
    resolve_flag,
)

BERLIN = ZoneInfo("Europe/Berlin")


# --- search ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0151 1234 5678", Search(SearchKind.NUMBER, "+4915112345678")),
        ("+49 151 12345678", Search(SearchKind.NUMBER, "+4915112345678")),
        ("5678", Search(SearchKind.DIGITS, "5678")),
        (" 345-678 ", Search(SearchKind.DIGITS, "345678")),
        ("sip-call-0042@pbx", Search(SearchKind.CALL, "sip-call-0042@pbx")),
    ],
)
def test_search_reads_numbers_digits_and_call_ids(text: str, expected: Search) -> None:
    assert parse_search(text, region="DE") == expected


def test_search_reads_a_reference_in_any_spelling() -> None:
    ref = new_reference()
    spoken = ref.removeprefix("RQ-").replace("-", " ").lower()
    assert parse_search(spoken, region="DE") == Search(SearchKind.REFERENCE, ref)


def test_a_reference_is_never_read_as_a_vanity_phone_number() -> None:
    # libphonenumber turns letters into keypad digits; "RQ DESM 576D RC42" once
    # parsed as +4957637242.
    for _ in range(3000):
        ref = new_reference()
        assert parse_search(ref.lower().replace("-", " "), region="DE").kind == SearchKind.REFERENCE


def test_empty_search_is_no_search_and_junk_is_refused() -> None:
    assert parse_search("   ", region="DE") is None
    with pytest.raises(DomainError, match="search for"):
        parse_search("<script>alert(1)</script>", region="DE")
    with pytest.raises(DomainError, match="too long"):
        parse_search("1" * 200, region="DE")


# --- filter and scope ------------------------------------------------------------


def test_filter_rejects_a_backwards_range_and_naive_times() -> None:
    with pytest.raises(DomainError, match="ends before"):
        ReviewFilter(since=T0, until=T0 - timedelta(hours=1))
    with pytest.raises(DomainError, match="timezone"):
        ReviewFilter(since=datetime(2025, 3, 3, 9, 0))


def test_a_lead_is_held_to_their_team_and_an_agent_to_nothing() -> None:
    lead = Viewer("lena", Role.LEAD, team="north")
    assert ReviewFilter(agent="anna").scoped(lead).team == "north"
    with pytest.raises(Forbidden, match="own team"):
        ReviewFilter(team="south").scoped(lead)
    with pytest.raises(Forbidden):
        ReviewFilter().scoped(Viewer("anna", Role.AGENT))
    with pytest.raises(Forbidden, match="no team"):
        ReviewFilter().scoped(Viewer("lost", Role.LEAD))
    admin = Viewer("root", Role.ADMIN)
    assert ReviewFilter(team="south").scoped(admin) == ReviewFilter(team="south")


def test_filter_description_never_contains_the_searched_number() -> None:
    flt = ReviewFilter(
        agent="anna", search=Search(SearchKind.NUMBER, "+4915112345678"), flagged=True
    )
    text = flt.describe()
    assert "agent=anna" in text and "flagged=yes" in text and "search=number" in text
    assert "4915112345678" not in text


def test_local_days_follow_dst() -> None:
    # Sunday 30 March 2025 has 23 hours in Berlin, Sunday 26 October 25.
    since, until = local_days(date(2025, 3, 30), date(2025, 3, 30), BERLIN)
    assert (since, until - since) == (datetime(2025, 3, 29, 23, 0, tzinfo=UTC), timedelta(hours=23))
    since, until = local_days(date(2025, 10, 26), date(2025, 10, 26), BERLIN)
    assert (since, until - since) == (
        datetime(2025, 10, 25, 22, 0, tzinfo=UTC),
        timedelta(hours=25),
    )
    assert (
        format_local(datetime(2025, 10, 26, 0, 30, tzinfo=UTC), BERLIN) == "2025-10-26 02:30 CEST"
    )
    assert format_local(datetime(2025, 10, 26, 1, 30, tzinfo=UTC), BERLIN) == "2025-10-26 02:30 CET"


# --- paging ----------------------------------------------------------------------


def test_cursor_tokens_round_trip_and_bad_ones_are_refused() -> None:
    cursor = Cursor("anna", T0, 42)
    assert Cursor.from_token(cursor.token()) == cursor
    for bad in ("", "not-base64!", Cursor(None, T0, 1).token()[:-3], "WzEsMiwzXQ"):
        with pytest.raises(DomainError, match="cursor"):
            Cursor.from_token(bad)


def test_page_limits() -> None:
    with pytest.raises(DomainError):
        Page(limit=0)
    with pytest.raises(DomainError):
        Page(limit=5000)
    with pytest.raises(DomainError, match="not both"):
        Page(after=Cursor(None, T0, 1), offset=10)


def _row(seq: int, agent: str = "anna") -> ActionRow:
    return ActionRow(seq, uuid.uuid4(), ActionKind.CONSENT, T0, agent, "•••678", purpose="p")


def test_next_cursor_only_after_a_full_page() -> None:
    rows = [_row(3, "cara"), _row(2, "ben")]
    assert next_cursor(rows, Page(limit=3)) is None
    assert next_cursor(rows, Page(limit=2, sort=SortKey.AGENT)) == Cursor("ben", T0, 2)
    assert next_cursor(rows, Page(limit=2)) == Cursor(None, T0, 2)


# --- proof of what was read ------------------------------------------------------


def test_the_text_read_is_checked_against_hash_and_registry() -> None:
    good = notice()
    assert check_notice(good, SCRIPTS).verdict == ScriptVerdict.MATCH
    assert check_notice(None, SCRIPTS).verdict == ScriptVerdict.NO_SCRIPT

    altered = dataclasses.replace(good, text=good.text.replace("voluntary", "mandatory"))
    assert check_notice(altered, SCRIPTS).verdict == ScriptVerdict.TEXT_ALTERED

    import hashlib

    reworded_text = good.text.replace("free of charge", "for a small fee")
    reworded = dataclasses.replace(
        good, text=reworded_text, sha256=hashlib.sha256(reworded_text.encode()).hexdigest()
    )
    check = check_notice(reworded, SCRIPTS)
    assert check.verdict == ScriptVerdict.TEMPLATE_MISMATCH and not check.ok

    unknown = dataclasses.replace(good, version="99")
    assert check_notice(unknown, SCRIPTS).verdict == ScriptVerdict.UNKNOWN_SCRIPT


def test_placeholders_match_any_single_line_value() -> None:
    other = notice(("partner-offers", "customer-survey"), (Channel.EMAIL, Channel.SMS))
    assert check_notice(other, SCRIPTS).ok


# --- flags -----------------------------------------------------------------------


def test_flags_are_raised_and_resolved_by_appending_notes() -> None:
    action = uuid.uuid4()
    raised = raise_flag(action, "  script not read aloud  ", by="lena")
    assert raised.comment == "script not read aloud"
    flag = fold_flags([raised])[0]
    assert not flag.resolved
    resolved = resolve_flag(flag, "listened to the recording: fine", by="lena")
    assert resolved.action == FlagAction.RESOLVE and resolved.record_id != raised.record_id
    (after,) = fold_flags([raised, resolved])
    assert after.resolved and after.resolution == "listened to the recording: fine"
    assert after.comment == raised.comment  # the raise is untouched
    with pytest.raises(DomainError, match="already resolved"):
        resolve_flag(after, "again", by="lena")
    with pytest.raises(DomainError, match="already resolved"):
        check_flag_note(dataclasses.replace(resolved, record_id=uuid.uuid4()), [raised, resolved])
    stranger = FlagNote(uuid.uuid4(), action, FlagAction.RESOLVE, "lena", "")
    with pytest.raises(DomainError, match="no such flag"):
        check_flag_note(stranger, [raised])


def test_a_flag_needs_a_comment() -> None:
    with pytest.raises(DomainError, match="what is wrong"):
        raise_flag(uuid.uuid4(), "   ", by="lena")
    with pytest.raises(DomainError, match="longer"):
        raise_flag(uuid.uuid4(), "x" * 2001, by="lena")


# --- request queue ---------------------------------------------------------------


def _req(due: date, status: RequestStatus = RequestStatus.RECEIVED, **kw: object) -> PrivacyRequest:
    received = due - timedelta(days=31)
    base = {
        "request_id": uuid.uuid4(),
        "reference": new_reference(),
        "subject": "+4915112345678",
        "type": RequestType.ACCESS,
        "jurisdiction": Jurisdiction.GDPR,
        "received": received,
        "status": status,
        "due": due,
        "acknowledge_by": None,
        "agent": "anna",
        "created_at": datetime.combine(received, datetime.min.time(), tzinfo=UTC),
        "updated_at": datetime.combine(received, datetime.min.time(), tzinfo=UTC),
    }
    base.update(kw)
    return PrivacyRequest(**base)  # type: ignore[arg-type]


def test_queue_puts_overdue_then_this_week_first_and_drops_closed() -> None:
    today = date(2025, 3, 10)
    later = _req(date(2025, 4, 1))
    week = _req(date(2025, 3, 16))
    due_today = _req(today)
    overdue = _req(date(2025, 3, 1))
    closed = _req(date(2025, 2, 1), RequestStatus.COMPLETED)
    queue = request_queue([later, closed, week, overdue, due_today], today)
    assert [q.request for q in queue] == [overdue, due_today, week, later]
    assert [q.bucket for q in queue] == [
        QueueBucket.OVERDUE,
        QueueBucket.DUE_THIS_WEEK,
        QueueBucket.DUE_THIS_WEEK,
        QueueBucket.LATER,
    ]
    assert queue[0].clock.startswith("overdue by 9 days") and "GDPR Art. 12(3)" in queue[0].clock
    assert queue[1].clock.startswith("due today")


def test_lead_moves_follow_the_lifecycle_and_need_reasons() -> None:
    verified = _req(date(2025, 4, 1), RequestStatus.IN_PROGRESS)
    at = datetime(2025, 3, 10, 12, tzinfo=UTC)
    assert RequestStatus.COMPLETED in allowed_moves(verified)
    with pytest.raises(DomainError, match="reason"):
        lead_move(verified, RequestStatus.REJECTED, by="lena", at=at)
    change = lead_move(verified, RequestStatus.EXTENDED, by="lena", reason="complex", at=at)
    assert (change.status, change.reason, change.agent) == (
        RequestStatus.EXTENDED,
        "complex",
        "lena",
    )
    with pytest.raises(DomainError, match="cannot move"):
        lead_move(verified, RequestStatus.VERIFYING, by="lena", at=at)
    done = _req(date(2025, 4, 1), RequestStatus.COMPLETED)
    assert allowed_moves(done) == ()
    with pytest.raises(DomainError, match="final"):
        lead_move(done, RequestStatus.IN_PROGRESS, by="lena", at=at)
    with pytest.raises(DomainError, match="lead cannot"):
        lead_move(verified, RequestStatus.WITHDRAWN, by="lena", at=at)


def test_an_extension_after_the_first_month_is_refused() -> None:
    late = _req(date(2025, 3, 1), RequestStatus.IN_PROGRESS)
    with pytest.raises(DomainError, match="too late"):
        lead_move(
            late,
            RequestStatus.EXTENDED,
            by="lena",
            reason="complex",
            at=datetime(2025, 3, 10, tzinfo=UTC),
        )


# --- JSON round trips ------------------------------------------------------------


def test_action_kind_of_consent_events() -> None:
    from consentdesk.domain.model import ConsentState

    assert action_kind(consent()) == ActionKind.CONSENT
    assert action_kind(consent(state=ConsentState.WITHDRAWN)) == ActionKind.WITHDRAWAL
    fix = consent(state=ConsentState.REFUSED, corrects=uuid.uuid4(), reason="wrong button")
    assert action_kind(fix) == ActionKind.CORRECTION


_texts = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != "")
_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(
    agent=st.none() | _texts,
    kinds=st.lists(st.sampled_from(list(ActionKind)), unique=True),
    flagged=st.none() | st.booleans(),
    since=st.none() | _times,
)
def test_filters_survive_json(
    agent: str | None, kinds: list[ActionKind], flagged: bool | None, since: datetime | None
) -> None:
    flt = ReviewFilter(
        agent=agent,
        kinds=tuple(kinds),
        flagged=flagged,
        since=since,
        search=Search(SearchKind.DIGITS, "5678"),
    )
    assert from_jsonable(ReviewFilter, to_jsonable(flt)) == flt


@given(comment=_texts, reader=_texts)
def test_records_survive_json(comment: str, reader: str) -> None:
    note = raise_flag(uuid.uuid4(), comment, by="lena")
    assert from_jsonable(FlagNote, to_jsonable(note)) == note
    read = ReadAccess(reader, "+4915112345678", ReadKind.NUMBER, call_id="c-1")
    assert from_jsonable(ReadAccess, to_jsonable(read)) == read


def test_malformed_json_is_a_domain_error() -> None:
    good = to_jsonable(raise_flag(uuid.uuid4(), "x", by="lena"))
    for bad in (
        {**good, "event_id": "not-a-uuid"},
        {**good, "at": "yesterday"},
        {**good, "action": "explode"},
        {k: v for k, v in good.items() if k != "by"},
        [],
    ):
        with pytest.raises(DomainError):
            from_jsonable(FlagNote, bad)


def test_read_needs_a_subject_unless_it_is_an_export() -> None:
    with pytest.raises(DomainError, match="names the customer"):
        ReadAccess("lena", None, ReadKind.DETAIL)
    assert ReadAccess("lena", None, ReadKind.EXPORT, detail="all").subject is None
    assert CATALOGUE.get("marketing-offers")  # the shipped catalogue is the one the tests read


@pytest.mark.skipif(not hasattr(_time, "tzset"), reason="needs time.tzset to switch the C zone")
def test_system_local_time_follows_dst_like_zoneinfo(monkeypatch: pytest.MonkeyPatch) -> None:
    # What Windows desks use without general.timezone: the C library's local rules.
    monkeypatch.setenv("TZ", "Europe/Berlin")
    _time.tzset()
    try:
        system = SystemLocal()
        at = datetime(2025, 3, 29, 0, 0, tzinfo=UTC)
        for _ in range(4 * 24 * 3):
            for instant in (at, at + timedelta(days=210)):  # March and October changes
                assert format_local(instant, system) == format_local(instant, BERLIN), instant
                assert instant.astimezone(system).astimezone(UTC) == instant
            at += timedelta(minutes=15)
        for day in (date(2025, 3, 30), date(2025, 10, 26)):
            assert local_days(day, day, system) == local_days(day, day, BERLIN)
    finally:
        monkeypatch.undo()
        _time.tzset()


def test_local_zone_prefers_the_configured_name() -> None:
    assert local_zone("America/New_York") == ZoneInfo("America/New_York")
    assert local_zone("No/Such_Zone") is not None
