"""Statutory deadlines, extensions and verification rules."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentdesk.domain import rules
from consentdesk.domain.model import (
    DomainError,
    Jurisdiction,
    PrivacyRequest,
    RequestStatus,
    RequestType,
)

GDPR, CCPA = Jurisdiction.GDPR, Jurisdiction.CCPA
T = RequestType


def request(
    j: Jurisdiction,
    t: RequestType,
    received: date,
    *,
    status: RequestStatus = RequestStatus.IN_PROGRESS,
    extended: bool = False,
) -> PrivacyRequest:
    at = datetime(received.year, received.month, received.day, 9, tzinfo=UTC)
    return PrivacyRequest(
        request_id=uuid.uuid4(),
        reference="RQ-TEST",
        subject="+4915112345678",
        type=t,
        jurisdiction=j,
        received=received,
        status=status,
        due=rules.due_date(j, t, received, extensions=int(extended)),
        acknowledge_by=rules.acknowledge_by(j, t, received),
        agent="a1",
        created_at=at,
        updated_at=at,
        extended=extended,
    )


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (date(2023, 1, 31), date(2023, 2, 28)),
        (date(2024, 1, 31), date(2024, 2, 29)),
        (date(2024, 1, 30), date(2024, 2, 29)),
        (date(2024, 1, 29), date(2024, 2, 29)),
        (date(2024, 1, 28), date(2024, 2, 28)),
        (date(2024, 3, 31), date(2024, 4, 30)),
        (date(2024, 5, 14), date(2024, 6, 14)),
        (date(2024, 12, 31), date(2025, 1, 31)),
        (date(2024, 2, 28), date(2024, 3, 28)),
    ],
)
def test_gdpr_one_month(received: date, due: date) -> None:
    assert rules.due_date(GDPR, T.ACCESS, received) == due


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (date(2024, 1, 31), date(2024, 4, 30)),
        (date(2023, 11, 30), date(2024, 2, 29)),
        (date(2023, 11, 29), date(2024, 2, 29)),
        (date(2024, 10, 15), date(2025, 1, 15)),
    ],
)
def test_gdpr_extension_is_three_months_from_receipt(received: date, due: date) -> None:
    assert rules.due_date(GDPR, T.ERASURE, received, extensions=1) == due


def test_gdpr_allows_exactly_one_extension() -> None:
    assert rules.max_extensions(GDPR, T.ACCESS) == 1
    with pytest.raises(DomainError, match="at most 1 extension"):
        rules.due_date(GDPR, T.ACCESS, date(2024, 1, 1), extensions=2)
    with pytest.raises(DomainError):
        rules.due_date(GDPR, T.ACCESS, date(2024, 1, 1), extensions=-1)


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2200, 12, 31)))
def test_add_months_properties(day: date) -> None:
    due = rules.add_months(day, 1)
    assert (due.year * 12 + due.month) - (day.year * 12 + day.month) == 1
    assert due.day == day.day or (due.day < day.day and (due + timedelta(1)).day == 1)


@pytest.mark.parametrize("t", [T.ACCESS, T.ERASURE, T.RECTIFICATION, T.PORTABILITY])
def test_ccpa_45_days_plus_45(t: RequestType) -> None:
    received = date(2024, 3, 1)
    assert rules.due_date(CCPA, t, received) == date(2024, 4, 15)
    assert rules.due_date(CCPA, t, received, extensions=1) == date(2024, 5, 30)
    assert rules.max_extensions(CCPA, t) == 1


@pytest.mark.parametrize(
    ("received", "ack"),
    [
        (date(2024, 3, 4), date(2024, 3, 18)),  # Monday → two weeks later
        (date(2024, 3, 8), date(2024, 3, 22)),  # Friday
        (date(2024, 3, 9), date(2024, 3, 22)),  # Saturday: counting starts Monday
        (date(2024, 3, 10), date(2024, 3, 22)),  # Sunday
        (date(2024, 12, 27), date(2025, 1, 13)),  # across the year end, 1 Jan skipped
    ],
)
def test_ccpa_acknowledge_within_ten_business_days(received: date, ack: date) -> None:
    assert rules.acknowledge_by(CCPA, T.ACCESS, received) == ack
    assert rules.is_business_day(ack, CCPA)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (date(2024, 3, 4), date(2024, 3, 25)),  # Monday + 15 business days
        (date(2024, 3, 8), date(2024, 3, 29)),  # Friday
        (date(2024, 3, 9), date(2024, 3, 29)),  # Saturday
    ],
)
@pytest.mark.parametrize("t", [T.OPT_OUT_SALE, T.LIMIT_SENSITIVE])
def test_ccpa_opt_out_within_15_business_days(t: RequestType, received: date, due: date) -> None:
    assert rules.due_date(CCPA, t, received) == due
    assert rules.acknowledge_by(CCPA, t, received) is None
    assert rules.max_extensions(CCPA, t) == 0
    with pytest.raises(DomainError, match="at most 0"):
        rules.due_date(CCPA, t, received, extensions=1)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)), st.integers(0, 40))
def test_business_days_skip_weekends(start: date, n: int) -> None:
    for j in Jurisdiction:
        end = rules.add_business_days(start, n, j)
        days = [start + timedelta(i) for i in range(1, (end - start).days + 1)]
        assert sum(rules.is_business_day(d, j) for d in days) == n
        assert n == 0 or rules.is_business_day(end, j)
        assert all(d.weekday() < 5 for d in days if rules.is_business_day(d, j))


def test_gdpr_asks_for_no_acknowledgement() -> None:
    for t in rules.rule_for(GDPR).request_types:
        assert rules.acknowledge_by(GDPR, t, date(2024, 3, 4)) is None


def test_every_jurisdiction_covers_every_request_type() -> None:
    for j in Jurisdiction:
        rule = rules.rule_for(j)
        assert rule.jurisdiction == j
        assert set(rule.types) == set(RequestType)


def test_offered_types() -> None:
    assert T.OPT_OUT_SALE not in rules.rule_for(GDPR).request_types
    assert T.OBJECTION not in rules.rule_for(CCPA).request_types
    assert T.ACCESS in rules.rule_for(CCPA).request_types
    rules.check_offered(CCPA, T.OPT_OUT_SALE)
    with pytest.raises(DomainError, match=r"not a request under EU GDPR: .*objection"):
        rules.check_offered(GDPR, T.OPT_OUT_SALE)


def test_verification() -> None:
    for t in (T.OPT_OUT_SALE, T.LIMIT_SENSITIVE):
        assert not rules.needs_verification(CCPA, t)
        assert rules.verification_checklist(CCPA, t) == ()
    for j in Jurisdiction:
        for t in (T.ACCESS, T.ERASURE, T.RECTIFICATION, T.PORTABILITY):
            checklist = rules.verification_checklist(j, t)
            assert rules.needs_verification(j, t)
            assert any("name" in item.lower() for item in checklist)
            assert any("address" in item.lower() for item in checklist)
            assert any("date of birth or customer number" in item.lower() for item in checklist)
            assert len(set(checklist)) == len(checklist)
        portability = rules.verification_checklist(j, T.PORTABILITY)
        assert any("email" in item.lower() for item in portability)
        assert not any(
            "email" in item.lower() for item in rules.verification_checklist(j, T.ERASURE)
        )


def test_gdpr_extension_only_within_first_month() -> None:
    r = request(GDPR, T.ACCESS, date(2024, 1, 31))
    assert rules.can_extend(GDPR, r, date(2024, 1, 31))
    assert rules.can_extend(GDPR, r, date(2024, 2, 29))
    assert not rules.can_extend(GDPR, r, date(2024, 3, 1))


def test_ccpa_extension_only_within_first_45_days() -> None:
    r = request(CCPA, T.ERASURE, date(2024, 3, 1))
    assert rules.can_extend(CCPA, r, date(2024, 4, 15))
    assert not rules.can_extend(CCPA, r, date(2024, 4, 16))


def test_no_extension_when_closed_already_extended_or_not_extendable() -> None:
    received = date(2024, 3, 1)
    assert not rules.can_extend(
        GDPR, request(GDPR, T.ACCESS, received, status=RequestStatus.COMPLETED), received
    )
    assert not rules.can_extend(GDPR, request(GDPR, T.ACCESS, received, extended=True), received)
    assert not rules.can_extend(CCPA, request(CCPA, T.OPT_OUT_SALE, received), received)
