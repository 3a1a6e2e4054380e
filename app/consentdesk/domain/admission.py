"""Admission: what a record must satisfy before any ledger takes it.

The desk's ledger, its outbox and the team server all call these, so a record
the desk accepted offline is not refused when it finally syncs.
"""

from __future__ import annotations

import functools
import hashlib
import re

from consentdesk.domain import phone, rules
from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.model import ConsentEvent, DomainError, NewRequest, Notice
from consentdesk.domain.references import normalize_reference

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def check_number(number: str) -> str:
    """Insist on an E.164 number; callers normalise input with ``phone.normalize`` first."""
    if not isinstance(number, str) or not _E164.fullmatch(number):
        raise DomainError("subject must be an E.164 number such as +4915112345678")
    return number


@functools.lru_cache(maxsize=8192)
def check_subject(number: str) -> str:
    """An E.164 number that is also a possible number for its country.

    Cached (only good numbers are): the server checks every lookup's number.
    """
    check_number(number)
    if phone.normalize(number) != number:
        raise DomainError("the subject must be an E.164 number in its canonical form")
    return number


def check_notice(notice: Notice) -> None:
    actual = hashlib.sha256(notice.text.encode("utf-8")).hexdigest()
    if actual != notice.sha256:
        raise DomainError("the notice's sha256 is not the hash of its text")


def check_consent(event: ConsentEvent, catalogue: Catalogue) -> None:
    """What a consent event must satisfy to be recorded (beyond its own invariants)."""
    check_subject(event.subject)
    purpose = catalogue.check(event.purpose, event.channel)
    if event.jurisdiction not in purpose.jurisdictions:
        raise DomainError(f"purpose {purpose.id!r} does not apply under {event.jurisdiction}")
    check_notice(event.notice)


def check_new_request(request: NewRequest) -> None:
    check_subject(request.subject)
    if not request.agent.strip():
        raise DomainError("agent is required")
    if normalize_reference(request.reference) != request.reference:
        raise DomainError(f"reference {request.reference} is not in its canonical form")
    rules.check_offered(request.jurisdiction, request.type)
    if request.notice is not None:
        check_notice(request.notice)
