"""Incident mode: the Art. 33 clock in UTC across DST, records, call tags per hour."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from consentdesk.domain.incident import (
    AuthorityNotified,
    CallTag,
    ClockStage,
    Incident,
    IncidentClosed,
    IncidentOpened,
    check_incident_note,
    describe_clock,
    fold_incidents,
    note_from_json,
    notification_clock,
    parse_local_time,
    require_incident_manager,
    tagged_per_hour,
)
from consentdesk.domain.model import DomainError, to_jsonable
from consentdesk.domain.review import Forbidden, Role, Viewer, format_local

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def opened(aware: datetime, *, at: datetime | None = None) -> IncidentOpened:
    return IncidentOpened(
        incident_id=uuid.uuid4(),
        title="Mailing list sent to wrong recipients",
        what_happened="A campaign mail exposed 2,000 addresses in the To: field.",
        aware_at=aware,
        purposes=("marketing-offers",),
        regions=("de", "AT"),
        script="We are aware of an email sent in error. Your data was ...",
        by="lena",
        at=at or aware + timedelta(hours=1),
    )


def test_stages_at_48_66_and_72_hours() -> None:
    aware = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)
    inc = Incident(opened(aware))
    expected = [
        (timedelta(hours=47, minutes=59), ClockStage.RUNNING, aware + timedelta(hours=48)),
        (timedelta(hours=48), ClockStage.WARNING, aware + timedelta(hours=66)),
        (timedelta(hours=65, minutes=59), ClockStage.WARNING, aware + timedelta(hours=66)),
        (timedelta(hours=66), ClockStage.URGENT, aware + timedelta(hours=72)),
        (timedelta(hours=72), ClockStage.OVERDUE, None),
    ]
    for elapsed, stage, next_change in expected:
        clock = notification_clock(inc, aware + elapsed)
        assert (clock.stage, clock.next_change) == (stage, next_change), elapsed
    assert notification_clock(inc, aware + timedelta(hours=70)).remaining == timedelta(hours=2)


def test_clock_stops_when_the_authority_is_notified() -> None:
    aware = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)
    o = opened(aware)
    on_time = AuthorityNotified(o.incident_id, aware + timedelta(hours=50), "BfDI", by="lena")
    clock = notification_clock(Incident(o, on_time), aware + timedelta(days=10))
    assert (clock.stage, clock.elapsed) == (ClockStage.NOTIFIED, timedelta(hours=50))
    assert clock.stopped and clock.next_change is None
    late = AuthorityNotified(
        o.incident_id,
        aware + timedelta(hours=80),
        "BfDI",
        by="lena",
        delay_reason="forensics took four days",
        at=aware + timedelta(hours=81),
    )
    clock = notification_clock(Incident(o, late), aware + timedelta(days=10))
    assert clock.stage == ClockStage.NOTIFIED_LATE
    assert "8 h 00 min after the 72-hour deadline" in describe_clock(clock, BERLIN)


def test_72_hours_across_spring_forward_in_berlin() -> None:
    # Aware Saturday 29 March 2025 10:00 CET; clocks go forward on Sunday 02:00 → 03:00.
    aware = parse_local_time("2025-03-29 10:00", BERLIN)
    assert aware == datetime(2025, 3, 29, 9, 0, tzinfo=UTC)
    inc = Incident(opened(aware))
    # 72 real hours later the wall clock shows 11:00 CEST, not 10:00.
    assert format_local(inc.deadline, BERLIN) == "2025-04-01 11:00 CEST"
    assert inc.deadline - aware == timedelta(hours=72)
    warn = notification_clock(inc, aware).next_change
    assert warn is not None and format_local(warn, BERLIN) == "2025-03-31 11:00 CEST"
    text = describe_clock(notification_clock(inc, aware + timedelta(hours=1)), BERLIN)
    assert text == "71 h 00 min left to notify the authority (by 2025-04-01 11:00 CEST)"


def test_72_hours_across_fall_back_in_berlin() -> None:
    # Aware Saturday 25 October 2025 10:00 CEST; clocks go back on Sunday 03:00 → 02:00.
    aware = parse_local_time("2025-10-25 10:00", BERLIN)
    inc = Incident(opened(aware))
    assert format_local(inc.deadline, BERLIN) == "2025-10-28 09:00 CET"
    # Wall-clock arithmetic would have said 10:00 and given the lead an extra hour.
    naive_wall = datetime(2025, 10, 28, 10, 0, tzinfo=BERLIN)
    assert naive_wall > inc.deadline
    urgent = aware + timedelta(hours=66)
    assert format_local(urgent, BERLIN) == "2025-10-28 03:00 CET"
    assert notification_clock(inc, urgent).stage == ClockStage.URGENT


def test_us_dst_change_on_another_weekend() -> None:
    aware = parse_local_time("2025-03-08 12:00", NEW_YORK)  # EST; DST starts 9 March
    inc = Incident(opened(aware))
    assert format_local(inc.deadline, NEW_YORK) == "2025-03-11 13:00 EDT"


def test_local_times_skipped_or_repeated_by_dst_are_refused() -> None:
    with pytest.raises(DomainError, match="does not exist"):
        parse_local_time("2025-03-30 02:30", BERLIN)
    with pytest.raises(DomainError, match="happens twice") as info:
        parse_local_time("2025-10-26 02:30", BERLIN)
    assert "+02:00" in str(info.value) and "+01:00" in str(info.value)
    # With the offset the lead means it is exact.
    assert parse_local_time("2025-10-26 02:30+01:00", BERLIN) == datetime(
        2025, 10, 26, 1, 30, tzinfo=UTC
    )
    assert parse_local_time("2025-10-26T00:30Z", BERLIN) == datetime(
        2025, 10, 26, 0, 30, tzinfo=UTC
    )
    for junk in ("", "yesterday", "2025-13-01 10:00"):
        with pytest.raises(DomainError):
            parse_local_time(junk, BERLIN)


def test_tagged_calls_per_hour_over_the_25_hour_day() -> None:
    since = datetime(2025, 10, 25, 22, 0, tzinfo=UTC)  # Berlin midnight, 26 October
    until = since + timedelta(hours=25)
    incident_id = uuid.uuid4()
    tags = [
        CallTag(incident_id, f"call-{i}", "anna", at=since + timedelta(hours=h, minutes=m))
        for i, (h, m) in enumerate([(0, 5), (2, 10), (2, 50), (3, 1), (24, 59), (25, 0)])
    ]
    hours = tagged_per_hour(tags, since, until)
    assert len(hours) == 25
    assert [h.count for h in hours][:4] == [1, 0, 2, 1]
    assert sum(h.count for h in hours) == 5  # the tag at 25:00 is outside
    # Local labels of the two hours that both read 02:xx stay distinct.
    labels = [format_local(h.start, BERLIN) for h in hours[2:4]]
    assert labels == ["2025-10-26 02:00 CEST", "2025-10-26 02:00 CET"]


def test_incidents_fold_from_appended_records() -> None:
    aware = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)
    o = opened(aware)
    n = AuthorityNotified(o.incident_id, aware + timedelta(hours=20), "BfDI", by="lena")
    c = IncidentClosed(
        o.incident_id, "all customers informed", by="lena", at=aware + timedelta(days=3)
    )
    (inc,) = fold_incidents([o, n, c])
    assert (inc.opened, inc.notified, inc.closed) == (o, n, c)
    assert not inc.is_open
    with pytest.raises(DomainError, match="already closed"):
        check_incident_note(
            IncidentClosed(o.incident_id, "again", by="lena", at=aware + timedelta(days=4)),
            [inc],
        )
    (only_open,) = fold_incidents([o])
    with pytest.raises(DomainError, match="already recorded"):
        check_incident_note(
            AuthorityNotified(o.incident_id, aware + timedelta(hours=30), "BfDI", by="lena"),
            [Incident(o, n)],
        )
    with pytest.raises(DomainError, match="reasons for the delay"):
        check_incident_note(
            AuthorityNotified(
                o.incident_id,
                aware + timedelta(hours=73),
                "BfDI",
                by="lena",
                at=aware + timedelta(hours=74),
            ),
            [only_open],
        )
    with pytest.raises(DomainError, match="before the breach"):
        check_incident_note(
            AuthorityNotified(o.incident_id, aware - timedelta(hours=1), "BfDI", by="lena"),
            [only_open],
        )
    with pytest.raises(DomainError, match="no such incident"):
        check_incident_note(IncidentClosed(uuid.uuid4(), "x", by="lena"), [only_open])


def test_incident_records_survive_json() -> None:
    aware = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)
    o = opened(aware)
    assert o.regions == ("DE", "AT")
    for note in (
        o,
        AuthorityNotified(o.incident_id, aware, "BfDI", by="lena", authority_ref="K-1"),
        IncidentClosed(o.incident_id, "done", by="lena"),
    ):
        body = to_jsonable(note)
        assert body["action"] in ("open", "notify", "close")
        assert note_from_json(body) == note
    with pytest.raises(DomainError, match="action"):
        note_from_json({**to_jsonable(o), "action": "delete"})


def test_opening_needs_its_facts() -> None:
    aware = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)
    with pytest.raises(DomainError, match="title"):
        IncidentOpened(uuid.uuid4(), " ", "x", aware, ("p",), (), "s", by="lena")
    with pytest.raises(DomainError, match="future"):
        IncidentOpened(
            uuid.uuid4(), "t", "x", aware + timedelta(days=1), ("p",), (), "s", by="lena", at=aware
        )
    with pytest.raises(DomainError, match="regions are codes"):
        IncidentOpened(uuid.uuid4(), "t", "x", aware, (), ("Germany",), "s", by="lena", at=aware)
    with pytest.raises(DomainError, match="purposes or regions"):
        IncidentOpened(uuid.uuid4(), "t", "x", aware, (), (), "s", by="lena", at=aware)


def test_only_leads_and_admins_run_incidents() -> None:
    with pytest.raises(Forbidden):
        require_incident_manager(Viewer("anna", Role.AGENT))
    require_incident_manager(Viewer("lena", Role.LEAD, team="north"))
    require_incident_manager(Viewer("root", Role.ADMIN))


def test_a_call_tag_has_one_id_per_incident_and_call() -> None:
    incident_id = uuid.uuid4()
    first = CallTag(incident_id, "call-9", "anna")
    again = CallTag(incident_id, "call-9", "ben", at=first.at + timedelta(minutes=1))
    assert first.record_id == again.record_id
    assert CallTag(uuid.uuid4(), "call-9", "anna").record_id != first.record_id
