"""Kantara Initiative Consent Receipts v1.1 (KI-CR-v1.1.0): one receipt per consent
event, validated against ``resources/schemas/kantara-consent-receipt-v1.1.schema.json``.

Fields as the specification defines them: ``jurisdiction`` an ISO 3166 code,
``purposeCategory`` from Appendix A and ``piiCategory`` from Appendix B (the
numbered lists, e.g. "6 - Marketing", "2 - Contact"), ``consentType`` EXPLICIT or
IMPLIED, the controller's address with its country, and a ``termination`` that
names a lapse date only where the purpose has a validity.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.export import (
    COLLECTION,
    CONSENT_TYPE,
    JURISDICTION,
    KANTARA_VERSION,
    RECORD_NS,
    Controller,
    ExportError,
)
from consentdesk.domain.model import (
    Channel,
    ConsentEvent,
    ConsentState,
    DomainError,
    Jurisdiction,
    LawfulBasis,
    PrivacyRequest,
    Purpose,
    require_utc,
    utcnow,
)
from consentdesk.domain.status import current_status

# Kantara CR v1.1 Appendix A (purpose categories), by catalogue group.
KANTARA_PURPOSE_CATEGORY: Mapping[str, str] = {
    "service": "2 - Contracted Service",
    "marketing": "6 - Marketing",
    "sharing": "9 - Sharing for Marketing",
    "feedback": "16 - Improve Performance",
    "quality": "16 - Improve Performance",
}
_KANTARA_CORE = "1 - Core Function"
# Kantara CR v1.1 Appendix B (PII categories), by channel: every channel's
# identifier (number, address, online id) is contact data.
KANTARA_PII_CATEGORY: Mapping[Channel, str] = {
    Channel.PHONE: "2 - Contact",
    Channel.SMS: "2 - Contact",
    Channel.EMAIL: "2 - Contact",
    Channel.POST: "2 - Contact",
    Channel.ONLINE: "2 - Contact",
}


# --- Kantara Consent Receipt v1.1 ------------------------------------------------


def _check_receiptable(controller: Controller) -> None:
    missing = [
        key
        for key, value in (
            ("privacy.controller_address", controller.address),
            ("privacy.controller_email", controller.email),
            ("privacy.controller_phone", controller.phone),
            ("privacy.contact", controller.contact),
            ("privacy.policy_url", controller.policy_url),
        )
        if not value
    ]
    if missing:
        raise ExportError(f"a consent receipt needs {', '.join(missing)} in the site config")


def kantara_jurisdiction(j: Jurisdiction, controller: Controller) -> str:
    """ISO 3166 code of the law the consent was taken under: the controller's
    country for the GDPR (its supervisory authority), US-CA for the CCPA."""
    return controller.country if j == Jurisdiction.GDPR else JURISDICTION[j][0]


def termination(validity_days: int | None, given_at: datetime, controller: Controller) -> str:
    """When the consent ends, as the receipt says it: its lapse date where the
    purpose has a validity, else only withdrawal (and how to withdraw)."""
    how = controller.withdrawal_method.strip()
    if validity_days:
        lapses = (given_at + timedelta(days=validity_days)).date().isoformat()
        ends = f"Lapses {validity_days} days after it was given (on {lapses}) unless renewed"
        return f"{ends}; it can be withdrawn earlier at any time. {how}".strip()
    return f"Until withdrawn; it can be withdrawn at any time. {how}".strip()


def kantara_receipt(
    event: ConsentEvent, catalogue: Catalogue, controller: Controller
) -> dict[str, Any]:
    """The Kantara v1.1 receipt of one consent event (a consent given).

    The receipt id is derived from the event, so a receipt issued twice for the
    same consent carries the same id.
    """
    _check_receiptable(controller)
    if event.state != ConsentState.GIVEN:
        raise ExportError(f"a consent receipt is for a consent given, not one {event.state}")
    try:
        p = catalogue.get(event.purpose)
    except DomainError:
        raise ExportError(f"purpose {event.purpose!r} is no longer in the catalogue") from None
    if p.lawful_basis != LawfulBasis.CONSENT:
        raise ExportError(f"{p.title} is processed on {p.lawful_basis}, not on consent")
    consent_type, _ = CONSENT_TYPE[event.method]
    purpose: dict[str, Any] = {
        "purpose": f"{p.title}: {p.description}",
        "purposeCategory": [KANTARA_PURPOSE_CATEGORY.get(p.group, _KANTARA_CORE)],
        "consentType": consent_type,
        "piiCategory": [KANTARA_PII_CATEGORY[event.channel]],
        "primaryPurpose": False,
        "termination": termination(p.validity_days, event.at, controller),
        **_disclosure(p, controller),
    }
    return {
        "version": KANTARA_VERSION,
        "jurisdiction": kantara_jurisdiction(event.jurisdiction, controller),
        "consentTimestamp": int(event.at.timestamp()),
        "collectionMethod": COLLECTION[event.method],
        "consentReceiptID": str(uuid.uuid5(RECORD_NS, f"receipt:{event.event_id}")),
        "language": event.notice.language,
        "piiPrincipalId": event.subject,
        "piiControllers": [
            {
                "piiController": controller.name,
                "onBehalf": False,
                "contact": controller.contact,
                "address": {
                    "streetAddress": controller.address,
                    "addressCountry": controller.country,
                },
                "email": controller.email,
                "phone": controller.phone,
                **({"piiControllerUrl": controller.url} if controller.url else {}),
            }
        ],
        "policyUrl": controller.policy_url,
        "services": [{"service": f"{controller.name} customer service", "purposes": [purpose]}],
        "sensitive": False,
        "spiCat": [],
    }


def _disclosure(purpose: Purpose, controller: Controller) -> dict[str, Any]:
    """thirdPartyDisclosure/-Name: a purpose that sells or shares discloses by nature."""
    if not (controller.third_parties or purpose.sale_or_sharing):
        return {"thirdPartyDisclosure": False}
    names = ", ".join(controller.third_parties) or (
        f"the recipients named in our privacy notice ({controller.policy_url})"
    )
    return {"thirdPartyDisclosure": True, "thirdPartyName": names}


def kantara_receipts(
    history: Sequence[ConsentEvent],
    catalogue: Catalogue,
    controller: Controller,
    *,
    now: datetime | None = None,
    requests: Iterable[PrivacyRequest] = (),
) -> list[dict[str, Any]]:
    """One receipt per consent event in force for one customer at *now*.

    In force is what the kernel's status fold says: a consent that a CCPA request
    among *requests* (the customer's privacy requests) has stopped is not.
    """
    now = require_utc(now or utcnow(), "receipt time")
    _check_receiptable(controller)
    events = [
        c.event
        for c in current_status(history, catalogue, now, requests)
        if c.state == ConsentState.GIVEN and c.event is not None
    ]
    if not events:
        raise ExportError("this customer has no consent in force, so there is nothing to receipt")
    return [kantara_receipt(e, catalogue, controller) for e in sorted(events, key=lambda e: e.at)]


def find_event(history: Sequence[ConsentEvent], event_id: uuid.UUID) -> ConsentEvent:
    """The consent event *event_id* of a customer's history."""
    for event in history:
        if event.event_id == event_id:
            return event
    raise ExportError("that action is not a consent of this customer")
