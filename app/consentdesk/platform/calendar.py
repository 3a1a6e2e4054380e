"""The controller's calendar from the site settings (``general.timezone``,
``general.region``), for the adapters that hand it to the kernel."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Protocol

from consentdesk.domain.calendars import Calendar
from consentdesk.domain.review import local_zone

TIMEZONE_ENV = "CONSENTDESK_TIMEZONE"
REGION_ENV = "CONSENTDESK_REGION"


class Settings(Protocol):
    def get(self, key: str) -> Any: ...


def controller_calendar(config: Settings) -> Calendar:
    """Local dates in ``general.timezone`` (else the system's zone); holidays of
    ``general.region`` under the GDPR."""
    return Calendar(
        tz=local_zone(str(config.get("general.timezone"))),
        country=str(config.get("general.region")).upper(),
    )


def calendar_env(calendar: Calendar) -> dict[str, str]:
    """Environment that gives server worker processes the same calendar."""
    return {TIMEZONE_ENV: str(getattr(calendar.tz, "key", "") or ""), REGION_ENV: calendar.country}


def calendar_from_env(env: Mapping[str, str] = os.environ) -> Calendar:
    """The calendar :func:`calendar_env` described (a worker's view)."""
    return Calendar(tz=local_zone(env.get(TIMEZONE_ENV, "")), country=env.get(REGION_ENV, "DE"))
