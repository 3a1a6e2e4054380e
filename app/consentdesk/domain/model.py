"""The consent domain: purposes, consent events, privacy requests.

Consent events follow the ISO/IEC TS 27560 consent record as the W3C DPV guide
maps it. Every record is immutable; history, withdrawal and correction are new
records appended after the old ones.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any


class Channel(enum.StrEnum):
    PHONE = "phone"
    SMS = "sms"
    EMAIL = "email"
    POST = "post"
    ONLINE = "online"


class LawfulBasis(enum.StrEnum):
    """W3C DPV legal bases (dpv:Consent, dpv:Contract, ...)."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal-obligation"
    LEGITIMATE_INTEREST = "legitimate-interest"
    VITAL_INTEREST = "vital-interest"
    PUBLIC_TASK = "public-task"


class Jurisdiction(enum.StrEnum):
    GDPR = "gdpr"
    CCPA = "ccpa"


class ConsentState(enum.StrEnum):
    """Recorded states (given, refused, withdrawn, void) and derived ones.

    ``void`` is only valid on a correction: the corrected record is void and
    nothing replaces it. ``expired``, ``unknown`` and ``opted-out`` are never
    recorded; they are what the status fold derives from lapsed validity, no
    history, or a CCPA request that stops the use.
    """

    GIVEN = "given"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    VOID = "void"
    EXPIRED = "expired"
    UNKNOWN = "unknown"
    #: A CCPA opt-out of sale/sharing or limit-sensitive request stops this use.
    OPTED_OUT = "opted-out"


RECORDED_STATES = frozenset({ConsentState.GIVEN, ConsentState.REFUSED, ConsentState.WITHDRAWN})


class CollectionMethod(enum.StrEnum):
    VERBAL_CALL = "verbal-during-call"
    AGENT_ASSISTED = "agent-assisted"
    WRITTEN = "written"
    ONLINE_FORM = "online-form"


class RequestType(enum.StrEnum):
    ACCESS = "access"
    ERASURE = "erasure"
    RECTIFICATION = "rectification"
    PORTABILITY = "portability"
    RESTRICTION = "restriction"
    OBJECTION = "objection"
    OPT_OUT_SALE = "opt-out-sale-sharing"
    LIMIT_SENSITIVE = "limit-sensitive"


class RequestStatus(enum.StrEnum):
    RECEIVED = "received"
    VERIFYING = "verifying"
    IN_PROGRESS = "in-progress"
    EXTENDED = "extended"
    COMPLETED = "completed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


CLOSED_STATUSES = frozenset(
    {RequestStatus.COMPLETED, RequestStatus.REJECTED, RequestStatus.WITHDRAWN}
)


class VerificationResult(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_REQUIRED = "not-required"


class DomainError(ValueError):
    """Bad input to the domain: the message is safe to show to a user."""


OMIT_IF_NONE = {"omit_if_none": True}
"""Field metadata: a field added later, left out of the JSON form while None."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def require_utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise DomainError(f"{what} must be timezone-aware")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Purpose:
    """One processing purpose of the catalogue."""

    id: str
    title: str
    description: str
    lawful_basis: LawfulBasis
    channels: tuple[Channel, ...]
    group: str
    validity_days: int | None = None
    jurisdictions: tuple[Jurisdiction, ...] = (Jurisdiction.GDPR, Jurisdiction.CCPA)
    #: (language, title, description) for languages other than the default English.
    translations: tuple[tuple[str, str, str], ...] = ()
    #: CCPA: using this purpose sells or shares personal information (an
    #: opt-out of sale/sharing stops it), or uses sensitive personal information
    #: (a request to limit its use stops it).
    sale_or_sharing: bool = False
    sensitive: bool = False

    def title_in(self, language: str) -> str:
        return next((t for lang, t, _ in self.translations if lang == language), self.title)

    def description_in(self, language: str) -> str:
        return next((d for lang, _, d in self.translations if lang == language), self.description)


@dataclass(frozen=True, slots=True)
class Subject:
    """A data subject, identified by an E.164 number."""

    number: str
    customer_ref: str | None = None
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """The disclosure read before a capture: which script, and the exact text."""

    script_id: str
    version: str
    language: str
    sha256: str
    text: str
    #: The placeholder values the text was rendered with, as (name, value) pairs
    #: sorted by name, so admission can render the script again and compare.
    #: None on records made before notices carried them (left out of their JSON,
    #: so those records keep their canonical form and hash).
    params: tuple[tuple[str, str], ...] | None = field(default=None, metadata=OMIT_IF_NONE)


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """One consent record (ISO/IEC TS 27560 event), immutable once captured."""

    subject: str
    purpose: str
    channel: Channel
    state: ConsentState
    jurisdiction: Jurisdiction
    lawful_basis: LawfulBasis
    notice: Notice
    agent: str
    method: CollectionMethod = CollectionMethod.VERBAL_CALL
    call_id: str | None = None
    recording_ref: str | None = None
    valid_until: datetime | None = None
    corrects: uuid.UUID | None = None
    correction_reason: str | None = None
    at: datetime = field(default_factory=utcnow)
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", require_utc(self.at, "event time"))
        if self.valid_until is not None:
            object.__setattr__(self, "valid_until", require_utc(self.valid_until, "valid until"))
        if self.state == ConsentState.VOID:
            if self.corrects is None:
                raise DomainError("state 'void' is only valid on a correction")
        elif self.state not in RECORDED_STATES:
            raise DomainError(f"state {self.state!s} cannot be recorded")
        if (self.corrects is None) != (self.correction_reason is None):
            raise DomainError("a correction needs both the corrected event and a reason")
        if not self.agent.strip():
            raise DomainError("agent is required")


@dataclass(frozen=True, slots=True)
class Verification:
    """How the caller's identity was checked for a privacy request."""

    method: str
    result: VerificationResult
    by: str
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class NewRequest:
    """A privacy request as captured on a call; the reference is made by the desk
    so that a request captured offline keeps its reference when it syncs."""

    subject: str
    type: RequestType
    jurisdiction: Jurisdiction
    reference: str
    agent: str
    received: date
    call_id: str | None = None
    note: str | None = None
    verification: Verification | None = None
    notice: Notice | None = None
    at: datetime = field(default_factory=utcnow)
    request_id: uuid.UUID = field(default_factory=uuid.uuid4)
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True, slots=True)
class RequestChange:
    """A later step on a privacy request: status move and/or verification."""

    request_id: uuid.UUID
    agent: str
    status: RequestStatus | None = None
    reason: str | None = None
    verification: Verification | None = None
    at: datetime = field(default_factory=utcnow)
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    # How receipt was confirmed to the consumer (CCPA Regs §7021), e.g. "email".
    confirmation: str | None = field(default=None, metadata=OMIT_IF_NONE)


@dataclass(frozen=True, slots=True)
class PrivacyRequest:
    """Current state of a privacy request, folded from its events."""

    request_id: uuid.UUID
    reference: str
    subject: str
    type: RequestType
    jurisdiction: Jurisdiction
    received: date
    status: RequestStatus
    due: date
    acknowledge_by: date | None
    agent: str
    created_at: datetime
    updated_at: datetime
    call_id: str | None = None
    note: str | None = None
    status_reason: str | None = None
    extended: bool = False
    verifications: tuple[Verification, ...] = ()
    # When and how receipt was confirmed (CCPA Regs §7021), once it was.
    confirmed_at: datetime | None = field(default=None, metadata=OMIT_IF_NONE)
    confirmed_how: str | None = field(default=None, metadata=OMIT_IF_NONE)

    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED_STATUSES

    def days_left(self, today: date) -> int:
        return (self.due - today).days

    def is_overdue(self, today: date) -> bool:
        return self.is_open and today > self.due


@dataclass(frozen=True, slots=True)
class CellStatus:
    """Current consent for one purpose × channel."""

    purpose: str
    channel: Channel
    state: ConsentState
    event: ConsentEvent | None = None
    expires: datetime | None = None
    #: The CCPA request that decides the cell (state ``opted-out``).
    request: PrivacyRequest | None = None


@dataclass(frozen=True, slots=True)
class SubjectStatus:
    """What the sidebar shows for a caller: consent grid and open requests."""

    subject: Subject
    cells: tuple[CellStatus, ...]
    requests: tuple[PrivacyRequest, ...]

    def cell(self, purpose: str, channel: Channel) -> CellStatus:
        for c in self.cells:
            if c.purpose == purpose and c.channel == channel:
                return c
        raise KeyError((purpose, channel))


@dataclass(frozen=True, slots=True)
class Receipt:
    """Proof that the ledger holds a record durably."""

    event_id: uuid.UUID
    seq: int
    hash: str
    recorded_at: datetime
    duplicate: bool = False
    # True while the record waits in a desk's outbox (seq and hash not yet known).
    pending: bool = False


# --- canonical JSON form -------------------------------------------------------
# One encoding for the hash chain, the HTTP API, the outbox and exports.


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types for a domain object (dataclasses, enums, UUIDs, datetimes)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        # A field added later is left out while unset, so records written before
        # it keep their canonical form (and their chain hashes).
        return {
            f.name: to_jsonable(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if not (f.metadata.get("omit_if_none") and getattr(obj, f.name) is None)
        }
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, datetime):
        return require_utc(obj, "timestamp").isoformat()
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, tuple | list):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    return obj


def _field_from_json(tp: Any, value: Any) -> Any:
    return tp(value) if value is not None else None


def notice_from_json(d: Mapping[str, Any]) -> Notice:
    return Notice(
        script_id=str(d["script_id"]),
        version=str(d["version"]),
        language=str(d["language"]),
        sha256=str(d["sha256"]),
        text=str(d["text"]),
        params=_params_from_json(d.get("params")),
    )


def _params_from_json(raw: Any) -> tuple[tuple[str, str], ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(v, str) for v in p) for p in raw
    ):
        raise DomainError("notice params must be a list of [name, value] pairs of text")
    return tuple((name, value) for name, value in raw)


def verification_from_json(d: Mapping[str, Any]) -> Verification:
    return Verification(
        method=str(d["method"]),
        result=VerificationResult(d["result"]),
        by=str(d["by"]),
        at=datetime.fromisoformat(d["at"]),
    )


def event_from_json(d: Mapping[str, Any]) -> ConsentEvent:
    """Inverse of :func:`to_jsonable` for a consent event; raises DomainError."""
    try:
        return ConsentEvent(
            event_id=uuid.UUID(d["event_id"]),
            subject=str(d["subject"]),
            purpose=str(d["purpose"]),
            channel=Channel(d["channel"]),
            state=ConsentState(d["state"]),
            jurisdiction=Jurisdiction(d["jurisdiction"]),
            lawful_basis=LawfulBasis(d["lawful_basis"]),
            notice=notice_from_json(d["notice"]),
            agent=str(d["agent"]),
            method=CollectionMethod(d.get("method", CollectionMethod.VERBAL_CALL)),
            call_id=d.get("call_id"),
            recording_ref=d.get("recording_ref"),
            valid_until=_field_from_json(datetime.fromisoformat, d.get("valid_until")),
            corrects=_field_from_json(uuid.UUID, d.get("corrects")),
            correction_reason=d.get("correction_reason"),
            at=datetime.fromisoformat(d["at"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, DomainError):
            raise
        raise DomainError(f"malformed consent event: {exc}") from exc


def new_request_from_json(d: Mapping[str, Any]) -> NewRequest:
    try:
        ver = d.get("verification")
        notice = d.get("notice")
        return NewRequest(
            request_id=uuid.UUID(d["request_id"]),
            event_id=uuid.UUID(d["event_id"]),
            subject=str(d["subject"]),
            type=RequestType(d["type"]),
            jurisdiction=Jurisdiction(d["jurisdiction"]),
            reference=str(d["reference"]),
            agent=str(d["agent"]),
            received=date.fromisoformat(d["received"]),
            call_id=d.get("call_id"),
            note=d.get("note"),
            verification=verification_from_json(ver) if ver else None,
            notice=notice_from_json(notice) if notice else None,
            at=datetime.fromisoformat(d["at"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, DomainError):
            raise
        raise DomainError(f"malformed privacy request: {exc}") from exc


def request_change_from_json(d: Mapping[str, Any]) -> RequestChange:
    try:
        ver = d.get("verification")
        return RequestChange(
            request_id=uuid.UUID(d["request_id"]),
            event_id=uuid.UUID(d["event_id"]),
            agent=str(d["agent"]),
            status=_field_from_json(RequestStatus, d.get("status")),
            reason=d.get("reason"),
            verification=verification_from_json(ver) if ver else None,
            at=datetime.fromisoformat(d["at"]),
            confirmation=d.get("confirmation"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, DomainError):
            raise
        raise DomainError(f"malformed request change: {exc}") from exc


# Decoders for the read side of the wire (server responses, outbox copies).


def subject_from_json(d: Mapping[str, Any]) -> Subject:
    return Subject(
        number=str(d["number"]),
        customer_ref=d.get("customer_ref"),
        display_name=d.get("display_name"),
    )


def privacy_request_from_json(d: Mapping[str, Any]) -> PrivacyRequest:
    try:
        ack = d.get("acknowledge_by")
        return PrivacyRequest(
            request_id=uuid.UUID(d["request_id"]),
            reference=str(d["reference"]),
            subject=str(d["subject"]),
            type=RequestType(d["type"]),
            jurisdiction=Jurisdiction(d["jurisdiction"]),
            received=date.fromisoformat(d["received"]),
            status=RequestStatus(d["status"]),
            due=date.fromisoformat(d["due"]),
            acknowledge_by=date.fromisoformat(ack) if ack else None,
            agent=str(d["agent"]),
            created_at=datetime.fromisoformat(d["created_at"]),
            updated_at=datetime.fromisoformat(d["updated_at"]),
            call_id=d.get("call_id"),
            note=d.get("note"),
            status_reason=d.get("status_reason"),
            extended=bool(d.get("extended", False)),
            verifications=tuple(verification_from_json(v) for v in d.get("verifications", ())),
            confirmed_at=datetime.fromisoformat(d["confirmed_at"])
            if d.get("confirmed_at")
            else None,
            confirmed_how=d.get("confirmed_how"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, DomainError):
            raise
        raise DomainError(f"malformed privacy request state: {exc}") from exc


def subject_status_from_json(d: Mapping[str, Any]) -> SubjectStatus:
    try:
        cells = tuple(
            CellStatus(
                purpose=str(c["purpose"]),
                channel=Channel(c["channel"]),
                state=ConsentState(c["state"]),
                event=event_from_json(c["event"]) if c.get("event") else None,
                expires=_field_from_json(datetime.fromisoformat, c.get("expires")),
                request=privacy_request_from_json(c["request"]) if c.get("request") else None,
            )
            for c in d["cells"]
        )
        return SubjectStatus(
            subject=subject_from_json(d["subject"]),
            cells=cells,
            requests=tuple(privacy_request_from_json(r) for r in d["requests"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, DomainError):
            raise
        raise DomainError(f"malformed subject status: {exc}") from exc


def receipt_from_json(d: Mapping[str, Any]) -> Receipt:
    try:
        return Receipt(
            event_id=uuid.UUID(d["event_id"]),
            seq=int(d["seq"]),
            hash=str(d["hash"]),
            recorded_at=datetime.fromisoformat(d["recorded_at"]),
            duplicate=bool(d.get("duplicate", False)),
            pending=bool(d.get("pending", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DomainError(f"malformed receipt: {exc}") from exc
