"""Which day it is, and which days are business days, for the controller.

Every "which day" decision on a privacy request (the received date, due dates,
the extension window, days left) is taken on the controller's calendar: the
local date in the controller's time zone (``general.timezone``), never the UTC
date or the machine's zone. Business days are Monday to Friday minus the public
holidays of the jurisdiction's place: under the GDPR those of the controller's
country (``general.region``), under the CCPA those of California (US-CA), as the
``holidays`` package lists them.

The kernel takes the zone and country as values (it never reads settings); the
adapters build a :class:`Calendar` from the site configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from functools import cache

import holidays

from consentdesk.domain.model import Jurisdiction, require_utc

# Where each jurisdiction's holidays come from: None means "the controller's country".
_PLACES: dict[Jurisdiction, tuple[str, str] | None] = {
    Jurisdiction.GDPR: None,
    Jurisdiction.CCPA: ("US", "CA"),
}


@cache
def _holidays(country: str, subdivision: str | None) -> holidays.HolidayBase | None:
    try:
        return holidays.country_holidays(country, subdiv=subdivision)
    except NotImplementedError:
        return None  # a country the package does not know: weekends only


@dataclass(frozen=True, slots=True)
class Calendar:
    """The controller's calendar: time zone and country (ISO 3166 alpha-2)."""

    tz: tzinfo = field(default=UTC)
    country: str = "DE"

    def day_of(self, at: datetime) -> date:
        """The controller's local date at the instant *at*."""
        return require_utc(at, "time").astimezone(self.tz).date()

    def place(self, jurisdiction: Jurisdiction) -> tuple[str, str | None]:
        """The country (and subdivision) whose public holidays count under *jurisdiction*."""
        fixed = _PLACES.get(jurisdiction)
        return fixed if fixed is not None else (self.country.upper(), None)

    def holiday(self, day: date, jurisdiction: Jurisdiction) -> str | None:
        """The name of the public holiday on *day*, or None."""
        found = _holidays(*self.place(jurisdiction))
        if found is None:
            return None
        name = found.get(day)
        return str(name) if name else None

    def is_business_day(self, day: date, jurisdiction: Jurisdiction) -> bool:
        """Monday to Friday and not a public holiday of the jurisdiction's place."""
        return day.weekday() < 5 and self.holiday(day, jurisdiction) is None


DEFAULT_CALENDAR = Calendar()
"""UTC and Germany: the calendar when an adapter is given none (tests, tools)."""
