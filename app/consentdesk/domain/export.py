"""Exports for the privacy office: CSV of any review view, ISO/IEC TS 27560 consent
records; Kantara Consent Receipts v1.1 are in :mod:`consentdesk.domain.kantara`.

The two JSON forms come with JSON Schemas in ``resources/schemas/``, written from
the specifications, and :func:`validate` checks a document against them before it
is written. The 27560 records are plain JSON with the specification's field names;
values that name a concept use W3C DPV terms (``dpv:``/``pd:`` prefixes declared
in ``export.vocabularies``), but the document makes no DPV (RDF) conformance claim.
The Kantara ``consentType`` and the 27560 ``event_type`` of one capture come from
one table (:data:`CONSENT_TYPE`).
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import cache
from pathlib import Path
from typing import IO, Any, Protocol

from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.model import (
    Channel,
    CollectionMethod,
    ConsentEvent,
    ConsentState,
    DomainError,
    Jurisdiction,
    LawfulBasis,
    PrivacyRequest,
    require_utc,
    utcnow,
)
from consentdesk.domain.resources import resource_path
from consentdesk.domain.review import (
    ACTION_LABELS,
    ActionRow,
    Page,
    ReviewFilter,
    ReviewSource,
    format_local,
)
from consentdesk.domain.status import current_status

TS27560_SCHEMA = "ts27560-consent-record.schema.json"
KANTARA_SCHEMA = "kantara-consent-receipt-v1.1.schema.json"
TS27560_SCHEMA_ID = "https://consentdesk.example/schemas/ts27560-consent-record.schema.json"
TS27560_VERSION = "ISO/IEC TS 27560:2023"
KANTARA_VERSION = "KI-CR-v1.1.0"
VOCABULARIES = {"dpv": "https://w3id.org/dpv#", "pd": "https://w3id.org/dpv/pd#"}
RECORD_NS = uuid.UUID("0c4b8f7e-58a4-4a53-8f8e-2f0d8e7b9c31")


class Settings(Protocol):
    """The site settings an export reads (the platform's ``Config`` is one)."""

    def get(self, key: str) -> Any: ...


class ExportError(DomainError):
    """An export cannot be made as asked (the message says why)."""


# --- CSV -------------------------------------------------------------------------

CSV_COLUMNS = (
    "seq",
    "time_utc",
    "time_local",
    "action",
    "agent",
    "team",
    "number",
    "purpose",
    "channel",
    "request_type",
    "status",
    "reference",
    "jurisdiction",
    "script",
    "script_version",
    "call_id",
    "flagged",
    "event_id",
)
# A spreadsheet runs a cell starting with these as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def csv_safe(value: object) -> str:
    """A cell value a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def action_csv_row(row: ActionRow, *, tz: tzinfo) -> list[str]:
    values: list[object] = [
        row.seq,
        row.at.isoformat(),
        format_local(row.at, tz, seconds=True),
        ACTION_LABELS[row.kind],
        row.agent,
        row.team,
        row.subject,
        row.purpose,
        row.channel,
        row.request_type,
        row.status,
        row.reference,
        row.jurisdiction,
        row.script_id,
        row.script_version,
        row.call_id,
        "yes" if row.flagged else "no",
        row.event_id,
    ]
    return [csv_safe(v) for v in values]


def write_actions_csv(
    rows: Iterable[ActionRow], out: IO[str], *, tz: tzinfo, bom: bool = True
) -> int:
    """Write the rows as CSV (RFC 4180, header first); returns the row count.

    Numbers appear as the rows carry them: masked from a page of the review,
    in full from :meth:`ReviewSource.export_actions` (a logged export). A file
    starts with a UTF-8 byte order mark (*bom*): without it, Excel on Windows
    reads the file in the system code page and garbles every umlaut.
    """
    if bom:
        out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(action_csv_row(row, tz=tz))
        count += 1
    return count


def view_rows(
    source: ReviewSource, flt: ReviewFilter, *, full_numbers: bool
) -> Iterator[ActionRow]:
    """Every action of a filtered view, oldest first, a page at a time.

    With *full_numbers* the rows come from the store's logged export; without,
    they are the masked rows the table shows, and nothing is logged.
    """
    if full_numbers:
        yield from source.export_actions(flt)
        return
    page = Page(limit=1000, descending=False)
    while True:
        result = source.actions(flt, page)
        yield from result.rows
        if result.next is None:
            return
        page = Page(limit=1000, descending=False, after=result.next)


# --- who the controller is -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Controller:
    """The data controller, as exports name it (site config ``privacy.*``)."""

    name: str
    address: str
    email: str
    phone: str
    contact: str
    url: str
    policy_url: str
    storage_location: str
    retention: str
    withdrawal_method: str
    third_parties: tuple[str, ...] = ()
    country: str = "DE"  # ISO 3166-1 alpha-2 of the controller's establishment

    @classmethod
    def from_config(cls, config: Settings) -> Controller:
        def get(key: str) -> str:
            return str(config.get(key))

        return cls(
            name=get("privacy.controller_name") or get("general.company"),
            address=get("privacy.controller_address"),
            email=get("privacy.controller_email"),
            phone=get("privacy.controller_phone"),
            contact=get("privacy.contact"),
            url=get("privacy.controller_url"),
            policy_url=get("privacy.policy_url"),
            storage_location=get("privacy.storage_location"),
            retention=get("privacy.retention"),
            withdrawal_method=get("privacy.withdrawal_method"),
            third_parties=tuple(config.get("privacy.third_parties")),
            country=get("general.region").upper(),
        )

    def party_id(self) -> str:
        return f"urn:uuid:{uuid.uuid5(RECORD_NS, 'controller:' + self.name)}"


# --- vocabularies (W3C DPV terms) ------------------------------------------------

_LEGAL_BASIS = {
    LawfulBasis.CONSENT: "dpv:Consent",
    LawfulBasis.CONTRACT: "dpv:Contract",
    LawfulBasis.LEGAL_OBLIGATION: "dpv:LegalObligation",
    LawfulBasis.LEGITIMATE_INTEREST: "dpv:LegitimateInterest",
    LawfulBasis.VITAL_INTEREST: "dpv:VitalInterest",
    LawfulBasis.PUBLIC_TASK: "dpv:PublicInterest",
}
_CONSENT_STATUS = {
    ConsentState.GIVEN: "dpv:ConsentGiven",
    ConsentState.REFUSED: "dpv:ConsentRefused",
    ConsentState.WITHDRAWN: "dpv:ConsentWithdrawn",
    ConsentState.VOID: "dpv:ConsentInvalidated",
}
# One table for both exports: (Kantara consentType, 27560 event_type). Every method
# the desk records is an affirmative answer to one specific question (a spoken
# "yes" after the disclosure, a signature, a ticked box): explicit consent.
_EXPLICIT = ("EXPLICIT", "dpv:ExplicitlyExpressedConsent")
CONSENT_TYPE: Mapping[CollectionMethod, tuple[str, str]] = {
    CollectionMethod.VERBAL_CALL: _EXPLICIT,
    CollectionMethod.AGENT_ASSISTED: _EXPLICIT,
    CollectionMethod.ONLINE_FORM: _EXPLICIT,
    CollectionMethod.WRITTEN: _EXPLICIT,
}
COLLECTION = {
    CollectionMethod.VERBAL_CALL: "Verbal answer on a call, after the agent read the disclosure",
    CollectionMethod.AGENT_ASSISTED: "Recorded by an agent on the customer's instruction",
    CollectionMethod.WRITTEN: "Written declaration",
    CollectionMethod.ONLINE_FORM: "Online form",
}
_PERSONAL_DATA = {
    Channel.PHONE: ("pd:TelephoneNumber", "telephone number"),
    Channel.SMS: ("pd:CellPhoneNumber", "mobile number"),
    Channel.EMAIL: ("pd:EmailAddress", "email address"),
    Channel.POST: ("pd:PhysicalAddress", "postal address"),
    Channel.ONLINE: ("pd:OnlineIdentifier", "online identifier"),
}
_PURPOSE_TYPE = {
    "marketing": "dpv:Marketing",
    "sharing": "dpv:SellDataToThirdParties",
    "feedback": "dpv:ImproveExistingProductsAndServices",
    "quality": "dpv:ImproveExistingProductsAndServices",
}
JURISDICTION = {
    Jurisdiction.GDPR: ("EU", "EU GDPR (Regulation (EU) 2016/679)"),
    Jurisdiction.CCPA: ("US-CA", "California CCPA/CPRA (Cal. Civ. Code §1798.100 ff.)"),
}

# The PII principal's rights each record names (27560 "rights"), with their source.
RIGHTS: Mapping[Jurisdiction, tuple[tuple[str, str], ...]] = {
    Jurisdiction.GDPR: (
        ("dpv:RightToWithdrawConsent", "GDPR Art. 7(3)"),
        ("dpv:RightToAccess", "GDPR Art. 15"),
        ("dpv:RightToRectification", "GDPR Art. 16"),
        ("dpv:RightToErasure", "GDPR Art. 17"),
        ("dpv:RightToRestrictProcessing", "GDPR Art. 18"),
        ("dpv:RightToDataPortability", "GDPR Art. 20"),
        ("dpv:RightToObject", "GDPR Art. 21"),
        ("dpv:RightToComplain", "GDPR Art. 77"),
    ),
    Jurisdiction.CCPA: (
        ("dpv:RightToWithdrawConsent", "CCPA Regs §7004"),
        ("dpv:RightToKnow", "Cal. Civ. Code §1798.110"),
        ("dpv:RightToErasure", "Cal. Civ. Code §1798.105"),
        ("dpv:RightToRectification", "Cal. Civ. Code §1798.106"),
        ("dpv:RightToOptOutOfSaleOrSharing", "Cal. Civ. Code §1798.120"),
        ("dpv:RightToLimitUseOfSensitiveData", "Cal. Civ. Code §1798.121"),
        ("dpv:RightToNonDiscrimination", "Cal. Civ. Code §1798.125"),
    ),
}


def principal_id(number: str) -> str:
    """The customer as a 27560 PII principal id: a ``tel:`` URI of the E.164 number."""
    return f"tel:{number}"


def _validity(days: int | None) -> str | None:
    return f"P{days}D" if days else None


# --- ISO/IEC TS 27560 consent records --------------------------------------------


def ts27560_records(
    events: Iterable[ConsentEvent],
    catalogue: Catalogue,
    controller: Controller,
    *,
    view: str = "all",
    generated_at: datetime | None = None,
    generator: str = "consentdesk",
    requests: Iterable[PrivacyRequest] = (),
) -> dict[str, Any]:
    """One 27560 consent record per customer × purpose × channel, its events in order.

    The record id is stable (the same consent gets the same id in every export);
    the events are those in the exported view, corrections included and linked.
    Where a CCPA request among *requests* (the customers' privacy requests) has
    stopped the consent, as the kernel's status fold decides, the record ends
    with that request as a withdrawal.
    """
    generated = require_utc(generated_at or utcnow(), "export time")
    grouped: dict[tuple[str, str, Channel], list[ConsentEvent]] = {}
    for e in events:
        grouped.setdefault((e.subject, e.purpose, e.channel), []).append(e)
    by_subject: dict[str, list[PrivacyRequest]] = {}
    for r in requests:
        by_subject.setdefault(r.subject, []).append(r)
    records = []
    for (subject, purpose, channel), evs in grouped.items():
        record = _ts27560_record(subject, purpose, channel, evs, catalogue, controller)
        stopper = _stopped_by(subject, purpose, channel, evs, catalogue, by_subject, generated)
        if stopper is not None:
            record["events"].append(_ts27560_stop(stopper, purpose, channel))
            record["header"]["last_event"] = stopper.created_at.isoformat()
        records.append(record)
    return {
        "export": {
            "generator": generator,
            "schema": TS27560_SCHEMA_ID,
            "vocabularies": dict(VOCABULARIES),
            "generated_at": generated.isoformat(),
            "view": view,
            "record_count": len(records),
        },
        "records": records,
    }


def _ts27560_record(
    subject: str,
    purpose_id: str,
    channel: Channel,
    events: Sequence[ConsentEvent],
    catalogue: Catalogue,
    controller: Controller,
) -> dict[str, Any]:
    try:
        purpose = catalogue.get(purpose_id)
        title, description, group = purpose.title, purpose.description, purpose.group
        validity_days = purpose.validity_days
    except DomainError:
        # A purpose retired from the catalogue still has its records exported.
        title, description, group, validity_days = purpose_id, "", purpose_id, None
    pd_term, pd_label = _PERSONAL_DATA[channel]
    first, last = events[0], events[-1]
    jurisdictions = sorted({e.jurisdiction for e in events})
    notices: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for e in events:
        n = e.notice
        notices.setdefault(
            (n.script_id, n.version, n.language, n.sha256),
            {
                "notice_id": n.script_id,
                "version": n.version,
                "language": n.language,
                "sha256": n.sha256,
                "text": n.text,
            },
        )
    record_id = uuid.uuid5(RECORD_NS, f"{subject}|{purpose_id}|{channel}")
    subject_party = {
        "party_id": principal_id(subject),
        "party_name": None,
        "party_role": "dpv:DataSubject",
        "party_type": "natural-person",
        "party_address": None,
        "party_contact": principal_id(subject),
        "party_email": None,
        "party_phone": subject,
        "party_url": None,
    }
    controller_party = {
        "party_id": controller.party_id(),
        "party_name": controller.name,
        "party_role": "dpv:DataController",
        "party_type": "legal-entity",
        "party_address": controller.address,
        "party_contact": controller.contact,
        "party_email": controller.email,
        "party_phone": controller.phone,
        "party_url": controller.url or None,
    }
    rights = [
        {"right": term, "legal_source": source, "jurisdiction": JURISDICTION[j][0]}
        for j in jurisdictions
        for term, source in RIGHTS[j]
    ]
    return {
        "header": {
            "schema_version": TS27560_VERSION,
            "record_id": f"urn:uuid:{record_id}",
            "pii_principal_id": principal_id(subject),
            "created": first.at.isoformat(),
            "last_event": last.at.isoformat(),
        },
        "processing": {
            "privacy_notice": list(notices.values()),
            "language": last.notice.language,
            "purposes": [
                {
                    "purpose_id": purpose_id,
                    "purpose": title,
                    "purpose_description": description,
                    "purpose_type": _PURPOSE_TYPE.get(group, "dpv:Purpose"),
                    "lawful_basis": _LEGAL_BASIS[last.lawful_basis],
                    "channel": channel.value,
                    "pii_information": [{"pii_type": pd_term, "pii_label": pd_label}],
                    "collection_method": COLLECTION[last.method],
                    "processing_method": ["dpv:Use", "dpv:Store"],
                    "storage_locations": controller.storage_location or None,
                    "retention_period": controller.retention or None,
                    "recipient_third_parties": list(controller.third_parties),
                    "jurisdiction": [JURISDICTION[j][0] for j in jurisdictions],
                    "withdrawal_method": controller.withdrawal_method,
                }
            ],
            "pii_controllers": [controller.party_id()],
            "jurisdiction": [JURISDICTION[j][1] for j in jurisdictions],
            "policy_url": controller.policy_url or None,
            "rights": rights,
        },
        "parties": [controller_party, subject_party],
        "events": [_ts27560_event(e, validity_days) for e in events],
    }


def customers_requests(
    source: ReviewSource, events: Sequence[ConsentEvent]
) -> list[PrivacyRequest]:
    """The privacy requests of every customer in *events* (each read is logged), for
    what a CCPA request has stopped."""
    found: list[PrivacyRequest] = []
    for subject in sorted({e.subject for e in events}):
        found.extend(source.customer_requests(subject))
    return found


def _stopped_by(
    subject: str,
    purpose: str,
    channel: Channel,
    events: Sequence[ConsentEvent],
    catalogue: Catalogue,
    requests: Mapping[str, Sequence[PrivacyRequest]],
    now: datetime,
) -> PrivacyRequest | None:
    """The CCPA request that has stopped this consent, if the status fold says one has."""
    mine = requests.get(subject)
    if not mine:
        return None
    for cell in current_status(events, catalogue, now, mine):
        if (cell.purpose, cell.channel) == (purpose, channel):
            return cell.request if cell.state == ConsentState.OPTED_OUT else None
    return None


def _ts27560_stop(request: PrivacyRequest, purpose: str, channel: Channel) -> dict[str, Any]:
    """A CCPA opt-out or limit request as the 27560 event that ended the consent."""
    event_id = uuid.uuid5(RECORD_NS, f"stop|{request.request_id}|{purpose}|{channel}")
    return {
        "event_id": f"urn:uuid:{event_id}",
        "event_time": request.created_at.isoformat(),
        "event_type": "dpv:ExplicitlyExpressedConsent",
        "event_state": _CONSENT_STATUS[ConsentState.WITHDRAWN],
        "entity_id": principal_id(request.subject),
        "recorded_by": request.agent,
        "validity_duration": None,
        "valid_until": None,
        "call_id": request.call_id,
        "request_reference": request.reference,
        "request_type": str(request.type),
    }


def _ts27560_event(e: ConsentEvent, validity_days: int | None) -> dict[str, Any]:
    given = e.state == ConsentState.GIVEN
    return {
        "event_id": f"urn:uuid:{e.event_id}",
        "event_time": e.at.isoformat(),
        "event_type": CONSENT_TYPE[e.method][1],
        "event_state": _CONSENT_STATUS[e.state],
        "entity_id": principal_id(e.subject),
        "recorded_by": e.agent,
        "validity_duration": _validity(validity_days) if given else None,
        "valid_until": e.valid_until.isoformat() if e.valid_until else None,
        "notice": {
            "notice_id": e.notice.script_id,
            "version": e.notice.version,
            "language": e.notice.language,
            "sha256": e.notice.sha256,
        },
        "call_id": e.call_id,
        "recording_ref": e.recording_ref,
        "corrects": f"urn:uuid:{e.corrects}" if e.corrects else None,
        "correction_reason": e.correction_reason,
    }


# --- schema validation -----------------------------------------------------------


@cache
def load_schema(name: str) -> Mapping[str, Any]:
    path: Path = resource_path("schemas", name)
    try:
        loaded: Mapping[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot read export schema {path.name}: {exc}") from exc
    return loaded


def validate(document: Mapping[str, Any], schema_name: str) -> None:
    """Raise ExportError naming the first place *document* breaks its schema."""
    import jsonschema  # type: ignore[import-untyped]

    schema = load_schema(schema_name)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top)"
        raise ExportError(f"export does not match {schema_name} at {where}: {error.message}")


def write_json(
    document: Mapping[str, Any] | Sequence[Mapping[str, Any]], out: IO[str], *, schema_name: str
) -> None:
    """Write *document* (or a list of documents, each checked) as JSON."""
    for item in [document] if isinstance(document, Mapping) else document:
        validate(item, schema_name)
    json.dump(document, out, ensure_ascii=False, indent=2)
    out.write("\n")
