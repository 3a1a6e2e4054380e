"""Builders shared by the ledger tests: a small fixed catalogue and record factories.

The tests use their own catalogue so they do not change when the shipped
purposes do.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from consentdesk.domain.admission import expected_validity
from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.model import (
    Channel,
    ConsentEvent,
    ConsentState,
    Jurisdiction,
    LawfulBasis,
    NewRequest,
    Purpose,
    RequestChange,
    RequestStatus,
    RequestType,
    Verification,
    VerificationResult,
)
from consentdesk.domain.references import new_reference
from consentdesk.domain.scripts import Script, parse_script, render
from consentdesk.stores.ledger import EmbeddedLedger

NUMBER = "+4915112345678"
OTHER = "+4915187654321"
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

CATALOGUE = Catalogue(
    (
        Purpose(
            id="marketing",
            title="Offers and news",
            description="We contact you about offers.",
            lawful_basis=LawfulBasis.CONSENT,
            channels=(Channel.PHONE, Channel.EMAIL),
            group="marketing",
            validity_days=365,
        ),
        Purpose(
            id="profiling",
            title="Personalised offers",
            description="We use your history to choose offers.",
            lawful_basis=LawfulBasis.CONSENT,
            channels=(Channel.ONLINE,),
            group="marketing",
        ),
        Purpose(
            id="call-recording",
            title="Call recording",
            description="We record calls for training.",
            lawful_basis=LawfulBasis.CONSENT,
            channels=(Channel.PHONE,),
            group="service",
        ),
    )
)


def _script(script_id: str, kind: str, text: str) -> Script:
    front = (
        f'---\nversion = "1"\nkind = "{kind}"\npurposes = ["*"]\neffective_from = 2024-01-01\n---\n'
    )
    return parse_script(front + text, script_id=script_id, language="en")


# The tests' own published scripts: admission holds every notice to one of them.
CONSENT_SCRIPT = _script(
    "consent-marketing",
    "consent",
    "{{company}} would like to contact you about {{purposes}}. You can withdraw at any time.",
)
WITHDRAWAL_SCRIPT = _script(
    "withdrawal-marketing", "withdrawal", "We will no longer contact you about {{purposes}}."
)
SCRIPTS = (CONSENT_SCRIPT, WITHDRAWAL_SCRIPT)
NOTICE = render(CONSENT_SCRIPT, {"company": "Example Energy", "purposes": "offers"}).notice()
WITHDRAWAL_NOTICE = render(WITHDRAWAL_SCRIPT, {"purposes": "offers"}).notice()
_FROM_CATALOGUE: Any = object()


class Clock:
    """A settable clock for the ledger (captures, expiry, the 30-day window)."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def make_ledger(path: Path, clock: Clock | None = None) -> EmbeddedLedger:
    return EmbeddedLedger(path, catalogue=CATALOGUE, scripts=SCRIPTS, clock=clock or Clock())


def consent(
    number: str = NUMBER,
    purpose: str = "marketing",
    channel: Channel = Channel.PHONE,
    state: ConsentState = ConsentState.GIVEN,
    *,
    at: datetime = T0,
    agent: str = "agent-7",
    corrects: uuid.UUID | None = None,
    reason: str | None = None,
    valid_until: datetime | None = _FROM_CATALOGUE,
) -> ConsentEvent:
    """A consent event as a desk records it (validity from the catalogue unless given)."""
    if valid_until is _FROM_CATALOGUE:
        known = {p.id: p for p in CATALOGUE}
        valid_until = expected_validity(known[purpose], state, at) if purpose in known else None
    return ConsentEvent(
        subject=number,
        purpose=purpose,
        channel=channel,
        state=state,
        jurisdiction=Jurisdiction.GDPR,
        lawful_basis=LawfulBasis.CONSENT,
        notice=WITHDRAWAL_NOTICE if state == ConsentState.WITHDRAWN else NOTICE,
        agent=agent,
        call_id="call-1",
        valid_until=valid_until,
        corrects=corrects,
        correction_reason=reason,
        at=at,
    )


def new_request(
    number: str = NUMBER,
    type: RequestType = RequestType.ACCESS,
    jurisdiction: Jurisdiction = Jurisdiction.GDPR,
    *,
    received: date = date(2025, 3, 3),
    at: datetime = T0,
    reference: str | None = None,
) -> NewRequest:
    return NewRequest(
        subject=number,
        type=type,
        jurisdiction=jurisdiction,
        reference=reference or new_reference(),
        agent="agent-7",
        received=received,
        at=at,
    )


def verified(request_id: uuid.UUID, *, at: datetime = T0) -> RequestChange:
    return RequestChange(
        request_id=request_id,
        agent="agent-7",
        status=RequestStatus.VERIFYING,
        verification=Verification(
            method="name, address and customer number",
            result=VerificationResult.PASSED,
            by="agent-7",
            at=at,
        ),
        at=at,
    )


def move(
    request_id: uuid.UUID,
    status: RequestStatus,
    *,
    at: datetime = T0,
    reason: str | None = None,
) -> RequestChange:
    return RequestChange(
        request_id=request_id, agent="agent-7", status=status, reason=reason, at=at
    )
