"""The controller's calendar: which day it is (general.timezone), public holidays,
GDPR periods ending on a working day, and the CCPA confirmation-of-receipt clock."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from consentdesk.domain import rules
from consentdesk.domain.calendars import DEFAULT_CALENDAR, Calendar
from consentdesk.domain.capture import privacy_request
from consentdesk.domain.codec import canonical_json
from consentdesk.domain.model import (
    DomainError,
    Jurisdiction,
    NewRequest,
    RequestChange,
    RequestStatus,
    RequestType,
    privacy_request_from_json,
    request_change_from_json,
    to_jsonable,
)
from consentdesk.domain.references import new_reference
from consentdesk.domain.requests import check_change, fold_request
from consentdesk.domain.rules import Confirmation, confirmation_clock
from consentdesk.stores.ledger import open_ledger

GDPR, CCPA = Jurisdiction.GDPR, Jurisdiction.CCPA
LA = Calendar(ZoneInfo("America/Los_Angeles"), "US")
BERLIN = Calendar(ZoneInfo("Europe/Berlin"), "DE")


def new_request(
    j: Jurisdiction, t: RequestType, received: date, *, at: datetime | None = None
) -> NewRequest:
    return NewRequest(
        subject="+14155552671",
        type=t,
        jurisdiction=j,
        reference=new_reference(),
        agent="a1",
        received=received,
        at=at or datetime(received.year, received.month, received.day, 18, tzinfo=UTC),
    )


def extend(new: NewRequest, at: datetime) -> RequestChange:
    return RequestChange(
        request_id=new.request_id,
        agent="lead",
        status=RequestStatus.EXTENDED,
        reason="records held by a processor",
        at=at,
    )


# --- Regulation 1182/71: a GDPR period ending on a non-working day runs on ----------


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (date(2024, 5, 15), date(2024, 6, 17)),  # 15 June is a Saturday
        (date(2024, 12, 1), date(2025, 1, 2)),  # 1 January, New Year's Day
        (date(2024, 2, 29), date(2024, 4, 2)),  # Good Friday, weekend, Easter Monday
        (date(2023, 1, 31), date(2023, 5, 2)),  # extended: 30 April Sunday, 1 May holiday
    ],
)
def test_gdpr_period_ending_on_a_holiday_or_weekend_ends_next_working_day(
    received: date, due: date
) -> None:
    extensions = 1 if received == date(2023, 1, 31) else 0
    assert rules.due_date(GDPR, RequestType.ACCESS, received, extensions=extensions) == due
    assert rules.is_business_day(due, GDPR)


def test_gdpr_holidays_are_the_controller_country() -> None:
    # 8 May is a public holiday in France, not in Germany; 9 May 2024 is Ascension in both.
    received = date(2024, 4, 8)
    assert rules.due_date(GDPR, RequestType.ACCESS, received, cal=Calendar(UTC, "DE")) == date(
        2024, 5, 8
    )
    assert rules.due_date(GDPR, RequestType.ACCESS, received, cal=Calendar(UTC, "FR")) == date(
        2024, 5, 10
    )
    assert Calendar(UTC, "FR").holiday(date(2024, 5, 8), GDPR) is not None


def test_unknown_country_counts_weekends_only() -> None:
    cal = Calendar(UTC, "ZZ")
    assert cal.holiday(date(2025, 1, 1), GDPR) is None
    assert cal.is_business_day(date(2025, 1, 1), GDPR)
    assert not cal.is_business_day(date(2025, 1, 4), GDPR)


def test_ccpa_business_days_skip_california_holidays() -> None:
    # Thanksgiving and the day after are California holidays, whatever the region.
    received = date(2024, 11, 25)
    for cal in (DEFAULT_CALENDAR, LA, Calendar(UTC, "FR")):
        assert rules.acknowledge_by(CCPA, RequestType.ACCESS, received, cal) == date(2024, 12, 11)
        assert rules.due_date(CCPA, RequestType.OPT_OUT_SALE, received, cal=cal) == date(
            2024, 12, 18
        )
    assert LA.holiday(date(2024, 11, 29), CCPA) is not None


# --- which day it is: the controller's time zone ---------------------------------------


def test_california_lead_at_five_pm_on_the_due_day_may_still_extend() -> None:
    new = new_request(CCPA, RequestType.ERASURE, date(2024, 3, 1))
    current = fold_request(new, [], LA)
    assert current.due == date(2024, 4, 15)
    five_pm = datetime(2024, 4, 15, 17, tzinfo=ZoneInfo("America/Los_Angeles")).astimezone(UTC)
    assert five_pm.date() == date(2024, 4, 16)  # already the next day in UTC
    check_change(current, extend(new, five_pm), LA)
    assert fold_request(new, [extend(new, five_pm)], LA).due == date(2024, 5, 30)
    with pytest.raises(DomainError, match="must be noted by 2024-04-15"):
        check_change(fold_request(new, []), extend(new, five_pm))  # judged on UTC: too late


def test_berlin_lead_half_past_midnight_after_the_deadline_may_not_extend() -> None:
    new = new_request(GDPR, RequestType.ACCESS, date(2024, 1, 31))
    current = fold_request(new, [], BERLIN)
    assert current.due == date(2024, 2, 29)
    after = datetime(2024, 3, 1, 0, 30, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)
    assert after.date() == date(2024, 2, 29)  # still the due day in UTC
    with pytest.raises(DomainError, match="must be noted by 2024-02-29; it is now too late"):
        check_change(current, extend(new, after), BERLIN)
    check_change(fold_request(new, []), extend(new, after))  # the UTC reading let it through


def test_received_date_is_checked_in_the_controller_zone() -> None:
    now = datetime(2024, 3, 4, 23, 30, tzinfo=UTC)  # 5 March in Berlin, 4 March in LA
    made = privacy_request(
        subject="+4915112345678",
        type=RequestType.ACCESS,
        jurisdiction=GDPR,
        agent="a1",
        received=date(2024, 3, 5),
        now=now,
        tz=BERLIN.tz,
    )
    assert made.received == date(2024, 3, 5)
    default = privacy_request(
        subject="+4915112345678",
        type=RequestType.ACCESS,
        jurisdiction=GDPR,
        agent="a1",
        now=now,
        tz=BERLIN.tz,
    )
    assert default.received == date(2024, 3, 5)
    with pytest.raises(DomainError, match=r"2024-03-05 is in the future \(today is 2024-03-04"):
        privacy_request(
            subject="+14155552671",
            type=RequestType.ACCESS,
            jurisdiction=CCPA,
            agent="a1",
            received=date(2024, 3, 5),
            now=now,
            tz=LA.tz,
        )


def test_embedded_ledger_judges_extensions_on_its_calendar(tmp_path: Path) -> None:
    new = new_request(
        CCPA, RequestType.ERASURE, date(2024, 3, 1), at=datetime(2024, 3, 1, 18, tzinfo=UTC)
    )
    five_pm = datetime(2024, 4, 15, 17, tzinfo=ZoneInfo("America/Los_Angeles")).astimezone(UTC)
    with open_ledger(tmp_path / "la", calendar=LA) as ledger:
        ledger.create_request(new)
        assert ledger.update_request(extend(new, five_pm)).extended
    with open_ledger(tmp_path / "utc") as ledger:
        ledger.create_request(new)
        with pytest.raises(DomainError, match="too late"):
            ledger.update_request(extend(new, five_pm))


# --- CCPA Regs §7021: the confirmation-of-receipt clock --------------------------------


def confirm(new: NewRequest, how: str, at: datetime) -> RequestChange:
    return RequestChange(request_id=new.request_id, agent="a2", confirmation=how, at=at)


def test_confirmation_clock_pending_overdue_confirmed() -> None:
    new = new_request(CCPA, RequestType.ACCESS, date(2024, 11, 25))
    current = fold_request(new, [], LA)
    assert current.acknowledge_by == date(2024, 12, 11)
    assert confirmation_clock(current, date(2024, 12, 11), LA) == Confirmation.PENDING
    assert confirmation_clock(current, date(2024, 12, 12), LA) == Confirmation.OVERDUE
    late = confirm(new, "email", datetime(2024, 12, 13, 17, tzinfo=UTC))
    check_change(current, late, LA)
    confirmed = fold_request(new, [late], LA)
    assert (confirmed.confirmed_at, confirmed.confirmed_how) == (late.at, "email")
    assert confirmation_clock(confirmed, date(2025, 1, 20), LA) == Confirmation.CONFIRMED
    assert confirmed.status == RequestStatus.RECEIVED  # the status is a separate track
    with pytest.raises(DomainError, match="already confirmed"):
        check_change(confirmed, confirm(new, "letter", late.at), LA)


def test_confirmation_only_where_the_law_asks_and_with_its_means() -> None:
    gdpr = new_request(GDPR, RequestType.ACCESS, date(2024, 3, 4))
    with pytest.raises(DomainError, match="needs no confirmation of receipt"):
        check_change(fold_request(gdpr, []), confirm(gdpr, "email", gdpr.at))
    opt_out = new_request(CCPA, RequestType.OPT_OUT_SALE, date(2024, 3, 4))
    current = fold_request(opt_out, [])
    assert confirmation_clock(current, date(2030, 1, 1)) == Confirmation.NOT_REQUIRED
    with pytest.raises(DomainError, match="needs no confirmation"):
        check_change(current, confirm(opt_out, "email", opt_out.at))
    access = new_request(CCPA, RequestType.ACCESS, date(2024, 3, 4))
    with pytest.raises(DomainError, match="say how receipt was confirmed"):
        check_change(fold_request(access, []), confirm(access, "  ", access.at))


def test_closed_request_stops_the_clock() -> None:
    new = new_request(CCPA, RequestType.ERASURE, date(2024, 3, 4))
    early = RequestChange(
        request_id=new.request_id,
        agent="lead",
        status=RequestStatus.WITHDRAWN,
        at=datetime(2024, 3, 6, 18, tzinfo=UTC),
    )
    closed = fold_request(new, [early])
    assert confirmation_clock(closed, date(2024, 6, 1)) == Confirmation.NOT_REQUIRED
    late = RequestChange(
        request_id=new.request_id,
        agent="lead",
        status=RequestStatus.WITHDRAWN,
        at=datetime(2024, 4, 1, 18, tzinfo=UTC),
    )
    assert confirmation_clock(fold_request(new, [late]), date(2024, 6, 1)) == Confirmation.OVERDUE


def test_confirmation_field_keeps_old_records_canonical() -> None:
    # A change written before the field existed encodes exactly as it did then.
    new = new_request(CCPA, RequestType.ACCESS, date(2024, 3, 4))
    plain = RequestChange(request_id=new.request_id, agent="a", status=RequestStatus.VERIFYING)
    assert "confirmation" not in canonical_json(plain)
    assert request_change_from_json(to_jsonable(plain)) == plain
    with_how = confirm(new, "letter", new.at)
    assert request_change_from_json(to_jsonable(with_how)) == with_how
    state = fold_request(new, [with_how])
    assert privacy_request_from_json(to_jsonable(state)) == state
    assert "confirmed_at" not in canonical_json(fold_request(new, []))
