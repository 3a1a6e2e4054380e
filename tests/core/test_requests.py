"""Privacy request lifecycle: the fold over stored events and the change checks."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from consentdesk.domain import rules
from consentdesk.domain.model import (
    DomainError,
    Jurisdiction,
    NewRequest,
    PrivacyRequest,
    RequestChange,
    RequestStatus,
    RequestType,
    Verification,
    VerificationResult,
)
from consentdesk.domain.references import new_reference
from consentdesk.domain.requests import MOVES, check_change, fold_request

S = RequestStatus
RECEIVED_ON = date(2024, 1, 31)
T0 = datetime(2024, 1, 31, 10, tzinfo=UTC)


def created(
    t: RequestType = RequestType.ACCESS,
    j: Jurisdiction = Jurisdiction.GDPR,
    *,
    verification: Verification | None = None,
) -> NewRequest:
    return NewRequest(
        subject="+4915112345678",
        type=t,
        jurisdiction=j,
        reference=new_reference(),
        agent="agent-7",
        received=RECEIVED_ON,
        verification=verification,
        at=T0,
    )


def passed(at: datetime = T0) -> Verification:
    return Verification("name, address, date of birth", VerificationResult.PASSED, "agent-7", at)


def change(
    new: NewRequest,
    status: RequestStatus | None = None,
    *,
    reason: str | None = None,
    verification: Verification | None = None,
    at: datetime = T0 + timedelta(hours=1),
) -> RequestChange:
    return RequestChange(
        request_id=new.request_id,
        agent="agent-7",
        status=status,
        reason=reason,
        verification=verification,
        at=at,
    )


def apply(new: NewRequest, *changes: RequestChange) -> PrivacyRequest:
    """Check and fold each change in turn, as a backend does."""
    done: list[RequestChange] = []
    current = fold_request(new, done)
    for c in changes:
        check_change(current, c)
        done.append(c)
        current = fold_request(new, done)
    return current


def test_new_request_folds_to_received_with_statutory_dates() -> None:
    new = created(RequestType.ERASURE, Jurisdiction.CCPA, verification=passed())
    r = fold_request(new, [])
    assert r.status == S.RECEIVED
    assert r.reference == new.reference and r.request_id == new.request_id
    assert r.due == date(2024, 3, 16)
    assert r.acknowledge_by == date(2024, 2, 14)
    assert r.verifications == (new.verification,)
    assert r.created_at == r.updated_at == T0
    assert not r.extended and r.is_open


def test_full_lifecycle() -> None:
    new = created()
    r = apply(
        new,
        change(new, S.VERIFYING),
        change(new, S.IN_PROGRESS, verification=passed()),
        change(new, S.EXTENDED, reason="many records across three systems"),
        change(new, S.COMPLETED, at=T0 + timedelta(days=40)),
    )
    assert r.status == S.COMPLETED
    assert r.extended
    assert r.due == date(2024, 4, 30)
    assert r.status_reason is None
    assert len(r.verifications) == 1
    assert r.updated_at == T0 + timedelta(days=40)
    assert not r.is_open and not r.is_overdue(date(2025, 1, 1))


def test_extension_moves_due_date_and_keeps_reason() -> None:
    new = created(RequestType.ACCESS, Jurisdiction.CCPA)
    r = apply(new, change(new, S.EXTENDED, reason="complex request"))
    assert r.status == S.EXTENDED
    assert r.status_reason == "complex request"
    assert r.due == rules.due_date(Jurisdiction.CCPA, RequestType.ACCESS, RECEIVED_ON, extensions=1)


def test_closed_is_final() -> None:
    new = created()
    for final in (S.REJECTED, S.WITHDRAWN):
        r = apply(new, change(new, final, reason="identity could not be confirmed"))
        for target in S:
            with pytest.raises(DomainError, match="closed request is final"):
                check_change(r, change(new, target, reason="x", verification=passed()))
        with pytest.raises(DomainError, match="closed request is final"):
            check_change(r, change(new, verification=passed()))


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ((), S.COMPLETED),
        ((), S.RECEIVED),
        ((S.VERIFYING,), S.VERIFYING),
        ((S.VERIFYING,), S.RECEIVED),
        ((S.VERIFYING,), S.COMPLETED),
        ((S.VERIFYING, S.IN_PROGRESS), S.VERIFYING),
        ((S.VERIFYING, S.IN_PROGRESS), S.RECEIVED),
        ((S.VERIFYING, S.IN_PROGRESS, S.EXTENDED), S.VERIFYING),
        ((S.VERIFYING, S.IN_PROGRESS, S.EXTENDED), S.EXTENDED),
    ],
)
def test_illegal_moves(path: tuple[RequestStatus, ...], target: RequestStatus) -> None:
    new = created(verification=passed())
    r = apply(new, *(change(new, s, reason="needs time") for s in path))
    with pytest.raises(DomainError, match=f"cannot move from {r.status} to {target}|already"):
        check_change(r, change(new, target, reason="because"))


def test_moves_table_is_complete_and_closed_states_are_final() -> None:
    assert set(MOVES) == set(S)
    for status in (S.COMPLETED, S.REJECTED, S.WITHDRAWN):
        assert not MOVES[status]
    for status, targets in MOVES.items():
        assert status not in targets
        assert S.RECEIVED not in targets


@pytest.mark.parametrize("target", [S.REJECTED, S.EXTENDED])
@pytest.mark.parametrize("reason", [None, "", "   "])
def test_rejected_and_extended_need_a_reason(target: RequestStatus, reason: str | None) -> None:
    new = created()
    r = fold_request(new, [])
    with pytest.raises(DomainError, match="with a reason"):
        check_change(r, change(new, target, reason=reason))


def test_work_needs_verified_identity() -> None:
    new = created()
    r = apply(new, change(new, S.VERIFYING))
    with pytest.raises(DomainError, match="identity is verified"):
        check_change(r, change(new, S.IN_PROGRESS))
    failed = Verification("date of birth", VerificationResult.FAILED, "agent-7", T0)
    with pytest.raises(DomainError, match="identity is verified"):
        check_change(r, change(new, S.IN_PROGRESS, verification=failed))
    r = apply(new, change(new, S.VERIFYING), change(new, verification=failed))
    with pytest.raises(DomainError, match="identity is verified"):
        check_change(r, change(new, S.IN_PROGRESS))
    r = apply(new, change(new, S.VERIFYING), change(new, verification=passed()))
    check_change(r, change(new, S.IN_PROGRESS))


def test_verified_request_may_skip_verifying() -> None:
    new = created(verification=passed())
    r = apply(new, change(new, S.IN_PROGRESS), change(new, S.COMPLETED))
    assert r.status == S.COMPLETED


@pytest.mark.parametrize("t", [RequestType.OPT_OUT_SALE, RequestType.LIMIT_SENSITIVE])
def test_ccpa_opt_out_needs_no_verification_and_cannot_be_extended(t: RequestType) -> None:
    new = created(t, Jurisdiction.CCPA)
    r = apply(new, change(new, S.IN_PROGRESS))
    with pytest.raises(DomainError, match="cannot be extended"):
        check_change(r, change(new, S.EXTENDED, reason="busy"))
    assert apply(new, change(new, S.IN_PROGRESS), change(new, S.COMPLETED)).status == S.COMPLETED
    not_required = Verification("none", VerificationResult.NOT_REQUIRED, "agent-7", T0)
    check_change(r, change(new, verification=not_required))


def test_not_required_verification_is_refused_where_identity_is_needed() -> None:
    new = created()
    r = fold_request(new, [])
    not_required = Verification("none", VerificationResult.NOT_REQUIRED, "agent-7", T0)
    with pytest.raises(DomainError, match="needs identity verification"):
        check_change(r, change(new, verification=not_required))


def test_gdpr_extension_must_be_noted_within_the_first_month() -> None:
    new = created(verification=passed())
    r = apply(new, change(new, S.IN_PROGRESS))
    last_day = datetime(2024, 2, 29, 23, 59, tzinfo=UTC)
    check_change(r, change(new, S.EXTENDED, reason="complex", at=last_day))
    with pytest.raises(DomainError, match="must be noted by 2024-02-29"):
        check_change(r, change(new, S.EXTENDED, reason="complex", at=last_day + timedelta(1)))


def test_extension_only_once() -> None:
    new = created(verification=passed())
    r = apply(
        new,
        change(new, S.EXTENDED, reason="complex"),
        change(new, S.IN_PROGRESS),
    )
    with pytest.raises(DomainError, match="already been extended"):
        check_change(r, change(new, S.EXTENDED, reason="still complex"))


def test_change_must_name_this_request_and_an_agent_and_do_something() -> None:
    new = created()
    r = fold_request(new, [])
    other = RequestChange(request_id=uuid.uuid4(), agent="a", status=S.VERIFYING, at=T0)
    with pytest.raises(DomainError, match="different request"):
        check_change(r, other)
    with pytest.raises(DomainError, match="agent is required"):
        check_change(r, RequestChange(request_id=new.request_id, agent=" ", status=S.VERIFYING))
    with pytest.raises(DomainError, match="needs a new status, a verification or a confirmation"):
        check_change(r, change(new))


def test_fold_is_total_for_stored_history() -> None:
    # History written elsewhere (other rules, a second extension) still folds;
    # the due date never goes past what the rules allow.
    new = created(RequestType.OPT_OUT_SALE, Jurisdiction.CCPA)
    stored = [
        change(new, S.COMPLETED),
        change(new, S.EXTENDED, reason="x"),
        change(new, S.EXTENDED, reason="y"),
        RequestChange(request_id=uuid.uuid4(), agent="other", status=S.WITHDRAWN, at=T0),
    ]
    r = fold_request(new, stored)
    assert r.status == S.EXTENDED
    assert r.status_reason == "y"
    assert not r.extended  # opt-outs cannot be extended, so the due date stays
    assert r.due == rules.due_date(Jurisdiction.CCPA, RequestType.OPT_OUT_SALE, RECEIVED_ON)


def test_overdue_and_days_left() -> None:
    new = created()
    r = fold_request(new, [])
    assert r.due == date(2024, 2, 29)
    assert r.days_left(date(2024, 2, 26)) == 3
    assert not r.is_overdue(date(2024, 2, 29))
    assert r.is_overdue(date(2024, 3, 1))
