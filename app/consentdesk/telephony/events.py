"""Call events: what every softphone connector produces, whatever its protocol."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from consentdesk.core.model import utcnow


class CallPhase(enum.StrEnum):
    INCOMING = "incoming"
    ANSWERED = "answered"
    ENDED = "ended"


class CallSource(enum.StrEnum):
    BARESIP = "baresip"
    COMMAND = "command"
    URI = "uri"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One step of a call.

    ``number`` is E.164, or None for an anonymous/withheld caller or a number
    that did not parse (then ``raw_number`` keeps what the network sent, for
    display only — it is never logged).
    """

    phase: CallPhase
    call_id: str
    source: CallSource
    number: str | None
    raw_number: str = ""
    display_name: str = ""
    at: datetime = field(default_factory=utcnow)
