"""Statutory rules for privacy requests, as data: one table per jurisdiction.

Every period starts the day after receipt (the day of receipt never counts) and
ends at the end of its last day, on the controller's calendar
(:mod:`consentdesk.domain.calendars`: ``general.timezone`` decides which day it
is, public holidays come from the ``holidays`` package).

GDPR (Regulation (EU) 2016/679):
  * Art. 12(3): answer within one month of receipt; extendable by two further
    months where necessary, the extension told to the data subject within the
    first month. Extended, the answer is due three months after receipt.
  * Regulation (EEC, Euratom) No 1182/71 (time limits in EU law), Art. 3(2)(c)
    and 3(4): a month ends on the same date of the following month (the last day
    of a shorter month), and a period whose last day is a Saturday, Sunday or a
    public holiday of the controller's country ends on the next working day.
CCPA/CPRA (California):
  * Cal. Civ. Code §1798.130(a)(2): answer requests to know, delete and correct
    within 45 calendar days of receipt; extendable once by 45 more days when
    reasonably necessary, with notice to the consumer within the first 45 days.
  * CCPA Regulations (Cal. Code Regs. tit. 11) §7021: confirm receipt of a
    request to know, delete or correct within 10 business days. The confirmation
    is a tracked clock of its own (:func:`confirmation_clock`), stopped by a
    recorded confirmation (how it was given: call, email, letter); the request
    scripts promise it, so reading them on the call does not stop it.
  * §7026(f) and §7027(g): act on a request to opt out of sale/sharing or to
    limit the use of sensitive personal information as soon as feasibly possible
    and no later than 15 business days from receipt (a ceiling, not a delay);
    no identity verification. Business days skip California's public holidays.
"""

from __future__ import annotations

import calendar
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from types import MappingProxyType

from consentdesk.domain.calendars import DEFAULT_CALENDAR, Calendar
from consentdesk.domain.model import (
    CLOSED_STATUSES,
    DomainError,
    Jurisdiction,
    PrivacyRequest,
    RequestType,
)


@dataclass(frozen=True, slots=True)
class Period:
    """A statutory period: calendar months, calendar days or business days."""

    months: int = 0
    days: int = 0
    business_days: int = 0

    def after(self, start: date, j: Jurisdiction, cal: Calendar = DEFAULT_CALENDAR) -> date:
        """The last day of the period for an event on *start* (which does not count).

        Business days skip weekends and *j*'s public holidays on *cal*.
        """
        end = add_months(start, self.months) + timedelta(self.days)
        return add_business_days(end, self.business_days, j, cal)

    def times(self, n: int) -> Period:
        return Period(self.months * n, self.days * n, self.business_days * n)

    def plus(self, other: Period) -> Period:
        return Period(
            self.months + other.months,
            self.days + other.days,
            self.business_days + other.business_days,
        )


@dataclass(frozen=True, slots=True)
class TypeRule:
    """How one request type is handled under one jurisdiction.

    An empty checklist means the request needs no identity verification;
    ``offered=False`` keeps the entry (so stored history still folds) but the
    desk refuses new requests of that type, and ``note`` says what to offer instead.
    """

    respond_within: Period
    extension: Period | None = None
    max_extensions: int = 0
    acknowledge_within: Period | None = None
    checklist: tuple[str, ...] = ()
    offered: bool = True
    note: str = ""


@dataclass(frozen=True, slots=True)
class JurisdictionRule:
    """The rules of one jurisdiction, with an entry for every request type."""

    jurisdiction: Jurisdiction
    title: str
    citation: str
    extension_notice_in_first_period: bool
    types: Mapping[RequestType, TypeRule]
    # Regulation 1182/71 Art. 3(4): a period ending on a non-working day runs on.
    ends_on_working_day: bool = False

    def for_type(self, request_type: RequestType) -> TypeRule:
        return self.types[request_type]

    @property
    def request_types(self) -> tuple[RequestType, ...]:
        """Request types a caller can make under this jurisdiction, in enum order."""
        return tuple(t for t in RequestType if self.types[t].offered)


# --- calendar arithmetic ---------------------------------------------------------


def add_months(start: date, months: int) -> date:
    """Same day *months* later, or that month's last day when it has no such day."""
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def is_business_day(day: date, j: Jurisdiction, cal: Calendar = DEFAULT_CALENDAR) -> bool:
    """Monday to Friday and not a public holiday of *j*'s place on *cal*."""
    return cal.is_business_day(day, j)


def add_business_days(
    start: date, count: int, j: Jurisdiction, cal: Calendar = DEFAULT_CALENDAR
) -> date:
    """The *count*-th business day after *start*; *start* itself never counts."""
    day = start
    while count > 0:
        day += timedelta(1)
        if cal.is_business_day(day, j):
            count -= 1
    return day


def next_working_day(day: date, j: Jurisdiction, cal: Calendar = DEFAULT_CALENDAR) -> date:
    """*day* itself when it is a working day, else the first working day after it."""
    while not cal.is_business_day(day, j):
        day += timedelta(1)
    return day


# --- the tables ------------------------------------------------------------------

_NAME = "Full name matches the account"
_ADDRESS = "Postal address on file confirmed"
_DOB_OR_CUSTOMER = "Date of birth or customer number confirmed"
_EMAIL = "Email address on file confirmed (the copy of the data goes there)"
_SELF = "Caller confirms the request is for their own data"
_CORRECTION = "Noted what is wrong and what it should say"
_THIRD_POINT = "A third detail confirmed: last bill amount or last payment date"

_GDPR_MONTH = Period(months=1)
_GDPR_EXTENSION = Period(months=2)


def _gdpr(checklist: tuple[str, ...], *, offered: bool = True, note: str = "") -> TypeRule:
    return TypeRule(
        respond_within=_GDPR_MONTH,
        extension=_GDPR_EXTENSION,
        max_extensions=1,
        checklist=checklist,
        offered=offered,
        note=note,
    )


GDPR = JurisdictionRule(
    jurisdiction=Jurisdiction.GDPR,
    title="EU GDPR",
    citation="GDPR Art. 12(3); Regulation 1182/71 Art. 3",
    extension_notice_in_first_period=True,
    ends_on_working_day=True,
    types=MappingProxyType(
        {
            RequestType.ACCESS: _gdpr((_NAME, _ADDRESS, _DOB_OR_CUSTOMER, _SELF)),
            RequestType.ERASURE: _gdpr((_NAME, _ADDRESS, _DOB_OR_CUSTOMER, _SELF)),
            RequestType.RECTIFICATION: _gdpr((_NAME, _ADDRESS, _DOB_OR_CUSTOMER, _CORRECTION)),
            RequestType.PORTABILITY: _gdpr((_NAME, _ADDRESS, _DOB_OR_CUSTOMER, _EMAIL)),
            RequestType.RESTRICTION: _gdpr((_NAME, _ADDRESS, _DOB_OR_CUSTOMER)),
            RequestType.OBJECTION: _gdpr((_NAME, _ADDRESS)),
            RequestType.OPT_OUT_SALE: _gdpr(
                (_NAME, _ADDRESS),
                offered=False,
                note="Under the GDPR, record an objection or withdraw the consent instead",
            ),
            RequestType.LIMIT_SENSITIVE: _gdpr(
                (_NAME, _ADDRESS),
                offered=False,
                note="Under the GDPR, record a restriction or objection instead",
            ),
        }
    ),
)

_CCPA_DAYS = Period(days=45)
_TEN_BUSINESS_DAYS = Period(business_days=10)


def _ccpa(checklist: tuple[str, ...], *, offered: bool = True, note: str = "") -> TypeRule:
    return TypeRule(
        respond_within=_CCPA_DAYS,
        extension=_CCPA_DAYS,
        max_extensions=1,
        acknowledge_within=_TEN_BUSINESS_DAYS,
        checklist=checklist,
        offered=offered,
        note=note,
    )


_CCPA_OPT_OUT = TypeRule(respond_within=Period(business_days=15))

CCPA = JurisdictionRule(
    jurisdiction=Jurisdiction.CCPA,
    title="California CCPA/CPRA",
    citation="Cal. Civ. Code §1798.130(a)(2); CCPA Regs §§7021, 7026, 7027",
    extension_notice_in_first_period=True,
    types=MappingProxyType(
        {
            RequestType.ACCESS: _ccpa((_NAME, _ADDRESS, _DOB_OR_CUSTOMER, _THIRD_POINT)),
            RequestType.ERASURE: _ccpa((_NAME, _ADDRESS, _DOB_OR_CUSTOMER)),
            RequestType.RECTIFICATION: _ccpa((_NAME, _ADDRESS, _DOB_OR_CUSTOMER, _CORRECTION)),
            RequestType.PORTABILITY: _ccpa(
                (_NAME, _ADDRESS, _DOB_OR_CUSTOMER, _THIRD_POINT, _EMAIL)
            ),
            RequestType.RESTRICTION: _ccpa(
                (_NAME, _ADDRESS, _DOB_OR_CUSTOMER),
                offered=False,
                note="The CCPA has no right to restriction; offer limit-use-of-sensitive-data",
            ),
            RequestType.OBJECTION: _ccpa(
                (_NAME, _ADDRESS, _DOB_OR_CUSTOMER),
                offered=False,
                note="The CCPA has no right to object; offer opt-out of sale/sharing",
            ),
            RequestType.OPT_OUT_SALE: _CCPA_OPT_OUT,
            RequestType.LIMIT_SENSITIVE: _CCPA_OPT_OUT,
        }
    ),
)

RULES: Mapping[Jurisdiction, JurisdictionRule] = MappingProxyType(
    {Jurisdiction.GDPR: GDPR, Jurisdiction.CCPA: CCPA}
)


# --- questions the desk asks -----------------------------------------------------


def rule_for(j: Jurisdiction) -> JurisdictionRule:
    return RULES[j]


def check_offered(j: Jurisdiction, request_type: RequestType) -> None:
    """Raise DomainError when *request_type* is not a request under *j*."""
    rule = rule_for(j)
    type_rule = rule.for_type(request_type)
    if not type_rule.offered:
        raise DomainError(f"{request_type} is not a request under {rule.title}: {type_rule.note}")


def max_extensions(j: Jurisdiction, request_type: RequestType) -> int:
    return rule_for(j).for_type(request_type).max_extensions


def due_date(
    j: Jurisdiction,
    request_type: RequestType,
    received: date,
    *,
    extensions: int = 0,
    cal: Calendar = DEFAULT_CALENDAR,
) -> date:
    """When the answer is due for a request received on *received*.

    GDPR extensions run from receipt (one month plus two further months: 31 Jan
    is due 30 Apr when extended), and a GDPR period ending on a weekend or public
    holiday ends on the next working day; CCPA extensions add 45 days to the 45.
    """
    type_rule = rule_for(j).for_type(request_type)
    if not 0 <= extensions <= type_rule.max_extensions:
        raise DomainError(
            f"{request_type} under {rule_for(j).title} allows at most "
            f"{type_rule.max_extensions} extension(s)"
        )
    period = type_rule.respond_within
    if extensions and type_rule.extension is not None:
        period = period.plus(type_rule.extension.times(extensions))
    due = period.after(received, j, cal)
    return next_working_day(due, j, cal) if rule_for(j).ends_on_working_day else due


def acknowledge_by(
    j: Jurisdiction,
    request_type: RequestType,
    received: date,
    cal: Calendar = DEFAULT_CALENDAR,
) -> date | None:
    """Last day to confirm receipt, or None where the law asks for no confirmation.

    CCPA Regs §7021: 10 business days (weekends and California holidays skipped)
    for requests to know, delete and correct; opt-out and limit requests are
    simply acted on within 15 business days (§§7026, 7027).
    """
    period = rule_for(j).for_type(request_type).acknowledge_within
    return period.after(received, j, cal) if period is not None else None


class Confirmation(enum.StrEnum):
    """Where the §7021 confirmation of receipt stands."""

    NOT_REQUIRED = "not-required"
    CONFIRMED = "confirmed"
    PENDING = "pending"
    OVERDUE = "overdue"


def confirmation_clock(
    request: PrivacyRequest, today: date, cal: Calendar = DEFAULT_CALENDAR
) -> Confirmation:
    """The confirmation-of-receipt clock of *request* on the controller's *today*.

    Confirmed once a confirmation is recorded; pending until its last day;
    overdue after it while unconfirmed. A request closed unconfirmed stops the
    clock: overdue if it closed after the last day (the breach stays visible),
    else not required (the answer itself reached the consumer in time).
    """
    if request.acknowledge_by is None:
        return Confirmation.NOT_REQUIRED
    if request.confirmed_at is not None:
        return Confirmation.CONFIRMED
    if not request.is_open:
        closed = cal.day_of(request.updated_at)
        late = closed > request.acknowledge_by
        return Confirmation.OVERDUE if late else Confirmation.NOT_REQUIRED
    if today > request.acknowledge_by:
        return Confirmation.OVERDUE
    return Confirmation.PENDING


def verification_checklist(j: Jurisdiction, request_type: RequestType) -> tuple[str, ...]:
    """What the agent confirms before the request is accepted, in reading order."""
    return rule_for(j).for_type(request_type).checklist


_HOLDER = "Caller confirms this phone number is theirs"
_NAME_NOTED = "Caller's full name noted for the reply"
_EMAIL_NOTED = "Email address for the copy of the data noted"
# Points that need no customer account to hold them against.
_WITHOUT_ACCOUNT = {_SELF: _SELF, _CORRECTION: _CORRECTION, _EMAIL: _EMAIL_NOTED}


def unknown_caller_checklist(j: Jurisdiction, request_type: RequestType) -> tuple[str, ...]:
    """The checklist for a caller not in our records: there is no account whose name,
    address or customer number could match, so the agent confirms what can be
    confirmed (the number is the caller's, the request is their own) and notes what
    the reply needs. Empty where the request needs no verification at all."""
    items = verification_checklist(j, request_type)
    if not items:
        return ()
    extra = tuple(_WITHOUT_ACCOUNT[i] for i in items if i in _WITHOUT_ACCOUNT)
    return (_HOLDER, _NAME_NOTED, *(e for e in extra if e not in (_HOLDER, _NAME_NOTED)))


def needs_verification(j: Jurisdiction, request_type: RequestType) -> bool:
    return bool(verification_checklist(j, request_type))


def extension_deadline(
    j: Jurisdiction, request: PrivacyRequest, cal: Calendar = DEFAULT_CALENDAR
) -> date | None:
    """Last day an extension can still be noted (None: any time while open)."""
    if not rule_for(j).extension_notice_in_first_period:
        return None
    return due_date(j, request.type, request.received, cal=cal)


def can_extend(
    j: Jurisdiction, request: PrivacyRequest, today: date, cal: Calendar = DEFAULT_CALENDAR
) -> bool:
    """Whether an extension may be noted on the controller's *today* for this request."""
    # A request records only whether it was extended; every table allows one.
    if request.status in CLOSED_STATUSES or request.extended:
        return False
    if max_extensions(j, request.type) < 1:
        return False
    deadline = extension_deadline(j, request, cal)
    return deadline is None or today <= deadline


# --- the rules in words, with their sources (request detail, CLI) -------------------

_ACT_WITHIN = {
    RequestType.OPT_OUT_SALE: "CCPA Regs §7026(f)",
    RequestType.LIMIT_SENSITIVE: "CCPA Regs §7027(g)",
}


def _period_words(period: Period, j: Jurisdiction, cal: Calendar) -> str:
    if period.months:
        return "one month" if period.months == 1 else f"{period.months} months"
    if period.business_days:
        place = "California" if j == Jurisdiction.CCPA else cal.place(j)[0]
        return f"{period.business_days} business days (weekends and {place} holidays skipped)"
    return f"{period.days} calendar days"


def explain(request: PrivacyRequest, cal: Calendar = DEFAULT_CALENDAR) -> tuple[str, ...]:
    """The statutory rules applied to *request*, one sentence each with its legal source."""
    j, t = request.jurisdiction, request.type
    rule = rule_for(j)
    type_rule = rule.for_type(t)
    received = request.received.isoformat()
    within = _period_words(type_rule.respond_within, j, cal)
    if t in _ACT_WITHIN:
        lines = [
            f"Act on it by {request.due.isoformat()}: as soon as feasible and at the latest "
            f"{within} after receipt on {received} ({_ACT_WITHIN[t]}); no extension, "
            "no identity verification."
        ]
    else:
        source = "GDPR Art. 12(3)" if j == Jurisdiction.GDPR else "Cal. Civ. Code §1798.130(a)(2)"
        lines = [f"Answer due {request.due.isoformat()}: {within} after receipt on {received}"]
        if type_rule.extension is not None:
            more = _period_words(type_rule.extension, j, cal)
            lines[0] += (
                f", {'extended' if request.extended else 'extendable once'} by {more}"
                f" (notice by {due_date(j, t, request.received, cal=cal).isoformat()})"
            )
        lines[0] += f" ({source})."
    if rule.ends_on_working_day:
        lines.append(
            "A period ending on a Saturday, Sunday or a public holiday in "
            f"{cal.place(j)[0]} ends on the next working day (Regulation 1182/71 Art. 3(4))."
        )
    if request.acknowledge_by is not None:
        ack = _period_words(type_rule.acknowledge_within or Period(), j, cal)
        state = (
            f"confirmed {request.confirmed_at.date().isoformat()} ({request.confirmed_how})"
            if request.confirmed_at is not None
            else "not confirmed yet"
        )
        lines.append(
            f"Confirm receipt by {request.acknowledge_by.isoformat()}: {ack} "
            f"(CCPA Regs §7021) — {state}."
        )
    lines.append(f"Days are counted in the controller's time zone ({cal.tz}).")
    return tuple(lines)
