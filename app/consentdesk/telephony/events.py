"""Call events: what every softphone connector produces, whatever its protocol."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from consentdesk.domain.model import DomainError, require_utc, utcnow


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


MAX_CALL_ID = 256
# SIP Call-IDs are printable ASCII without spaces (RFC 3261 "word"s joined by @).
_CALL_ID = re.compile(rf"[!-~]{{1,{MAX_CALL_ID}}}")


def is_valid_call_id(text: str) -> bool:
    """A call id we store and put on captures: 1-256 printable ASCII, no spaces."""
    return _CALL_ID.fullmatch(text) is not None


_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_MAX_TEXT = 128


def _text(d: Mapping[str, Any], key: str, limit: int) -> str:
    value = d.get(key, "")
    if not isinstance(value, str) or len(value) > limit or not value.isprintable():
        raise DomainError(f"call event {key} must be printable text of at most {limit} characters")
    return value


def call_event_from_json(d: Any) -> CallEvent:
    """Inverse of ``to_jsonable(event)``, strict: it reads what other processes send.

    An empty ``call_id`` is allowed (a hand-off that named no call); the
    receiving side assigns one.
    """
    if not isinstance(d, Mapping):
        raise DomainError("call event must be a JSON object")
    try:
        phase = CallPhase(str(d.get("phase")))
        source = CallSource(str(d.get("source")))
    except ValueError:
        raise DomainError("call event has an unknown phase or source") from None
    call_id = _text(d, "call_id", MAX_CALL_ID)
    if call_id and not is_valid_call_id(call_id):
        raise DomainError("call event call_id is not a valid call id")
    number = d.get("number")
    if number is not None and (not isinstance(number, str) or not _E164.fullmatch(number)):
        raise DomainError("call event number must be E.164 or null")
    at_text = d.get("at")
    try:
        if not isinstance(at_text, str):
            raise TypeError
        at = require_utc(datetime.fromisoformat(at_text), "call event time")
    except (TypeError, ValueError):
        raise DomainError("call event time must be an ISO 8601 timestamp with offset") from None
    return CallEvent(
        phase=phase,
        call_id=call_id,
        source=source,
        number=number,
        raw_number=_text(d, "raw_number", _MAX_TEXT),
        display_name=_text(d, "display_name", _MAX_TEXT),
        at=at,
    )
