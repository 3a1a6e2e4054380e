"""Phone numbers to E.164, through libphonenumber's metadata."""

from __future__ import annotations

import phonenumbers

from consentdesk.domain.model import DomainError

MAX_INPUT = 64


class InvalidNumber(DomainError):
    """The text is not a possible phone number (message safe to show)."""


def normalize(text: str, region: str = "DE") -> str:
    """Return the E.164 form of *text*, read as dialled in *region*.

    ``0151 1234 5678`` with region DE and ``+49 151 12345678`` give the same
    result. An unparseable or impossible number raises :class:`InvalidNumber`
    rather than silently matching nobody.
    """
    if len(text) > MAX_INPUT:
        raise InvalidNumber("phone number is too long")
    cleaned = text.strip()
    if not cleaned:
        raise InvalidNumber("phone number is empty")
    try:
        parsed = phonenumbers.parse(cleaned, region.upper())
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(f"not a phone number: {exc.args[0] if exc.args else exc}") from None
    if not phonenumbers.is_possible_number(parsed) or not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber("not a valid phone number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def display(e164: str) -> str:
    """International display form (``+49 151 12345678``) of an E.164 number."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def mask(e164: str, visible: int = 3) -> str:
    """Mask all but the last *visible* digits, for lists and logs."""
    if len(e164) <= visible:
        return "•" * len(e164)
    return "•" * (len(e164) - visible) + e164[-visible:]
