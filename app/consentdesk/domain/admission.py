"""Admission: what a record must satisfy before any ledger takes it.

The desk's ledger, its outbox and the team server all call these, so a record
the desk accepted offline is not refused when it finally syncs, and a record
one ledger refuses no other ledger takes. Everything a record claims about the
law (its lawful basis, how long it is valid, what was read to the caller) is
checked against the catalogue and the published scripts, never taken from the
client.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from consentdesk.domain import phone, rules
from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.model import (
    ConsentEvent,
    ConsentState,
    DomainError,
    LawfulBasis,
    NewRequest,
    Notice,
    Purpose,
    require_utc,
)
from consentdesk.domain.references import normalize_reference
from consentdesk.domain.scripts import (
    Script,
    ScriptKind,
    covers,
    placeholders,
    render,
    template_pattern,
)

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")

CLOCK_SKEW = timedelta(minutes=5)
"""How far a record's time may lie ahead of the ledger's clock (desk clocks drift)."""

MAX_AGE = timedelta(days=3653)
"""How old a record may be when it reaches a ledger (ten years: older is a wrong clock)."""

_KIND_FOR_STATE = {
    ConsentState.GIVEN: ScriptKind.CONSENT,
    ConsentState.REFUSED: ScriptKind.CONSENT,
    ConsentState.WITHDRAWN: ScriptKind.WITHDRAWAL,
}


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


def check_time(at: datetime, now: datetime) -> None:
    """A record's time: not ahead of *now* beyond the clock skew, not absurdly old."""
    at, now = require_utc(at, "event time"), require_utc(now, "current time")
    if at > now + CLOCK_SKEW:
        raise DomainError(
            f"the event time {at:%Y-%m-%d %H:%M} UTC lies in the future "
            f"(more than {int(CLOCK_SKEW.total_seconds() // 60)} minutes ahead of the ledger)"
        )
    if at < now - MAX_AGE:
        raise DomainError(f"the event time {at:%Y-%m-%d} UTC is over ten years ago")


def check_notice(notice: Notice) -> None:
    actual = hashlib.sha256(notice.text.encode("utf-8")).hexdigest()
    if actual != notice.sha256:
        raise DomainError("the notice's sha256 is not the hash of its text")


def published_script(notice: Notice, scripts: Iterable[Script]) -> Script:
    """The published script a notice names (id, version and language), or DomainError."""
    for s in scripts:
        if (s.id, s.version, s.language) == (notice.script_id, notice.version, notice.language):
            return s
    raise DomainError(
        f"script {notice.script_id} version {notice.version} ({notice.language}) is not published"
    )


@functools.lru_cache(maxsize=4096)
def _rendered_text(script: Script, params: tuple[tuple[str, str], ...]) -> str:
    return render(script, dict(params)).text


def check_rendering(notice: Notice, script: Script, *, legacy_ok: bool = False) -> None:
    """The notice's text is exactly *script* rendered with the notice's own values.

    A notice recorded before notices carried their values (``params`` None) is
    only taken where *legacy_ok* (a correction citing an old record's notice),
    and then its text must still fit the published wording.
    """
    check_notice(notice)
    label = f"script {script.id} version {script.version} ({script.language})"
    if notice.params is None:
        if not legacy_ok:
            raise DomainError(f"the notice does not record the values {label} was rendered with")
        if not template_pattern(script).fullmatch(notice.text):
            raise DomainError(f"the notice text is not the published wording of {label}")
        return
    names = [name for name, _ in notice.params]
    if sorted(set(names)) != names or set(names) != placeholders(script):
        raise DomainError(f"the notice's values do not match the placeholders of {label}")
    try:
        expected = _rendered_text(script, notice.params)
    except DomainError as exc:
        raise DomainError(f"the notice's values do not render {label}: {exc}") from None
    if expected != notice.text:
        raise DomainError(f"the notice text is not {label} rendered with the recorded values")


def check_consent_basis(purpose: Purpose) -> None:
    """Only a purpose whose lawful basis is consent can be consented to."""
    if purpose.lawful_basis != LawfulBasis.CONSENT:
        raise DomainError(
            f"purpose {purpose.id!r} rests on {purpose.lawful_basis}, not consent: "
            "it is information for the caller and cannot be consented to or refused"
        )


def expected_validity(purpose: Purpose, state: ConsentState, at: datetime) -> datetime | None:
    """When a record lapses: a given consent after the purpose's validity period."""
    if state == ConsentState.GIVEN and purpose.validity_days is not None:
        return at + timedelta(days=purpose.validity_days)
    return None


def _check_consent_script(event: ConsentEvent, script: Script) -> None:
    expected = _KIND_FOR_STATE.get(event.state)
    if event.corrects is None and expected is not None and script.kind != expected:
        raise DomainError(f"a {event.state} answer needs a {expected} script, not {script.id}")
    if script.kind == ScriptKind.REQUEST:
        raise DomainError(f"script {script.id} is for privacy requests, not consent")
    if not covers(script, event.purpose):
        raise DomainError(f"script {script.id} does not cover purpose {event.purpose!r}")
    if script.jurisdiction is not None and script.jurisdiction != event.jurisdiction:
        raise DomainError(
            f"script {script.id} is for {script.jurisdiction}, not {event.jurisdiction}"
        )


def check_consent(
    event: ConsentEvent, catalogue: Catalogue, scripts: Iterable[Script], now: datetime
) -> None:
    """What a consent event must satisfy to be recorded (beyond its own invariants).

    That a correction names a recorded event of the same subject needs the
    ledger: each ledger checks it in its write transaction.
    """
    check_subject(event.subject)
    check_time(event.at, now)
    purpose = catalogue.check(event.purpose, event.channel)
    if event.jurisdiction not in purpose.jurisdictions:
        raise DomainError(f"purpose {purpose.id!r} does not apply under {event.jurisdiction}")
    check_consent_basis(purpose)
    if event.lawful_basis != purpose.lawful_basis:
        raise DomainError(
            f"the lawful basis of {purpose.id!r} is {purpose.lawful_basis}, "
            f"not {event.lawful_basis}"
        )
    validity = expected_validity(purpose, event.state, event.at)
    if event.valid_until != validity:
        want = f"{validity:%Y-%m-%d %H:%M} UTC" if validity else "none"
        raise DomainError(
            f"valid_until must come from the catalogue: {want} for this {event.state} record"
        )
    script = published_script(event.notice, scripts)
    _check_consent_script(event, script)
    check_rendering(event.notice, script, legacy_ok=event.corrects is not None)


def check_new_request(request: NewRequest, scripts: Iterable[Script] | None, now: datetime) -> None:
    """What a new privacy request must satisfy; *scripts* None: not known here
    (a desk that never reached the server), so the notice is left to the ledger."""
    check_subject(request.subject)
    if not request.agent.strip():
        raise DomainError("agent is required")
    if normalize_reference(request.reference) != request.reference:
        raise DomainError(f"reference {request.reference} is not in its canonical form")
    rules.check_offered(request.jurisdiction, request.type)
    check_time(request.at, now)
    if request.notice is not None and scripts is not None:
        script = published_script(request.notice, scripts)
        if script.kind != ScriptKind.REQUEST or script.request_type != request.type:
            raise DomainError(f"script {script.id} is not a script for {request.type} requests")
        if script.jurisdiction is not None and script.jurisdiction != request.jurisdiction:
            raise DomainError(
                f"script {script.id} is for {script.jurisdiction}, not {request.jurisdiction}"
            )
        check_rendering(request.notice, script)
