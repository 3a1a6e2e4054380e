"""Building consent and request records from what the agent entered.

The sidebar and the CLI both go through here, so every capture is checked the
same way before it reaches a backend.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, tzinfo

from consentdesk.domain import rules
from consentdesk.domain.admission import check_consent_basis, expected_validity
from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.model import (
    Channel,
    CollectionMethod,
    ConsentEvent,
    ConsentState,
    DomainError,
    Jurisdiction,
    NewRequest,
    RequestType,
    Verification,
    VerificationResult,
    require_utc,
    utcnow,
)
from consentdesk.domain.references import new_reference, normalize_reference
from consentdesk.domain.scripts import RenderedScript, ScriptKind, covers, placeholders

MAX_NOTE_CHARS = 2000
_E164 = re.compile(r"\+[1-9]\d{1,14}")
_KIND_FOR_STATE = {
    ConsentState.GIVEN: ScriptKind.CONSENT,
    ConsentState.REFUSED: ScriptKind.CONSENT,
    ConsentState.WITHDRAWN: ScriptKind.WITHDRAWAL,
}


def _subject(subject: str) -> str:
    if not _E164.fullmatch(subject):
        raise DomainError("the subject must be an E.164 number (normalise it with phone.normalize)")
    return subject


def _agent(agent: str) -> str:
    agent = agent.strip()
    if not agent:
        raise DomainError("agent is required")
    return agent


def _optional(text: str | None) -> str | None:
    text = text.strip() if text is not None else None
    return text or None


def _check_script_jurisdiction(rendered: RenderedScript, jurisdiction: Jurisdiction) -> None:
    script = rendered.script
    if script.jurisdiction is not None and script.jurisdiction != jurisdiction:
        raise DomainError(f"script {script.id} is for {script.jurisdiction}, not {jurisdiction}")


def consent_event(
    *,
    catalogue: Catalogue,
    purpose: str,
    channel: Channel,
    state: ConsentState,
    rendered: RenderedScript,
    agent: str,
    jurisdiction: Jurisdiction,
    call_id: str | None = None,
    method: CollectionMethod = CollectionMethod.VERBAL_CALL,
    subject: str,
    now: datetime | None = None,
    corrects: uuid.UUID | None = None,
    reason: str | None = None,
) -> ConsentEvent:
    """A consent, refusal or withdrawal after *rendered* was read, or a correction.

    The lawful basis comes from the purpose; a given consent lapses after the
    purpose's validity period. A correction (*corrects* + *reason*) may carry
    any recorded state or ``void`` and may cite the script of either kind.
    """
    p = catalogue.check(purpose, channel)
    check_consent_basis(p)
    if jurisdiction not in p.jurisdictions:
        raise DomainError(f"purpose {purpose!r} does not apply under {jurisdiction}")
    reason = _optional(reason)
    if corrects is None and reason is not None:
        raise DomainError("a reason is only recorded with a correction")
    if corrects is not None and reason is None:
        raise DomainError("a correction needs a reason")
    script = rendered.script
    if script.kind == ScriptKind.REQUEST:
        raise DomainError(f"script {script.id} is for privacy requests, not consent")
    expected = _KIND_FOR_STATE.get(state)
    if corrects is None:
        if expected is None:
            raise DomainError(f"state {state} can only be recorded as a correction")
        if script.kind != expected:
            raise DomainError(f"a {state} answer needs a {expected} script, not {script.id}")
    if not covers(script, purpose):
        raise DomainError(f"script {script.id} does not cover purpose {purpose!r}")
    _check_script_jurisdiction(rendered, jurisdiction)
    at = require_utc(now, "capture time") if now is not None else utcnow()
    valid_until = expected_validity(p, state, at)
    return ConsentEvent(
        subject=_subject(subject),
        purpose=p.id,
        channel=channel,
        state=state,
        jurisdiction=jurisdiction,
        lawful_basis=p.lawful_basis,
        notice=rendered.notice(),
        agent=_agent(agent),
        method=method,
        call_id=_optional(call_id),
        valid_until=valid_until,
        corrects=corrects,
        correction_reason=reason,
        at=at,
    )


def privacy_request(
    *,
    subject: str,
    type: RequestType,
    jurisdiction: Jurisdiction,
    agent: str,
    received: date | None = None,
    call_id: str | None = None,
    note: str | None = None,
    verification: Verification | None = None,
    rendered: RenderedScript | None = None,
    now: datetime | None = None,
    reference: str | None = None,
    tz: tzinfo | None = None,
) -> NewRequest:
    """A new privacy request with a fresh reference, or *reference* when the
    script read to the caller already carried one (make it with new_reference()).

    *received* defaults to today's date in the controller's zone *tz*
    (``general.timezone``; the system's when None) and cannot lie in the future there.
    """
    rules.check_offered(jurisdiction, type)
    at = require_utc(now, "capture time") if now is not None else utcnow()
    today = at.astimezone(tz).date()
    received = received if received is not None else today
    if received > today:
        raise DomainError(
            f"the received date {received.isoformat()} is in the future "
            f"(today is {today.isoformat()} in the controller's time zone)"
        )
    note = _optional(note)
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise DomainError(f"the note is over {MAX_NOTE_CHARS} characters")
    if (
        verification is not None
        and verification.result == VerificationResult.NOT_REQUIRED
        and rules.needs_verification(jurisdiction, type)
    ):
        raise DomainError(f"{type} under {jurisdiction} needs identity verification")
    reference = normalize_reference(reference) if reference is not None else new_reference()
    if rendered is not None:
        script = rendered.script
        if script.kind != ScriptKind.REQUEST or script.request_type != type:
            raise DomainError(f"script {script.id} is not a script for {type} requests")
        _check_script_jurisdiction(rendered, jurisdiction)
        if "reference" in placeholders(script) and reference not in rendered.text:
            raise DomainError("the script read to the caller carries a different reference")
    return NewRequest(
        subject=_subject(subject),
        type=type,
        jurisdiction=jurisdiction,
        reference=reference,
        agent=_agent(agent),
        received=received,
        call_id=_optional(call_id),
        note=note,
        verification=verification,
        notice=rendered.notice() if rendered is not None else None,
        at=at,
    )
