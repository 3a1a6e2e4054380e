"""The receipt e-mail a customer gets after a capture: short, plain, in their language.

It says what was agreed, refused or withdrawn on the call, for which purposes
and channels, how to withdraw and whom to contact; the Kantara v1.1 receipt of
the consents in force is attached (none is when nothing remains in force, e.g.
after withdrawing everything: the text says so). The language is the one the
disclosure was read in (German or English; other languages get English).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.export import Controller, ExportError
from consentdesk.domain.kantara import kantara_receipts
from consentdesk.domain.model import (
    Channel,
    ConsentEvent,
    ConsentState,
    DomainError,
    PrivacyRequest,
)

LANGUAGES = ("en", "de")
ATTACHMENT = "consent-receipt.json"
_EMAIL = re.compile(
    r"[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+"
)

_TEXT = {
    "en": {
        "subject": "Your consent choices with {company}",
        "hello": "Hello,",
        "intro": "on {date} you told us on the phone:",
        "given": "agreed",
        "given_until": "agreed (valid until {until})",
        "refused": "refused",
        "withdrawn": "withdrawn",
        "by": "by",
        "withdraw": "You can withdraw at any time: {method}",
        "contact": "Your contact for data protection: {contact}, {name}",
        "policy": "Privacy policy: {url}",
        "attached": (
            "Attached ({file}) is your machine-readable receipt of the consents now in "
            "force (Kantara Consent Receipt v1.1)."
        ),
        "none_left": "No consent to contact you remains in force.",
        "bye": "Kind regards\n{company}",
    },
    "de": {
        "subject": "Ihre Einwilligungen bei {company}",
        "hello": "Guten Tag,",
        "intro": "am {date} haben Sie uns am Telefon Folgendes mitgeteilt:",
        "given": "eingewilligt",
        "given_until": "eingewilligt (gültig bis {until})",
        "refused": "abgelehnt",
        "withdrawn": "widerrufen",
        "by": "per",
        "withdraw": (
            "Sie können Ihre Einwilligung jederzeit widerrufen – ein Anruf bei uns genügt; "
            "der Widerruf ist so einfach wie die Einwilligung."
        ),
        "contact": "Ihr Ansprechpartner für Datenschutz: {contact}, {name}",
        "policy": "Datenschutzerklärung: {url}",
        "attached": (
            "Im Anhang ({file}) finden Sie Ihre maschinenlesbare Quittung der jetzt "
            "gültigen Einwilligungen (Kantara Consent Receipt v1.1)."
        ),
        "none_left": "Es ist keine Einwilligung mehr in Kraft, Sie zu kontaktieren.",
        "bye": "Mit freundlichen Grüßen\n{company}",
    },
}
_CHANNELS = {
    "en": {
        Channel.PHONE: "phone",
        Channel.SMS: "SMS",
        Channel.EMAIL: "e-mail",
        Channel.POST: "post",
        Channel.ONLINE: "online",
    },
    "de": {
        Channel.PHONE: "Telefon",
        Channel.SMS: "SMS",
        Channel.EMAIL: "E-Mail",
        Channel.POST: "Post",
        Channel.ONLINE: "online",
    },
}


def check_email(address: str) -> str:
    """A plausible e-mail address, trimmed; the error does not repeat it."""
    address = address.strip()
    if len(address) > 254 or not _EMAIL.fullmatch(address):
        raise DomainError("this is not an e-mail address like name@example.com")
    return address


def receipt_language(events: Sequence[ConsentEvent]) -> str:
    """The language the disclosure was read in, if a receipt can be written in it."""
    language = events[-1].notice.language if events else "en"
    return language if language in LANGUAGES else "en"


@dataclass(frozen=True, slots=True)
class ReceiptMail:
    language: str
    subject: str
    text: str
    attachment: str | None  # the Kantara receipts (one per consent in force), JSON


def compose_receipt(
    captured: Sequence[ConsentEvent],
    history: Sequence[ConsentEvent],
    catalogue: Catalogue,
    controller: Controller,
    *,
    company: str,
    now: datetime,
    tz: tzinfo,
    requests: Sequence[PrivacyRequest] = (),
) -> ReceiptMail:
    """The e-mail for the consents *captured* on a call (*history*: all of the subject's;
    *requests*: theirs too, for what a CCPA request has stopped)."""
    if not captured:
        raise DomainError("nothing was captured on this call, so there is nothing to confirm")
    if len({e.subject for e in captured}) != 1:
        raise DomainError("a receipt is about one customer")
    lang = receipt_language(captured)
    t = _TEXT[lang]
    lines = [
        t["hello"],
        "",
        t["intro"].format(
            date=captured[-1].at.astimezone(tz).strftime("%d.%m.%Y" if lang == "de" else "%Y-%m-%d")
        ),
    ]
    for e in captured:
        lines.append(f"- {_line(e, catalogue, lang, tz)}")
    try:
        receipts = kantara_receipts(history, catalogue, controller, now=now, requests=requests)
    except ExportError:
        receipts = None  # nothing in force (or no controller details): no attachment
    lines += ["", t["withdraw"].format(method=controller.withdrawal_method)]
    lines.append(t["contact"].format(contact=controller.contact, name=controller.name))
    lines.append(f"{controller.address} · {controller.email} · {controller.phone}")
    lines.append(t["policy"].format(url=controller.policy_url))
    lines += ["", t["attached"].format(file=ATTACHMENT) if receipts else t["none_left"]]
    lines += ["", t["bye"].format(company=company)]
    return ReceiptMail(
        lang,
        t["subject"].format(company=company),
        "\n".join(lines) + "\n",
        json.dumps(receipts, indent=2, ensure_ascii=False) if receipts else None,
    )


def _line(e: ConsentEvent, catalogue: Catalogue, lang: str, tz: tzinfo) -> str:
    t = _TEXT[lang]
    title = catalogue.get(e.purpose).title_in(lang)
    if e.state == ConsentState.GIVEN and e.valid_until is not None:
        fmt = "%d.%m.%Y" if lang == "de" else "%Y-%m-%d"
        state = t["given_until"].format(until=e.valid_until.astimezone(tz).strftime(fmt))
    else:
        state = t.get(e.state.value, e.state.value)
    return f"{title} {t['by']} {_CHANNELS[lang][e.channel]}: {state}"
