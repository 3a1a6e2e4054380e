"""Phone numbers to E.164, through libphonenumber's metadata.

A number typed without ``+`` (or an international dialling prefix such as 00) is
read as dialled inside the configured region. Where national dialling there
needs a trunk prefix (libphonenumber's ``national_prefix``: Germany's and the
UK's 0, Russia's 8), a number with neither ``+`` nor that prefix is ambiguous
("49 151 12345678" is not a German number, nor is "(415) 555-2671") and is
refused with a hint to type the international form, instead of becoming a new
subject. The North American Numbering Plan (country code 1) is the exception:
ten-digit dialling without its trunk 1 is the norm there.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import CountryCodeSource, PhoneMetadata

from consentdesk.domain.model import DomainError

MAX_INPUT = 64
NANP_COUNTRY_CODE = 1
# Read as national dialling, or with a country code guessed from the digits.
_TYPED_WITHOUT_PLUS = frozenset(
    {CountryCodeSource.FROM_DEFAULT_COUNTRY, CountryCodeSource.FROM_NUMBER_WITHOUT_PLUS_SIGN}
)


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
    region = region.upper()
    try:
        parsed = phonenumbers.parse(cleaned, region, keep_raw_input=True)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(f"not a phone number: {exc.args[0] if exc.args else exc}") from None
    if parsed.country_code_source in _TYPED_WITHOUT_PLUS:
        _check_trunk_prefix(cleaned, region)
    if not phonenumbers.is_possible_number(parsed) or not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber("not a valid phone number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def trunk_prefix(region: str) -> str | None:
    """The trunk prefix national dialling in *region* requires, or None.

    From libphonenumber's metadata; None for regions without one and for the
    North American Numbering Plan, where the trunk 1 is optional.
    """
    metadata = PhoneMetadata.metadata_for_region(region.upper())
    if metadata is None or metadata.country_code == NANP_COUNTRY_CODE:
        return None
    return metadata.national_prefix or None


def _check_trunk_prefix(text: str, region: str) -> None:
    prefix = trunk_prefix(region)
    if prefix is None or phonenumbers.normalize_digits_only(text).startswith(prefix):
        return
    example = phonenumbers.example_number(region)
    shown = (
        phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        if example is not None
        else f"+{phonenumbers.country_code_for_region(region)} …"
    )
    raise InvalidNumber(
        f"ambiguous number (no + and no trunk prefix {prefix}): type it in international "
        f"form with + and the country code, for example {shown}"
    )


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
