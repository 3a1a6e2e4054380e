"""Builders for the review tests: a ledger with a few agents, teams, calls and requests.

Uses the shipped catalogue and scripts so the proof check runs against the
real script registry.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from consentdesk.domain.catalogue import load_catalogue
from consentdesk.domain.model import (
    Channel,
    ConsentEvent,
    ConsentState,
    Jurisdiction,
    LawfulBasis,
    NewRequest,
    Notice,
    RequestChange,
    RequestStatus,
    RequestType,
    Verification,
    VerificationResult,
)
from consentdesk.domain.references import new_reference
from consentdesk.domain.scripts import (
    ScriptKind,
    load_scripts,
    render,
    script_context,
    select_script,
)
from consentdesk.stores.ledger import EmbeddedLedger

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # a Monday
ANNA_CUSTOMER = "+4915112345678"
BEN_CUSTOMER = "+4915187654321"
CARA_CUSTOMER = "+4930123456789"
TEAMS = {"anna": "north", "ben": "north", "cara": "south"}

CATALOGUE = load_catalogue()
SCRIPTS = load_scripts()


class Clock:
    """A settable clock shared by the ledger and the review source."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def notice(
    purposes: Sequence[str] = ("marketing-offers",),
    channels: Sequence[Channel] = (Channel.PHONE,),
    *,
    kind: ScriptKind = ScriptKind.CONSENT,
    language: str = "en",
) -> Notice:
    """The notice an agent saw: the shipped script rendered for this capture."""
    script = select_script(SCRIPTS, kind=kind, language=language, on=T0.date())
    context = script_context(
        language=language,
        company="Example Energy GmbH",
        agent_name="Anna",
        purposes=[CATALOGUE.get(p) for p in purposes],
        channels=list(channels),
    )
    return render(script, context).notice()


def consent(
    number: str = ANNA_CUSTOMER,
    purpose: str = "marketing-offers",
    channel: Channel = Channel.PHONE,
    state: ConsentState = ConsentState.GIVEN,
    *,
    at: datetime = T0,
    agent: str = "anna",
    call_id: str | None = "call-1",
    corrects: uuid.UUID | None = None,
    reason: str | None = None,
    jurisdiction: Jurisdiction = Jurisdiction.GDPR,
    the_notice: Notice | None = None,
) -> ConsentEvent:
    kind = ScriptKind.WITHDRAWAL if state == ConsentState.WITHDRAWN else ScriptKind.CONSENT
    return ConsentEvent(
        subject=number,
        purpose=purpose,
        channel=channel,
        state=state,
        jurisdiction=jurisdiction,
        lawful_basis=LawfulBasis.CONSENT,
        notice=the_notice or notice((purpose,), (channel,), kind=kind),
        agent=agent,
        call_id=call_id,
        valid_until=at + timedelta(days=730) if state == ConsentState.GIVEN else None,
        corrects=corrects,
        correction_reason=reason,
        at=at,
    )


def request(
    number: str = ANNA_CUSTOMER,
    type: RequestType = RequestType.ACCESS,
    *,
    at: datetime = T0,
    agent: str = "anna",
    call_id: str | None = "call-1",
) -> NewRequest:
    return NewRequest(
        subject=number,
        type=type,
        jurisdiction=Jurisdiction.GDPR,
        reference=new_reference(),
        agent=agent,
        received=at.date(),
        call_id=call_id,
        verification=Verification("name and address", VerificationResult.PASSED, agent, at),
        at=at,
    )


def move(
    request_id: uuid.UUID,
    status: RequestStatus,
    *,
    at: datetime,
    agent: str = "anna",
    reason: str | None = None,
) -> RequestChange:
    return RequestChange(request_id=request_id, agent=agent, status=status, reason=reason, at=at)


def open_ledger(path: Path, clock: Clock) -> EmbeddedLedger:
    return EmbeddedLedger(path, catalogue=CATALOGUE, scripts=SCRIPTS, clock=clock)


@dataclass
class Scenario:
    """What :func:`populate` recorded, for the assertions."""

    consents: list[ConsentEvent] = field(default_factory=list)
    requests: list[NewRequest] = field(default_factory=list)
    changes: list[RequestChange] = field(default_factory=list)

    @property
    def action_count(self) -> int:
        return len(self.consents) + len(self.requests) + len(self.changes)


def populate(ledger: EmbeddedLedger) -> Scenario:
    """Three agents in two teams over two days: consents, a refusal, a withdrawal,
    a correction, two privacy requests (one overdue) and a status move."""
    s = Scenario()

    def add(event: ConsentEvent) -> ConsentEvent:
        ledger.capture(event)
        s.consents.append(event)
        return event

    add(consent(at=T0, call_id="call-1"))
    add(consent(purpose="customer-survey", at=T0 + timedelta(minutes=2), call_id="call-1"))
    add(
        consent(
            BEN_CUSTOMER,
            state=ConsentState.REFUSED,
            at=T0 + timedelta(hours=1),
            agent="ben",
            call_id="call-2",
        )
    )
    wrong = add(
        consent(
            CARA_CUSTOMER,
            channel=Channel.EMAIL,
            at=T0 + timedelta(hours=2),
            agent="cara",
            call_id="call-3",
        )
    )
    add(
        consent(
            CARA_CUSTOMER,
            channel=Channel.EMAIL,
            state=ConsentState.REFUSED,
            at=T0 + timedelta(hours=2, minutes=1),
            agent="cara",
            call_id="call-3",
            corrects=wrong.event_id,
            reason="customer said no, agent clicked yes",
        )
    )
    add(
        consent(
            ANNA_CUSTOMER,
            state=ConsentState.WITHDRAWN,
            at=T0 + timedelta(days=1, hours=1),
            agent="ben",
            call_id="call-4",
        )
    )
    old = request(BEN_CUSTOMER, at=T0 - timedelta(days=40), agent="ben", call_id="call-0")
    fresh = request(ANNA_CUSTOMER, RequestType.ERASURE, at=T0 + timedelta(minutes=3))
    for r in (old, fresh):
        ledger.create_request(r)
        s.requests.append(r)
    change = move(fresh.request_id, RequestStatus.IN_PROGRESS, at=T0 + timedelta(days=1))
    ledger.update_request(change)
    s.changes.append(change)
    return s


def day(d: int) -> date:
    return (T0 + timedelta(days=d)).date()
