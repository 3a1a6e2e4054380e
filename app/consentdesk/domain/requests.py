"""Privacy request lifecycle: folding stored events and checking new ones.

received → verifying → in-progress → completed | rejected | extended | withdrawn;
extended → in-progress | completed | rejected | withdrawn. A request whose
identity is already verified (or needs no verification) may skip ``verifying``;
rejected, withdrawn and extended are reachable from every open status. Completed,
rejected and withdrawn are final. Beside the status, a CCPA request to know,
delete or correct carries a confirmation-of-receipt clock (CCPA Regs §7021),
stopped by a change that records how receipt was confirmed.

Dates are taken on the controller's :class:`~consentdesk.domain.calendars.Calendar`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from consentdesk.domain import rules
from consentdesk.domain.calendars import DEFAULT_CALENDAR, Calendar
from consentdesk.domain.model import (
    DomainError,
    NewRequest,
    PrivacyRequest,
    RequestChange,
    RequestStatus,
    Verification,
    VerificationResult,
)

_S = RequestStatus
MOVES: Mapping[RequestStatus, frozenset[RequestStatus]] = MappingProxyType(
    {
        _S.RECEIVED: frozenset(
            {_S.VERIFYING, _S.IN_PROGRESS, _S.EXTENDED, _S.REJECTED, _S.WITHDRAWN}
        ),
        _S.VERIFYING: frozenset({_S.IN_PROGRESS, _S.EXTENDED, _S.REJECTED, _S.WITHDRAWN}),
        _S.IN_PROGRESS: frozenset({_S.COMPLETED, _S.EXTENDED, _S.REJECTED, _S.WITHDRAWN}),
        _S.EXTENDED: frozenset({_S.IN_PROGRESS, _S.COMPLETED, _S.REJECTED, _S.WITHDRAWN}),
        _S.COMPLETED: frozenset(),
        _S.REJECTED: frozenset(),
        _S.WITHDRAWN: frozenset(),
    }
)
NEEDS_REASON = frozenset({_S.REJECTED, _S.EXTENDED})
NEEDS_IDENTITY = frozenset({_S.IN_PROGRESS, _S.COMPLETED})
MAX_CONFIRMATION = 200


def fold_request(
    created: NewRequest, changes: Sequence[RequestChange], cal: Calendar = DEFAULT_CALENDAR
) -> PrivacyRequest:
    """Current state of a request from its creation and later changes, in ledger order.

    Total for stored data: every change is applied as recorded (the checks ran
    when it was captured), so history written under other rules still folds.
    Changes that belong to another request are ignored.
    """
    status = RequestStatus.RECEIVED
    reason: str | None = None
    extensions = 0
    verifications: list[Verification] = [created.verification] if created.verification else []
    updated_at = created.at
    confirmed: RequestChange | None = None
    for change in changes:
        if change.request_id != created.request_id:
            continue
        if change.confirmation is not None and confirmed is None:
            confirmed = change
        if change.verification is not None:
            verifications.append(change.verification)
        if change.status is not None:
            status = change.status
            reason = change.reason
            if change.status == RequestStatus.EXTENDED:
                extensions += 1
        updated_at = max(updated_at, change.at)
    extensions = min(extensions, rules.max_extensions(created.jurisdiction, created.type))
    return PrivacyRequest(
        request_id=created.request_id,
        reference=created.reference,
        subject=created.subject,
        type=created.type,
        jurisdiction=created.jurisdiction,
        received=created.received,
        status=status,
        due=rules.due_date(
            created.jurisdiction, created.type, created.received, extensions=extensions, cal=cal
        ),
        acknowledge_by=rules.acknowledge_by(
            created.jurisdiction, created.type, created.received, cal
        ),
        agent=created.agent,
        created_at=created.at,
        updated_at=updated_at,
        call_id=created.call_id,
        note=created.note,
        status_reason=reason,
        extended=extensions > 0,
        verifications=tuple(verifications),
        confirmed_at=confirmed.at if confirmed else None,
        confirmed_how=confirmed.confirmation if confirmed else None,
    )


def identity_verified(request: PrivacyRequest, change: RequestChange | None = None) -> bool:
    """Whether the latest verification (this change's, if it has one) passed,
    or the request type needs none."""
    if not rules.needs_verification(request.jurisdiction, request.type):
        return True
    latest = change.verification if change and change.verification else None
    if latest is None and request.verifications:
        latest = request.verifications[-1]
    return latest is not None and latest.result == VerificationResult.PASSED


def check_change(
    current: PrivacyRequest, change: RequestChange, cal: Calendar = DEFAULT_CALENDAR
) -> None:
    """Raise DomainError unless *change* is a legal next step for *current*.

    The extension window is judged on the controller's date of ``change.at``
    (a Californian lead at 17:00 local on the last day is still in time).
    """
    ref = current.reference
    if change.request_id != current.request_id:
        raise DomainError(f"the change is for a different request than {ref}")
    if not change.agent.strip():
        raise DomainError("agent is required")
    if not current.is_open:
        raise DomainError(f"request {ref} is {current.status}; a closed request is final")
    if change.verification is not None:
        _check_verification(current, change.verification)
    if change.confirmation is not None:
        _check_confirmation(current, change.confirmation)
    target = change.status
    if target is None:
        if change.verification is None and change.confirmation is None:
            raise DomainError("a change needs a new status, a verification or a confirmation")
        return
    if target not in MOVES[current.status]:
        raise DomainError(f"request {ref} cannot move from {current.status} to {target}")
    if target in NEEDS_REASON and not (change.reason or "").strip():
        raise DomainError(f"a request can only be {target} with a reason")
    if target == RequestStatus.EXTENDED:
        _check_extension(current, change, cal)
    if target in NEEDS_IDENTITY and not identity_verified(current, change):
        raise DomainError(
            f"request {ref} cannot be {target} before the caller's identity is verified"
        )


def _check_verification(current: PrivacyRequest, verification: Verification) -> None:
    if not verification.method.strip() or not verification.by.strip():
        raise DomainError("a verification needs its method and who checked")
    if verification.result == VerificationResult.NOT_REQUIRED and rules.needs_verification(
        current.jurisdiction, current.type
    ):
        raise DomainError(
            f"{current.type} under {current.jurisdiction} needs identity verification"
        )


def _check_confirmation(current: PrivacyRequest, how: str) -> None:
    if current.acknowledge_by is None:
        raise DomainError(
            f"{current.type} under {rules.rule_for(current.jurisdiction).title} "
            "needs no confirmation of receipt"
        )
    if current.confirmed_at is not None:
        raise DomainError(f"receipt of request {current.reference} is already confirmed")
    if not how.strip():
        raise DomainError("say how receipt was confirmed (for example: email, letter, call)")
    if len(how) > MAX_CONFIRMATION:
        raise DomainError(f"how receipt was confirmed is over {MAX_CONFIRMATION} characters")


def _check_extension(current: PrivacyRequest, change: RequestChange, cal: Calendar) -> None:
    j = current.jurisdiction
    today = cal.day_of(change.at)
    if rules.can_extend(j, current, today, cal):
        return
    title = rules.rule_for(j).title
    if rules.max_extensions(j, current.type) < 1:
        raise DomainError(f"{current.type} under {title} cannot be extended")
    if current.extended:
        raise DomainError(f"request {current.reference} has already been extended")
    deadline = rules.extension_deadline(j, current, cal)
    raise DomainError(f"under {title} an extension must be noted by {deadline}; it is now too late")
