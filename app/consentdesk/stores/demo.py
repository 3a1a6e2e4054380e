"""Demo customers: realistic consent histories and privacy requests to try the desk on.

Every record is built through :mod:`consentdesk.domain.capture` from the shipped
scripts, so each carries a real script hash. Ids are fixed (UUID5), so seeding
again adds nothing. Times are relative to the first seeding, which later runs
read back from the ledger: a re-run on another day still finds every record
identical, and the open requests simply age like real ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from consentdesk.domain import rules
from consentdesk.domain.backend import Backend, NotFound
from consentdesk.domain.capture import consent_event, privacy_request
from consentdesk.domain.model import (
    Channel,
    ConsentState,
    Jurisdiction,
    RequestChange,
    RequestStatus,
    RequestType,
    Subject,
    Verification,
    VerificationResult,
    utcnow,
)
from consentdesk.domain.phone import normalize
from consentdesk.domain.references import (
    ALPHABET,
    BODY_LENGTH,
    check_character,
    normalize_reference,
)
from consentdesk.domain.scripts import (
    RenderedScript,
    ScriptKind,
    render,
    script_context,
    select_script,
)

DEMO_CALLER = "+4915112345678"
DEMO_COMPANY = "Example Energy GmbH"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "demo.consentdesk.invalid")

AGENTS = {
    "a.meyer": "Andrea Meyer",
    "t.yilmaz": "Tarek Yilmaz",
    "j.hoffmann": "Julia Hoffmann",
    "m.rivera": "Marcus Rivera",
}

_S = ConsentState
_C = Channel


@dataclass(frozen=True, slots=True)
class _Consent:
    key: str
    days_ago: int
    purpose: str
    channel: Channel
    state: ConsentState
    agent: str
    corrects: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class _Step:
    days_ago: int
    agent: str
    status: RequestStatus | None = None
    reason: str | None = None
    verified_by: str | None = None  # identity checked on the phone by this agent


@dataclass(frozen=True, slots=True)
class _Request:
    key: str
    type: RequestType
    agent: str
    received_days_ago: int | None = None
    due_within_days: int | None = None  # pick the receipt day so it falls due this soon
    note: str | None = None
    steps: tuple[_Step, ...] = ()


@dataclass(frozen=True, slots=True)
class _Customer:
    key: str
    number: str
    name: str
    customer_ref: str
    language: str
    jurisdiction: Jurisdiction
    consents: tuple[_Consent, ...] = ()
    requests: tuple[_Request, ...] = ()


_PHONE_CHECK = "security questions: date of birth and meter number"

CUSTOMERS: tuple[_Customer, ...] = (
    _Customer(
        "anna",
        "+49 151 12345678",
        "Anna Schmidt",
        "K-100234",
        "de",
        Jurisdiction.GDPR,
        consents=(
            # The anchor: the oldest record of the richest customer comes first.
            _Consent("anna-1", 760, "personalised-offers", _C.EMAIL, _S.GIVEN, "a.meyer"),
            _Consent("anna-2", 420, "marketing-offers", _C.PHONE, _S.GIVEN, "a.meyer"),
            _Consent("anna-3", 420, "marketing-offers", _C.EMAIL, _S.GIVEN, "a.meyer"),
            _Consent("anna-4", 420, "marketing-offers", _C.POST, _S.REFUSED, "a.meyer"),
            _Consent("anna-5", 300, "customer-survey", _C.SMS, _S.GIVEN, "t.yilmaz"),
            _Consent("anna-6", 150, "marketing-offers", _C.EMAIL, _S.WITHDRAWN, "j.hoffmann"),
            _Consent("anna-7", 60, "call-recording", _C.PHONE, _S.GIVEN, "t.yilmaz"),
            _Consent("anna-8", 21, "partner-offers", _C.PHONE, _S.GIVEN, "j.hoffmann"),
            _Consent(
                "anna-9",
                19,
                "partner-offers",
                _C.PHONE,
                _S.REFUSED,
                "a.meyer",
                corrects="anna-8",
                reason="Customer said no to partner offers; the agent pressed the wrong answer",
            ),
        ),
        requests=(
            _Request(
                "anna-access",
                RequestType.ACCESS,
                "t.yilmaz",
                due_within_days=2,
                note="Wants a copy by email",
                steps=(_Step(1, "t.yilmaz", RequestStatus.IN_PROGRESS, verified_by="t.yilmaz"),),
            ),
        ),
    ),
    _Customer(
        "jonas",
        "+49 170 2345678",
        "Jonas Weber",
        "K-100871",
        "de",
        Jurisdiction.GDPR,
        consents=(
            _Consent("jonas-1", 200, "marketing-offers", _C.PHONE, _S.REFUSED, "a.meyer"),
            _Consent("jonas-2", 200, "customer-survey", _C.PHONE, _S.GIVEN, "a.meyer"),
        ),
        requests=(
            _Request(
                "jonas-erasure",
                RequestType.ERASURE,
                "j.hoffmann",
                received_days_ago=40,
                note="Moving abroad, contract ended",
                steps=(_Step(39, "j.hoffmann", RequestStatus.VERIFYING),),
            ),
        ),
    ),
    _Customer(
        "maria",
        "+49 160 98765432",
        "Maria Papadopoulos",
        "K-101552",
        "de",
        Jurisdiction.GDPR,
        consents=(
            _Consent("maria-1", 95, "marketing-offers", _C.SMS, _S.GIVEN, "t.yilmaz"),
            _Consent("maria-2", 95, "call-recording", _C.PHONE, _S.REFUSED, "t.yilmaz"),
        ),
        requests=(
            _Request(
                "maria-rectification",
                RequestType.RECTIFICATION,
                "a.meyer",
                received_days_ago=20,
                note="Surname misspelt on bills",
                steps=(
                    _Step(20, "a.meyer", RequestStatus.IN_PROGRESS, verified_by="a.meyer"),
                    _Step(6, "j.hoffmann", RequestStatus.COMPLETED),
                ),
            ),
        ),
    ),
    _Customer(
        "lukas",
        "+49 30 12345678",
        "Lukas Becker",
        "K-102019",
        "en",
        Jurisdiction.GDPR,
        consents=(
            _Consent("lukas-1", 330, "marketing-offers", _C.EMAIL, _S.GIVEN, "j.hoffmann"),
            _Consent("lukas-2", 330, "personalised-offers", _C.ONLINE, _S.REFUSED, "j.hoffmann"),
            _Consent("lukas-3", 45, "customer-survey", _C.EMAIL, _S.REFUSED, "a.meyer"),
        ),
    ),
    _Customer(
        "sophie",
        "+49 171 5550199",
        "Sophie Wagner",
        "K-102260",
        "de",
        Jurisdiction.GDPR,
        consents=(
            _Consent("sophie-1", 380, "marketing-offers", _C.SMS, _S.GIVEN, "a.meyer"),
            _Consent("sophie-2", 210, "marketing-offers", _C.SMS, _S.WITHDRAWN, "t.yilmaz"),
            _Consent("sophie-3", 12, "marketing-offers", _C.SMS, _S.GIVEN, "j.hoffmann"),
        ),
    ),
    _Customer(
        "emily",
        "+1 415 555 0132",
        "Emily Carter",
        "US-20417",
        "en",
        Jurisdiction.CCPA,
        consents=(
            _Consent("emily-1", 240, "marketing-offers", _C.EMAIL, _S.GIVEN, "m.rivera"),
            _Consent("emily-2", 240, "sale-sharing", _C.ONLINE, _S.GIVEN, "m.rivera"),
            _Consent("emily-3", 4, "sale-sharing", _C.ONLINE, _S.WITHDRAWN, "m.rivera"),
        ),
        requests=(
            _Request(
                "emily-opt-out",
                RequestType.OPT_OUT_SALE,
                "m.rivera",
                received_days_ago=4,
                note="Also withdrew the sale/sharing consent on the same call",
            ),
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What a seeding run did; a repeat run adds nothing."""

    subjects: tuple[str, ...]
    consents_added: int
    consents_present: int
    requests_added: int
    requests_present: int

    @property
    def added(self) -> int:
        return self.consents_added + self.requests_added


def demo_id(key: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, key)


def demo_reference(key: str) -> str:
    """A fixed, valid reference for a demo request."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    body = "".join(ALPHABET[b % len(ALPHABET)] for b in digest[: BODY_LENGTH - 1])
    return normalize_reference(body + check_character(body))


def _anchor(backend: Backend, number: str, now: datetime) -> date:
    """The first seeding's (UTC) day, read back from the anchor record, else *now*'s."""
    first = CUSTOMERS[0].consents[0]
    wanted = demo_id(first.key)
    for event in backend.history(number):
        if event.event_id == wanted:
            return event.at.date() + timedelta(days=first.days_ago)
    return now.astimezone(UTC).date()


def _moment(anchor: date, days_ago: int, key: str, *, position: int = 0) -> datetime:
    """A fixed time between 11:00 and 17:00 UTC, *days_ago* days before *anchor*.

    Records with the same *key* on a day belong to one call, two minutes apart in
    *position* order. Mid-day UTC is the same calendar day in every time zone from
    UTC-11 to UTC+12, so a request's receipt day never lies in the local future.
    """
    minutes = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:2], "big") % 300
    day = anchor - timedelta(days=days_ago)
    return datetime.combine(day, time(11, 0), UTC) + timedelta(minutes=minutes + 2 * position)


def _rendered(
    backend: Backend,
    customer: _Customer,
    kind: ScriptKind,
    agent: str,
    on: date,
    *,
    request: RequestType | None = None,
    purpose: str | None = None,
    channel: Channel | None = None,
    reference: str | None = None,
    due: date | None = None,
) -> RenderedScript:
    script = select_script(
        backend.scripts(),
        kind=kind,
        language=customer.language,
        request_type=request,
        jurisdiction=customer.jurisdiction,
        on=on,
    )
    context = script_context(
        language=script.language,
        company=DEMO_COMPANY,
        agent_name=AGENTS[agent],
        customer_name=customer.name,
        purposes=(backend.catalogue().get(purpose),) if purpose else (),
        channels=(channel,) if channel else (),
        reference=reference,
        due=due,
    )
    return render(script, context)


def _received(spec: _Request, jurisdiction: Jurisdiction, today: date) -> date:
    if spec.received_days_ago is not None:
        return today - timedelta(days=spec.received_days_ago)
    if spec.due_within_days is None:
        raise ValueError(f"demo request {spec.key} needs a receipt day or a due window")
    # The latest receipt day whose due date is still at least the wanted days away.
    received = today
    while (rules.due_date(jurisdiction, spec.type, received) - today).days > spec.due_within_days:
        received -= timedelta(days=1)
    return received


def seed(backend: Backend, *, region: str = "DE", now: datetime | None = None) -> DemoSummary:
    """Record the demo customers in *backend*; idempotent."""
    now = now or utcnow()
    numbers = {c.key: normalize(c.number, region) for c in CUSTOMERS}
    anchor = _anchor(backend, numbers[CUSTOMERS[0].key], now)
    consents_added = consents_present = requests_added = requests_present = 0
    for customer in CUSTOMERS:
        number = numbers[customer.key]
        backend.save_subject(Subject(number, customer.customer_ref, customer.name))
        for position, spec in enumerate(customer.consents):
            at = _moment(anchor, spec.days_ago, customer.key, position=position)
            kind = ScriptKind.WITHDRAWAL if spec.state == _S.WITHDRAWN else ScriptKind.CONSENT
            rendered = _rendered(
                backend,
                customer,
                kind,
                spec.agent,
                at.date(),
                purpose=spec.purpose,
                channel=spec.channel,
            )
            event = consent_event(
                catalogue=backend.catalogue(),
                subject=number,
                purpose=spec.purpose,
                channel=spec.channel,
                state=spec.state,
                rendered=rendered,
                agent=spec.agent,
                jurisdiction=customer.jurisdiction,
                call_id=f"demo-{spec.key}",
                now=at,
                corrects=demo_id(spec.corrects) if spec.corrects else None,
                reason=spec.reason,
            )
            receipt = backend.capture(dataclasses.replace(event, event_id=demo_id(spec.key)))
            consents_present += receipt.duplicate
            consents_added += not receipt.duplicate
        for req in customer.requests:
            new = _seed_request(backend, customer, number, req, anchor)
            requests_added += new
            requests_present += not new
    return DemoSummary(
        subjects=tuple(numbers[c.key] for c in CUSTOMERS),
        consents_added=consents_added,
        consents_present=consents_present,
        requests_added=requests_added,
        requests_present=requests_present,
    )


def _seed_request(
    backend: Backend, customer: _Customer, number: str, spec: _Request, anchor: date
) -> bool:
    """Record one demo request and its later steps; True if it was not there yet."""
    j = customer.jurisdiction
    received = _received(spec, j, anchor)
    reference = demo_reference(spec.key)
    try:
        backend.find_request(reference)
        existed = True
    except NotFound:
        existed = False
    at = _moment(anchor, (anchor - received).days, spec.key)
    rendered = _rendered(
        backend,
        customer,
        ScriptKind.REQUEST,
        spec.agent,
        received,
        request=spec.type,
        reference=reference,
        due=rules.due_date(j, spec.type, received),
    )
    new = privacy_request(
        subject=number,
        type=spec.type,
        jurisdiction=j,
        agent=spec.agent,
        received=received,
        call_id=f"demo-{spec.key}",
        note=spec.note,
        rendered=rendered,
        now=at,
        reference=reference,
    )
    created = backend.create_request(
        dataclasses.replace(new, request_id=demo_id(spec.key), event_id=demo_id(f"{spec.key}/0"))
    )
    for index, step in enumerate(spec.steps, start=1):
        step_at = max(
            _moment(anchor, step.days_ago, f"{spec.key}/{index}"), at + timedelta(minutes=index)
        )
        verification = None
        if step.verified_by:
            verification = Verification(
                _PHONE_CHECK, VerificationResult.PASSED, step.verified_by, step_at
            )
        backend.update_request(
            RequestChange(
                request_id=created.request_id,
                agent=step.agent,
                status=step.status,
                reason=step.reason,
                verification=verification,
                at=step_at,
                event_id=demo_id(f"{spec.key}/{index}"),
            )
        )
    return not existed
