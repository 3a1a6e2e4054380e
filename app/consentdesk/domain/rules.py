"""Statutory rules for privacy requests, as data: one table per jurisdiction.

GDPR Art. 12(3): answer within one month of receipt, extendable by two further
months when the extension is noted within the first month. CCPA/CPRA
(Cal. Civ. Code §1798.130, CCPA Regs §§7021, 7026, 7027): answer within 45
calendar days, extendable once by 45 with notice inside the first 45 days;
confirm receipt within 10 business days; act on opt-out of sale/sharing and
limit-use-of-sensitive requests within 15 business days, without identity
verification.

Business days are Monday to Friday. There is no holiday calendar: a period
counted in business days does not skip public holidays.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from types import MappingProxyType

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

    def after(self, start: date) -> date:
        """The day the period ends when it starts running on *start*."""
        return add_business_days(
            add_months(start, self.months) + timedelta(self.days), self.business_days
        )

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


def is_business_day(day: date) -> bool:
    """Monday to Friday (no holiday calendar)."""
    return day.weekday() < 5


def add_business_days(start: date, count: int) -> date:
    """The *count*-th business day (Mon–Fri) after *start*; *start* itself never counts."""
    day = start
    while count > 0:
        day += timedelta(1)
        if is_business_day(day):
            count -= 1
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
    citation="GDPR Art. 12(3)",
    extension_notice_in_first_period=True,
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
    citation="Cal. Civ. Code §1798.130; CCPA Regs §§7021, 7026, 7027",
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
    j: Jurisdiction, request_type: RequestType, received: date, *, extensions: int = 0
) -> date:
    """When the answer is due for a request received on *received*.

    GDPR extensions run from receipt (one month plus two further months: 31 Jan
    is due 30 Apr when extended); CCPA extensions add 45 days to the 45.
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
    return period.after(received)


def acknowledge_by(j: Jurisdiction, request_type: RequestType, received: date) -> date | None:
    """Last day to confirm receipt, or None where the law asks for no confirmation.

    CCPA: 10 business days (Mon–Fri) for requests to know, delete and correct;
    opt-out and limit requests are simply acted on within 15 business days.
    """
    period = rule_for(j).for_type(request_type).acknowledge_within
    return period.after(received) if period is not None else None


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


def extension_deadline(j: Jurisdiction, request: PrivacyRequest) -> date | None:
    """Last day an extension can still be noted (None: any time while open)."""
    if not rule_for(j).extension_notice_in_first_period:
        return None
    return due_date(j, request.type, request.received)


def can_extend(j: Jurisdiction, request: PrivacyRequest, today: date) -> bool:
    """Whether an extension may be noted on *today* for this open request."""
    # A request records only whether it was extended; every table allows one.
    if request.status in CLOSED_STATUSES or request.extended:
        return False
    if max_extensions(j, request.type) < 1:
        return False
    deadline = extension_deadline(j, request)
    return deadline is None or today <= deadline
