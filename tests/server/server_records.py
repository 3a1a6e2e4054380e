"""Realistic records for the server tests: built the way the desk builds them.

Events go through ``core.capture`` with the shipped catalogue and a rendered
disclosure script, so what the tests send is what a real desk would send.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from consentdesk.domain import capture
from consentdesk.domain.catalogue import load_catalogue
from consentdesk.domain.model import (
    Channel,
    ConsentEvent,
    ConsentState,
    Jurisdiction,
    NewRequest,
    RequestChange,
    RequestStatus,
    RequestType,
    Verification,
    VerificationResult,
)
from consentdesk.domain.references import new_reference
from consentdesk.domain.scripts import (
    RenderedScript,
    ScriptKind,
    covers,
    load_scripts,
    render,
    script_context,
)

CATALOGUE = load_catalogue()
SCRIPTS = load_scripts()
NUMBER = "+4915112345678"
OTHER = "+4915187654321"
THIRD = "+4930123456789"
CONSENT_PURPOSE = "marketing-offers"


def rendered(
    kind: ScriptKind,
    *,
    purpose: str | None = None,
    channel: Channel = Channel.PHONE,
    request_type: RequestType | None = None,
    jurisdiction: Jurisdiction = Jurisdiction.GDPR,
    language: str = "en",
    reference: str = "RQ-2345-6789-ABCD",
) -> RenderedScript:
    candidates = [
        s
        for s in SCRIPTS
        if s.kind == kind
        and s.language == language
        and s.jurisdiction in (None, jurisdiction)
        and (purpose is None or covers(s, purpose))
        and (request_type is None or s.request_type == request_type)
    ]
    assert candidates, (kind, purpose, request_type, jurisdiction)
    script = candidates[0]
    purposes = [CATALOGUE.get(purpose)] if purpose else []
    context = script_context(
        language=language,
        company="Example Energy GmbH",
        agent_name="Alice",
        purposes=purposes,
        channels=[channel],
        reference=reference,
        due=date(2030, 1, 31),
    )
    return render(script, context)


def consent(
    number: str = NUMBER,
    *,
    agent: str,
    purpose: str = CONSENT_PURPOSE,
    channel: Channel = Channel.PHONE,
    state: ConsentState = ConsentState.GIVEN,
    call_id: str | None = "call-1",
    corrects: uuid.UUID | None = None,
    reason: str | None = None,
    now: datetime | None = None,
    jurisdiction: Jurisdiction = Jurisdiction.GDPR,
) -> ConsentEvent:
    kind = ScriptKind.WITHDRAWAL if state == ConsentState.WITHDRAWN else ScriptKind.CONSENT
    return capture.consent_event(
        catalogue=CATALOGUE,
        purpose=purpose,
        channel=channel,
        state=state,
        rendered=rendered(kind, purpose=purpose, channel=channel, jurisdiction=jurisdiction),
        agent=agent,
        jurisdiction=jurisdiction,
        call_id=call_id,
        subject=number,
        corrects=corrects,
        reason=reason,
        now=now,
    )


def new_request(
    number: str = NUMBER,
    *,
    agent: str,
    type: RequestType = RequestType.ACCESS,
    jurisdiction: Jurisdiction = Jurisdiction.GDPR,
    note: str | None = None,
) -> NewRequest:
    reference = new_reference()
    return capture.privacy_request(
        subject=number,
        type=type,
        jurisdiction=jurisdiction,
        agent=agent,
        call_id="call-1",
        note=note,
        rendered=rendered(
            ScriptKind.REQUEST, request_type=type, jurisdiction=jurisdiction, reference=reference
        ),
        reference=reference,
    )


def verify(request_id: uuid.UUID, *, agent: str) -> RequestChange:
    return RequestChange(
        request_id=request_id,
        agent=agent,
        status=RequestStatus.VERIFYING,
        verification=Verification(
            method="customer number and address", result=VerificationResult.PASSED, by=agent
        ),
    )


def move(
    request_id: uuid.UUID, status: RequestStatus, *, agent: str, reason: str | None = None
) -> RequestChange:
    return RequestChange(request_id=request_id, agent=agent, status=status, reason=reason)
