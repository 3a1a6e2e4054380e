"""Lawful basis drives what the desk asks: consent only where consent is the basis.

A purpose on contract, legal obligation or vital interest needs no consent:
the grid shows it as information, with its basis. Where the basis is
legitimate interest or public task the caller has a right to object (GDPR
Art. 21(1)); against direct marketing that objection is absolute (Art. 21(2)
and (3)). Then an objection is the capture offered, never a consent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from consentdesk.domain.model import LawfulBasis, Purpose


class Offer(enum.StrEnum):
    """What the agent can capture for a purpose."""

    CONSENT = "consent"  # ask, record given / refused / withdrawn
    OBJECTION = "objection"  # record the caller's objection (a privacy request)
    NONE = "none"  # information only: nothing to ask


@dataclass(frozen=True, slots=True)
class BasisInfo:
    """How a purpose's lawful basis is shown and what it lets the caller do."""

    basis: LawfulBasis
    label: str  # a word or two for a grid cell
    law: str  # the legal source, for tooltips and the README
    offer: Offer
    explanation: str  # one sentence for the agent


_BASES: dict[LawfulBasis, tuple[str, str]] = {
    LawfulBasis.CONSENT: ("Consent", "GDPR Art. 6(1)(a), Art. 7"),
    LawfulBasis.CONTRACT: ("Contract", "GDPR Art. 6(1)(b)"),
    LawfulBasis.LEGAL_OBLIGATION: ("Legal duty", "GDPR Art. 6(1)(c)"),
    LawfulBasis.VITAL_INTEREST: ("Vital interest", "GDPR Art. 6(1)(d)"),
    LawfulBasis.PUBLIC_TASK: ("Public task", "GDPR Art. 6(1)(e), right to object Art. 21(1)"),
    LawfulBasis.LEGITIMATE_INTEREST: (
        "Legit. interest",
        "GDPR Art. 6(1)(f), right to object Art. 21(1)",
    ),
}

DIRECT_MARKETING_GROUPS = frozenset({"marketing"})
"""Catalogue groups that are direct marketing: an objection to them is absolute."""


def basis_info(purpose: Purpose) -> BasisInfo:
    """The lawful basis of *purpose*, as the grid shows it and what it offers."""
    basis = purpose.lawful_basis
    label, law = _BASES[basis]
    if basis == LawfulBasis.CONSENT:
        return BasisInfo(basis, label, law, Offer.CONSENT, "Ask for consent.")
    if basis in (LawfulBasis.LEGITIMATE_INTEREST, LawfulBasis.PUBLIC_TASK):
        if purpose.group in DIRECT_MARKETING_GROUPS:
            law = "GDPR Art. 6(1)(f), absolute right to object to direct marketing Art. 21(2)-(3)"
            why = "No consent needed; if the caller objects, it stops: record an objection."
        else:
            why = "No consent needed; the caller may object: record an objection."
        return BasisInfo(basis, label, law, Offer.OBJECTION, why)
    return BasisInfo(
        basis, label, law, Offer.NONE, "No consent needed: tell the caller, nothing to ask."
    )
