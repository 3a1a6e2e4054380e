"""The privacy-request queue a lead works through: buckets, the statutory clocks in
words (the answer's and, for CCPA requests to know, delete and correct, the
confirmation of receipt under CCPA Regs §7021), and the status moves a lead may make.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from consentdesk.domain import requests, rules
from consentdesk.domain.calendars import DEFAULT_CALENDAR, Calendar
from consentdesk.domain.model import (
    DomainError,
    PrivacyRequest,
    RequestChange,
    RequestStatus,
    utcnow,
)

MAX_REASON = 2000


class QueueBucket(enum.StrEnum):
    OVERDUE = "overdue"
    DUE_THIS_WEEK = "due-this-week"
    LATER = "later"


QUEUE_LABELS: Mapping[QueueBucket, str] = {
    QueueBucket.OVERDUE: "Overdue",
    QueueBucket.DUE_THIS_WEEK: "Due this week",
    QueueBucket.LATER: "Later",
}


@dataclass(frozen=True, slots=True)
class QueueItem:
    request: PrivacyRequest
    bucket: QueueBucket
    days_left: int
    clock: str
    # The CCPA Regs §7021 confirmation-of-receipt clock, tracked beside the answer's.
    confirmation: rules.Confirmation = rules.Confirmation.NOT_REQUIRED


def bucket_for(request: PrivacyRequest, today: date) -> QueueBucket:
    """Overdue when the answer or the confirmation of receipt is late."""
    days = request.days_left(today)
    if days < 0 or rules.confirmation_clock(request, today) == rules.Confirmation.OVERDUE:
        return QueueBucket.OVERDUE
    return QueueBucket.DUE_THIS_WEEK if days < 7 else QueueBucket.LATER


def statutory_clock(request: PrivacyRequest, today: date) -> str:
    """The statutory clock in words, with the rule it comes from."""
    rule = rules.rule_for(request.jurisdiction)
    days = request.days_left(today)
    ext = ", extended" if request.extended else ""
    if not request.is_open:
        return f"closed ({request.status}) — {rule.citation}"
    if days < 0:
        when = f"overdue by {-days} day{'s' if days != -1 else ''}"
    elif days == 0:
        when = "due today"
    else:
        when = f"{days} day{'s' if days != 1 else ''} left"
    confirm = confirmation_text(request, today)
    return f"{when} (due {request.due.isoformat()}{ext}){confirm} — {rule.citation}"


def confirmation_text(request: PrivacyRequest, today: date) -> str:
    """The confirmation-of-receipt clock as a clause for the queue ("" when none runs)."""
    clock = rules.confirmation_clock(request, today)
    if clock == rules.Confirmation.CONFIRMED:
        assert request.confirmed_at is not None
        return f"; receipt confirmed {request.confirmed_at.date().isoformat()}"
    if request.acknowledge_by is None or clock == rules.Confirmation.NOT_REQUIRED:
        return ""
    by = request.acknowledge_by.isoformat()
    if clock == rules.Confirmation.OVERDUE:
        return f"; receipt confirmation OVERDUE (was due {by}, CCPA Regs §7021)"
    return f"; confirm receipt by {by} (CCPA Regs §7021)"


def request_queue(pending: Iterable[PrivacyRequest], today: date) -> tuple[QueueItem, ...]:
    """Open requests, overdue first, then due this week, then later; soonest due first."""
    order = list(QueueBucket)
    items = [
        QueueItem(
            r,
            bucket_for(r, today),
            r.days_left(today),
            statutory_clock(r, today),
            rules.confirmation_clock(r, today),
        )
        for r in pending
        if r.is_open
    ]
    items.sort(key=lambda i: (order.index(i.bucket), i.request.due, i.request.created_at))
    return tuple(items)


LEAD_MOVES: tuple[RequestStatus, ...] = (
    RequestStatus.VERIFYING,
    RequestStatus.IN_PROGRESS,
    RequestStatus.EXTENDED,
    RequestStatus.COMPLETED,
    RequestStatus.REJECTED,
)
REASON_REQUIRED = requests.NEEDS_REASON


def allowed_moves(request: PrivacyRequest) -> tuple[RequestStatus, ...]:
    """The status moves a lead may offer for *request* now, in workflow order."""
    possible = requests.MOVES[request.status]
    return tuple(s for s in LEAD_MOVES if s in possible)


def needs_confirmation(request: PrivacyRequest) -> bool:
    """Whether receipt of *request* still has to be confirmed (CCPA Regs §7021)."""
    return request.acknowledge_by is not None and request.confirmed_at is None


def lead_move(
    request: PrivacyRequest,
    status: RequestStatus | None,
    *,
    by: str,
    reason: str | None = None,
    at: datetime | None = None,
    cal: Calendar = DEFAULT_CALENDAR,
    confirmation: str | None = None,
) -> RequestChange:
    """The step a lead asked for: a status move and/or how receipt was confirmed,
    checked against the request lifecycle and the statutory rules (reasons for
    extended/rejected, one extension in time judged on the controller's calendar
    *cal*, a confirmation only where the law asks for one)."""
    reason = (reason or "").strip() or None
    confirmation = (confirmation or "").strip() or None
    if status is None and confirmation is None:
        raise DomainError("choose a new status or say how receipt was confirmed")
    if status is not None and status not in LEAD_MOVES:
        raise DomainError(f"a lead cannot move a request to {status}")
    if reason is not None and len(reason) > MAX_REASON:
        raise DomainError(f"the reason is longer than {MAX_REASON} characters")
    change = RequestChange(
        request_id=request.request_id,
        agent=by,
        status=status,
        reason=reason,
        at=at or utcnow(),
        confirmation=confirmation,
    )
    requests.check_change(request, change, cal)
    return change
