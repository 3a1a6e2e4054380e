"""The review store on a real embedded ledger: paging, filters, scope, flags, reads,
queue, figures, incidents and the integrity check."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from review_support import (
    ANNA_CUSTOMER,
    BEN_CUSTOMER,
    CARA_CUSTOMER,
    T0,
    TEAMS,
    Clock,
    Scenario,
    day,
    open_ledger,
    populate,
)

from consentdesk.domain.backend import NotFound
from consentdesk.domain.incident import AuthorityNotified, CallTag, IncidentClosed, IncidentOpened
from consentdesk.domain.model import (
    Channel,
    DomainError,
    Jurisdiction,
    RequestStatus,
)
from consentdesk.domain.review import (
    ActionKind,
    Forbidden,
    Page,
    QueueBucket,
    ReadKind,
    ReadLogFilter,
    ReviewFilter,
    Role,
    Search,
    SearchKind,
    SortKey,
    Viewer,
    lead_move,
    local_days,
    raise_flag,
    resolve_flag,
)
from consentdesk.stores import review_sql
from consentdesk.stores.ledger import EmbeddedLedger
from consentdesk.stores.review_sql import SqlReviewSource

BERLIN = ZoneInfo("Europe/Berlin")
ADMIN = Viewer("root", Role.ADMIN)
LEAD_NORTH = Viewer("lena", Role.LEAD, team="north")


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + timedelta(days=2))


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Iterator[EmbeddedLedger]:
    with open_ledger(tmp_path / "ledger.sqlite3", clock) as led:
        yield led


@pytest.fixture
def scenario(ledger: EmbeddedLedger) -> Scenario:
    return populate(ledger)


def source(ledger: EmbeddedLedger, clock: Clock, viewer: Viewer = ADMIN) -> SqlReviewSource:
    return SqlReviewSource(ledger, viewer, teams=TEAMS, clock=clock)


@pytest.fixture
def admin(ledger: EmbeddedLedger, clock: Clock, scenario: Scenario) -> Iterator[SqlReviewSource]:
    src = source(ledger, clock)
    yield src
    src.close()


def all_rows(src: SqlReviewSource, flt: ReviewFilter, page: Page) -> list:
    rows = []
    while True:
        result = src.actions(flt, page)
        rows.extend(result.rows)
        if result.next is None:
            return rows
        page = Page(limit=page.limit, sort=page.sort, descending=page.descending, after=result.next)


# --- paging ----------------------------------------------------------------------


@pytest.mark.parametrize("sort", list(SortKey))
@pytest.mark.parametrize("descending", [True, False])
def test_keyset_paging_visits_every_action_once_in_order(
    admin: SqlReviewSource, scenario: Scenario, sort: SortKey, descending: bool
) -> None:
    rows = all_rows(admin, ReviewFilter(), Page(limit=2, sort=sort, descending=descending))
    assert len(rows) == scenario.action_count
    assert len({r.event_id for r in rows}) == scenario.action_count
    whole = admin.actions(ReviewFilter(), Page(limit=100, sort=sort, descending=descending)).rows
    assert [r.event_id for r in rows] == [r.event_id for r in whole]
    if sort == SortKey.TIME:
        stamps = [(r.at, r.seq) for r in rows]
        assert stamps == sorted(stamps, reverse=descending)
    offset = [
        r.event_id
        for start in range(0, scenario.action_count, 4)
        for r in admin.actions(
            ReviewFilter(), Page(limit=4, sort=sort, descending=descending, offset=start)
        ).rows
    ]
    assert offset == [r.event_id for r in rows]


def test_time_order_is_capture_time_not_arrival(admin: SqlReviewSource, scenario: Scenario) -> None:
    newest_first = admin.actions(ReviewFilter(), Page()).rows
    old_request = scenario.requests[0]  # captured 40 days back, recorded later
    assert newest_first[-1].event_id == old_request.event_id


def test_numbers_are_masked_in_rows(admin: SqlReviewSource) -> None:
    for row in admin.actions(ReviewFilter(), Page()).rows:
        assert row.subject.startswith("•") and row.subject[-3:].isdigit()
        assert "+49" not in row.subject


# --- filters and search ----------------------------------------------------------


def _ids(src: SqlReviewSource, flt: ReviewFilter) -> set[uuid.UUID]:
    return {r.event_id for r in all_rows(src, flt, Page(limit=3))}


def test_each_filter_narrows_the_view(admin: SqlReviewSource, scenario: Scenario) -> None:
    c = scenario.consents
    by_agent = {e.event_id for e in c if e.agent == "ben"}
    assert _ids(admin, ReviewFilter(agent="ben")) == by_agent | {scenario.requests[0].event_id}
    north = {e.event_id for e in c if e.agent in ("anna", "ben")}
    north |= {r.event_id for r in scenario.requests} | {scenario.changes[0].event_id}
    assert _ids(admin, ReviewFilter(team="north")) == north
    assert _ids(admin, ReviewFilter(kinds=(ActionKind.REFUSAL,))) == {c[2].event_id}
    assert _ids(admin, ReviewFilter(kinds=(ActionKind.CORRECTION,))) == {c[4].event_id}
    assert _ids(admin, ReviewFilter(kinds=(ActionKind.WITHDRAWAL, ActionKind.REQUEST))) == {
        c[5].event_id,
        *(r.event_id for r in scenario.requests),
    }
    assert _ids(admin, ReviewFilter(purpose="customer-survey")) == {c[1].event_id}
    assert _ids(admin, ReviewFilter(channel=Channel.EMAIL)) == {c[3].event_id, c[4].event_id}
    assert _ids(admin, ReviewFilter(jurisdiction=Jurisdiction.CCPA)) == set()
    assert len(_ids(admin, ReviewFilter(jurisdiction=Jurisdiction.GDPR))) == scenario.action_count
    since, until = local_days(day(1), day(1), BERLIN)
    assert _ids(admin, ReviewFilter(since=since, until=until)) == {
        c[5].event_id,
        scenario.changes[0].event_id,
    }
    combined = ReviewFilter(agent="anna", since=T0, until=T0 + timedelta(hours=1))
    assert _ids(admin, combined) == {c[0].event_id, c[1].event_id, scenario.requests[1].event_id}


def test_search_by_number_digits_reference_and_call(
    admin: SqlReviewSource, scenario: Scenario
) -> None:
    cara = {e.event_id for e in scenario.consents if e.subject == CARA_CUSTOMER}
    assert _ids(admin, ReviewFilter(search=Search(SearchKind.NUMBER, CARA_CUSTOMER))) == cara
    assert _ids(admin, ReviewFilter(search=Search(SearchKind.DIGITS, "6789"))) == cara
    erasure = scenario.requests[1]
    by_ref = _ids(admin, ReviewFilter(search=Search(SearchKind.REFERENCE, erasure.reference)))
    assert by_ref == {erasure.event_id, scenario.changes[0].event_id}
    call = _ids(admin, ReviewFilter(search=Search(SearchKind.CALL, "call-1")))
    assert call == {scenario.consents[0].event_id, scenario.consents[1].event_id, erasure.event_id}
    missing = ReviewFilter(search=Search(SearchKind.REFERENCE, "RQ-2222-2222-222X"))
    assert _ids(admin, missing) == set()


def test_request_change_rows_carry_their_request(
    admin: SqlReviewSource, scenario: Scenario
) -> None:
    (row,) = admin.actions(ReviewFilter(kinds=(ActionKind.REQUEST_CHANGE,)), Page()).rows
    erasure = scenario.requests[1]
    assert (row.reference, row.request_type, row.status) == (
        erasure.reference,
        erasure.type,
        RequestStatus.IN_PROGRESS,
    )
    assert row.jurisdiction == Jurisdiction.GDPR and row.what == "erasure → in-progress"


# --- scope -----------------------------------------------------------------------


def test_a_lead_sees_only_their_team(
    ledger: EmbeddedLedger, clock: Clock, scenario: Scenario
) -> None:
    lead = source(ledger, clock, LEAD_NORTH)
    rows = all_rows(lead, ReviewFilter(), Page(limit=50))
    assert {r.agent for r in rows} == {"anna", "ben"}
    assert all(r.team == "north" for r in rows)
    cara_event = scenario.consents[3].event_id
    with pytest.raises(Forbidden):
        lead.action(cara_event)
    with pytest.raises(Forbidden):
        lead.reveal_number(cara_event)
    with pytest.raises(Forbidden):
        lead.actions(ReviewFilter(team="south"), Page())
    assert lead.agents() == ["anna", "ben"] and lead.teams() == ["north"]
    assert {q.request.agent for q in lead.request_queue(day(2))} <= {"anna", "ben"}
    lead.close()


def test_agents_cannot_open_the_review(ledger: EmbeddedLedger, clock: Clock) -> None:
    with pytest.raises(Forbidden):
        SqlReviewSource(ledger, Viewer("anna", Role.AGENT), teams=TEAMS, clock=clock)


def test_unknown_action_is_not_found(admin: SqlReviewSource) -> None:
    with pytest.raises(NotFound):
        admin.action(uuid.uuid4())


def test_agent_list_walks_the_index(admin: SqlReviewSource) -> None:
    assert admin.agents() == ["anna", "ben", "cara"]
    assert admin.teams() == ["north", "south"]


# --- proof and reads -------------------------------------------------------------


def test_detail_shows_the_proof_and_logs_the_read(
    admin: SqlReviewSource, scenario: Scenario
) -> None:
    second = scenario.consents[1]
    detail = admin.action(second.event_id)
    assert detail.record == second
    assert detail.notice == second.notice
    assert detail.script_check.ok, detail.script_check.message
    assert detail.row.subject == ANNA_CUSTOMER  # the detail is the expanded view
    assert [a.event_id for a in detail.call_actions] == [
        scenario.consents[0].event_id,
        second.event_id,
        scenario.requests[1].event_id,
    ]
    assert detail.call_offset() == timedelta(minutes=2)
    assert {h.event_id for h in detail.history} >= {scenario.consents[5].event_id}
    assert len(detail.ledger_hash) == 64
    (entry,) = admin.read_log(ReadLogFilter())
    assert (entry.read.reader, entry.read.subject, entry.read.what, entry.read.about) == (
        "root",
        ANNA_CUSTOMER,
        ReadKind.DETAIL,
        second.event_id,
    )


def test_request_detail_includes_the_folded_request(
    admin: SqlReviewSource, scenario: Scenario
) -> None:
    detail = admin.action(scenario.changes[0].event_id)
    assert detail.request is not None and detail.request.status == RequestStatus.IN_PROGRESS
    assert detail.notice is None and detail.script_check.ok


def test_revealing_a_number_is_a_logged_read(
    admin: SqlReviewSource, ledger: EmbeddedLedger, scenario: Scenario
) -> None:
    before = ledger.count()
    event = scenario.consents[2]
    assert admin.reveal_number(event.event_id, call_id="lead-call-7") == BEN_CUSTOMER
    assert ledger.count() == before + 1
    (entry,) = admin.read_log(ReadLogFilter(subject=BEN_CUSTOMER))
    assert entry.read.what == ReadKind.NUMBER and entry.read.call_id == "lead-call-7"
    assert admin.read_log(ReadLogFilter(subject=CARA_CUSTOMER)) == []
    assert admin.read_log(ReadLogFilter(reader="somebody-else")) == []


def test_lead_read_log_shows_own_team_reads(
    ledger: EmbeddedLedger, clock: Clock, scenario: Scenario
) -> None:
    review_sql.log_read(
        ledger,
        review_sql.ReadAccess("anna", ANNA_CUSTOMER, ReadKind.STATUS, call_id="call-1"),
    )
    review_sql.log_read(
        ledger, review_sql.ReadAccess("cara", CARA_CUSTOMER, ReadKind.STATUS, call_id="call-3")
    )
    lead = source(ledger, clock, LEAD_NORTH)
    assert [e.read.reader for e in lead.read_log(ReadLogFilter())] == ["anna"]
    assert [e.read.reader for e in source(ledger, clock).read_log(ReadLogFilter())] == [
        "cara",
        "anna",
    ]
    with pytest.raises(DomainError):
        review_sql.log_read(ledger, review_sql.ReadAccess("anna", "0151", ReadKind.STATUS))


def test_exports_are_logged_and_return_full_numbers(
    admin: SqlReviewSource, scenario: Scenario
) -> None:
    rows = list(admin.export_actions(ReviewFilter(agent="cara")))
    assert {r.subject for r in rows} == {CARA_CUSTOMER}
    events = list(admin.export_events(ReviewFilter()))
    assert [e.event_id for e in events] == [e.event_id for e in scenario.consents]
    log = admin.read_log(ReadLogFilter())
    assert [e.read.what for e in log] == [ReadKind.EXPORT, ReadKind.EXPORT]
    assert log[1].read.detail == "actions: agent=cara"


# --- flags -----------------------------------------------------------------------


def _entry(ledger: EmbeddedLedger, event_id: uuid.UUID) -> tuple:
    conn = sqlite3.connect(ledger.path)
    try:
        return conn.execute(
            "SELECT seq, body, hash FROM entries WHERE event_id = ?", (str(event_id),)
        ).fetchone()
    finally:
        conn.close()


def test_flags_are_appended_records_never_edits(
    admin: SqlReviewSource, ledger: EmbeddedLedger, scenario: Scenario
) -> None:
    target = scenario.consents[0].event_id
    original = _entry(ledger, target)
    before = ledger.count()
    flag = admin.record_flag(raise_flag(target, "verbatim part skipped", by="root"))
    assert ledger.count() == before + 1
    assert [r.event_id for r in admin.actions(ReviewFilter(flagged=True), Page()).rows] == [target]
    assert target not in _ids(admin, ReviewFilter(flagged=False))
    resolution = resolve_flag(flag, "coached the agent", by="root")
    resolved = admin.record_flag(resolution)
    assert resolved.resolved and resolved.comment == "verbatim part skipped"
    assert ledger.count() == before + 2
    assert _entry(ledger, target) == original  # the action itself is untouched
    assert admin.actions(ReviewFilter(flagged=True), Page()).rows == ()
    # Recording the same note again (a retry) adds nothing; a second resolution is refused.
    admin.record_flag(resolution)
    assert ledger.count() == before + 2
    with pytest.raises(DomainError, match="already resolved"):
        admin.record_flag(resolve_flag(flag, "again", by="root"))
    assert ledger.count() == before + 2
    assert admin.flags() == [] and len(admin.flags(open_only=False)) == 1
    assert ledger.verify().ok


def test_flags_are_recorded_in_the_viewers_name_and_scope(
    ledger: EmbeddedLedger, clock: Clock, scenario: Scenario
) -> None:
    lead = source(ledger, clock, LEAD_NORTH)
    with pytest.raises(Forbidden):
        lead.record_flag(raise_flag(scenario.consents[0].event_id, "x", by="someone"))
    with pytest.raises(Forbidden):
        lead.record_flag(raise_flag(scenario.consents[3].event_id, "x", by="lena"))


# --- requests --------------------------------------------------------------------


def test_queue_and_status_moves(admin: SqlReviewSource, scenario: Scenario) -> None:
    queue = admin.request_queue(day(2))
    assert [q.bucket for q in queue] == [QueueBucket.OVERDUE, QueueBucket.LATER]
    overdue = queue[0].request
    assert overdue.reference == scenario.requests[0].reference
    moved = admin.move_request(
        lead_move(
            overdue, RequestStatus.REJECTED, by="root", reason="identity not confirmed", at=T0
        )
    )
    assert moved.status == RequestStatus.REJECTED and moved.status_reason
    assert len(admin.request_queue(day(2))) == 1
    with pytest.raises(Forbidden):
        admin.move_request(lead_move(queue[1].request, RequestStatus.COMPLETED, by="anna", at=T0))


# --- figures ---------------------------------------------------------------------


def test_figures(admin: SqlReviewSource, scenario: Scenario) -> None:
    figures = admin.figures(day(-1), day(1), tz=BERLIN)
    counts = {(a.day, a.agent): a.count for a in figures.agent_days}
    assert counts == {
        (day(0), "anna"): 3,
        (day(0), "ben"): 1,
        (day(0), "cara"): 2,
        (day(1), "ben"): 1,
        (day(1), "anna"): 1,
    }
    rates = {r.purpose: r for r in figures.purpose_rates}
    offers = rates["marketing-offers"]
    # The corrected e-mail consent drops out; its correction counts as the refusal it is.
    assert (offers.given, offers.refused, offers.withdrawn) == (1, 2, 1)
    assert offers.refusal_rate == pytest.approx(0.5)
    flow = {f.day: (f.opened, f.closed) for f in figures.request_flow}
    assert flow == {day(-1): (0, 0), day(0): (1, 0), day(1): (0, 0)}
    assert (figures.overdue, figures.open_requests) == (1, 2)
    with pytest.raises(DomainError):
        admin.figures(day(0), day(400), tz=BERLIN)


# --- incidents -------------------------------------------------------------------


def _incident(by: str = "root") -> IncidentOpened:
    return IncidentOpened(
        incident_id=uuid.uuid4(),
        title="Wrong recipients",
        what_happened="A mailing exposed addresses.",
        aware_at=T0,
        purposes=("marketing-offers",),
        regions=("DE",),
        script="We know about the email sent in error.",
        by=by,
        at=T0 + timedelta(hours=1),
    )


def test_incident_from_open_to_close(
    admin: SqlReviewSource, ledger: EmbeddedLedger, clock: Clock
) -> None:
    opened = _incident()
    inc = admin.record_incident(opened)
    assert inc.is_open and review_sql.incidents(ledger, open_only=True) == (inc,)
    tag = CallTag(opened.incident_id, "call-77", "anna", at=T0 + timedelta(hours=2))
    before = ledger.count()
    assert review_sql.tag_call(ledger, tag) == tag
    again = CallTag(opened.incident_id, "call-77", "anna", at=T0 + timedelta(hours=3))
    assert review_sql.tag_call(ledger, again) == tag  # tagging twice records once
    assert ledger.count() == before + 1
    assert admin.call_tags(opened.incident_id) == (tag,)
    notified = AuthorityNotified(
        opened.incident_id, T0 + timedelta(hours=30), "BfDI", by="root", at=T0 + timedelta(hours=31)
    )
    assert admin.record_incident(notified).notified == notified
    closed = admin.record_incident(
        IncidentClosed(
            opened.incident_id, "customers informed", by="root", at=T0 + timedelta(days=3)
        )
    )
    assert not closed.is_open
    assert review_sql.incidents(ledger, open_only=True) == ()
    assert review_sql.incidents(ledger) == (closed,)  # the record stays
    with pytest.raises(DomainError, match="closed"):
        review_sql.tag_call(ledger, CallTag(opened.incident_id, "call-78", "anna"))
    with pytest.raises(DomainError, match="no such incident"):
        review_sql.tag_call(ledger, CallTag(uuid.uuid4(), "call-78", "anna"))
    assert ledger.verify().ok


def test_incidents_need_a_lead_in_their_own_name(
    admin: SqlReviewSource, ledger: EmbeddedLedger
) -> None:
    with pytest.raises(Forbidden):
        admin.record_incident(_incident(by="lena"))
    with pytest.raises(Forbidden):
        review_sql.record_incident(ledger, _incident(by="anna"), Viewer("anna", Role.AGENT))


# --- integrity -------------------------------------------------------------------


def test_integrity_check_finds_an_altered_record(
    admin: SqlReviewSource, ledger: EmbeddedLedger, scenario: Scenario
) -> None:
    admin.record_flag(raise_flag(scenario.consents[0].event_id, "check", by="root"))
    good = admin.verify()
    assert good.ok and good.checked == scenario.action_count + 1
    conn = sqlite3.connect(ledger.path)
    conn.execute("DROP TRIGGER entries_no_update")
    body = json.loads(conn.execute("SELECT body FROM entries WHERE seq = 3").fetchone()[0])
    body["state"] = "given"
    conn.execute("UPDATE entries SET body = ? WHERE seq = 3", (json.dumps(body),))
    conn.commit()
    conn.close()
    bad = admin.verify()
    assert not bad.ok and bad.first_bad_seq == 3 and "record 3" in bad.message


def test_a_closed_source_refuses_work(admin: SqlReviewSource) -> None:
    admin.close()
    with pytest.raises(DomainError, match="closed"):
        admin.actions(ReviewFilter(), Page())
    assert datetime.now(UTC) > T0
