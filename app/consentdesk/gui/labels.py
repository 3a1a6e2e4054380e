"""Words the sidebar shows for domain values, dates and times."""

from __future__ import annotations

from datetime import date, datetime

from consentdesk.domain.model import (
    Channel,
    CollectionMethod,
    ConsentState,
    Jurisdiction,
    RequestStatus,
    RequestType,
)

CHANNELS: dict[Channel, str] = {
    Channel.PHONE: "Phone",
    Channel.SMS: "SMS",
    Channel.EMAIL: "Email",
    Channel.POST: "Post",
    Channel.ONLINE: "Online",
}

METHOD_MARKS: dict[CollectionMethod, str] = {
    CollectionMethod.VERBAL_CALL: "call",
    CollectionMethod.AGENT_ASSISTED: "agent",
    CollectionMethod.WRITTEN: "letter",
    CollectionMethod.ONLINE_FORM: "web",
}

METHODS: dict[CollectionMethod, str] = {
    CollectionMethod.VERBAL_CALL: "verbal, on a call",
    CollectionMethod.AGENT_ASSISTED: "agent-assisted",
    CollectionMethod.WRITTEN: "in writing",
    CollectionMethod.ONLINE_FORM: "online form",
}

REQUEST_TYPES: dict[RequestType, str] = {
    RequestType.ACCESS: "Access",
    RequestType.ERASURE: "Erasure",
    RequestType.RECTIFICATION: "Rectification",
    RequestType.PORTABILITY: "Portability",
    RequestType.RESTRICTION: "Restriction",
    RequestType.OBJECTION: "Objection",
    RequestType.OPT_OUT_SALE: "Opt-out of sale/sharing",
    RequestType.LIMIT_SENSITIVE: "Limit sensitive data",
}

REQUEST_STATUSES: dict[RequestStatus, str] = {
    RequestStatus.RECEIVED: "Received",
    RequestStatus.VERIFYING: "Verifying",
    RequestStatus.IN_PROGRESS: "In progress",
    RequestStatus.EXTENDED: "Extended",
    RequestStatus.COMPLETED: "Completed",
    RequestStatus.REJECTED: "Rejected",
    RequestStatus.WITHDRAWN: "Withdrawn",
}

JURISDICTIONS: dict[Jurisdiction, str] = {
    Jurisdiction.GDPR: "GDPR (EU)",
    Jurisdiction.CCPA: "CCPA/CPRA (California)",
}

STATE_VERBS: dict[ConsentState, str] = {
    ConsentState.GIVEN: "given",
    ConsentState.REFUSED: "refused",
    ConsentState.WITHDRAWN: "withdrawn",
    ConsentState.VOID: "void",
    ConsentState.EXPIRED: "expired",
    ConsentState.UNKNOWN: "not asked",
    ConsentState.OPTED_OUT: "stopped by the caller's CCPA request",
}


def group_title(group: str) -> str:
    return group.replace("-", " ").replace("_", " ").capitalize()


def local_time(at: datetime) -> datetime:
    return at.astimezone()


def short_date(at: datetime | date) -> str:
    """``5 Oct 25``: fits a grid cell; full dates are in tooltips and history."""
    day = local_time(at).date() if isinstance(at, datetime) else at
    return f"{day.day} {day:%b %y}"


def long_date(day: date) -> str:
    return day.strftime("%a %d %b %Y")


def date_time(at: datetime) -> str:
    return local_time(at).strftime("%d %b %Y %H:%M")


def days_left_text(days: int) -> str:
    if days < 0:
        n = -days
        return f"overdue by {n} day{'s' if n != 1 else ''}"
    if days == 0:
        return "due today"
    return f"{days} day{'s' if days != 1 else ''} left"


def duration(seconds: int) -> str:
    minutes, secs = divmod(max(seconds, 0), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
