"""Caller identity from what the network sends: SIP/tel URIs and name-addrs → E.164.

``sip:+4915112345678@host``, ``sip:015112345678@host;user=phone``,
``"Erika" <sip:…>``, ``tel:+1-415-555-0100;ext=1`` and a bare ``0151 1234 5678``
all end in :func:`consentdesk.domain.phone.normalize` with the configured region,
so national and international forms of one line find the same subject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from consentdesk.domain import phone
from consentdesk.domain.model import DomainError

MAX_CALLER_TEXT = 512
MAX_DISPLAY_NAME = 128

# User parts that mean "no number presented" (RFC 3323/3325 practice and what
# PBXs and softphones actually send).
WITHHELD = frozenset(
    {"anonymous", "restricted", "private", "withheld", "unknown", "unavailable", "blocked"}
)
ANONYMOUS_HOST = "anonymous.invalid"

# A dialable number: optional +, ASCII digits and the visual separators of
# RFC 3966. Anything else (letters, other scripts' digits, quotes) is not a
# number we look up; non-ASCII digits are refused rather than silently folded.
_NUMBER_CHARS = re.compile(r"\+?[0-9()./ \-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAME_ADDR = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*<([^<>]*)>\s*(;.*)?')


class InvalidCaller(DomainError):
    """The caller text is not a URI, name-addr or number we accept (safe to show)."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: E.164 ``number`` or None, and what was sent, for display.

    ``raw`` is empty for an anonymous/withheld caller and holds the presented
    user part when it is not a number we can normalise (e.g. an extension).
    """

    number: str | None
    raw: str
    display_name: str = ""

    @property
    def withheld(self) -> bool:
        return self.number is None and not self.raw


def clean_display_name(text: str) -> str:
    """Display name fit to show: no control characters, bounded length."""
    return _CONTROL.sub("", text).strip()[:MAX_DISPLAY_NAME]


def _percent_decode(text: str) -> str:
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidCaller("caller contains invalid percent-encoding") from None


def _sip_user(uri: str) -> tuple[str, str]:
    """(user, host) of a sip:/sips: URI; URI params and headers dropped."""
    rest = uri.split(":", 1)[1]
    rest = rest.split("?", 1)[0]
    if "@" not in rest:
        return "", rest.split(";", 1)[0]
    userinfo, hostpart = rest.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]  # drop a password
    user = user.split(";", 1)[0]  # drop user parameters (e.g. ;phone-context=…)
    return _percent_decode(user).strip(), hostpart.split(";", 1)[0].lower()


def _tel_number(uri: str) -> str:
    """Number of a tel: URI, with a global phone-context prefixed to a local number."""
    body = uri.split(":", 1)[1]
    number, *params = body.split(";")
    number = _percent_decode(number).strip()
    for param in params:
        name, _, value = param.partition("=")
        is_context = name.lower() == "phone-context" and value.startswith("+")
        if is_context and number and not number.startswith("+"):
            number = value + number
    return number


def _split_name_addr(text: str) -> tuple[str, str]:
    """(display name, URI) of ``"Name" <uri>``; plain text is returned as the URI."""
    if "<" not in text and ">" not in text:
        return "", text
    match = _NAME_ADDR.fullmatch(text)
    if match is None:
        raise InvalidCaller("caller is not a valid name-addr")
    quoted, plain, uri, _params = match.groups()
    name = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else (plain or "")
    return name, uri.strip()


def parse_caller(text: str, *, region: str, display_name: str = "") -> Caller:
    """Read a caller from a SIP/SIPS/tel URI, a name-addr or a plain number.

    Withheld callers (``anonymous@anonymous.invalid``, ``Restricted``, empty)
    give ``number=None, raw=""``. A well-formed user part that is not a valid
    number for ``region`` (an internal extension, say) gives ``number=None``
    with ``raw`` kept for display. Text that is none of these raises
    :class:`InvalidCaller`.
    """
    if len(text) > MAX_CALLER_TEXT:
        raise InvalidCaller("caller text is too long")
    if _CONTROL.search(text):
        raise InvalidCaller("caller text contains control characters")
    name, uri = _split_name_addr(text.strip())
    display = clean_display_name(display_name or name)
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    host = ""
    if scheme in ("sip", "sips"):
        user, host = _sip_user(uri)
    elif scheme == "tel":
        user = _tel_number(uri)
    elif scheme:
        raise InvalidCaller("caller URI must be sip:, sips: or tel:")
    else:
        user = uri
    if not user or user.lower() in WITHHELD or host == ANONYMOUS_HOST:
        return Caller(number=None, raw="", display_name=display)
    if not _NUMBER_CHARS.fullmatch(user):
        # A SIP user part may legitimately be a name (sip:alice@pbx): show it,
        # but only if it is plain printable text.
        if scheme in ("sip", "sips") and user.isprintable() and len(user) <= phone.MAX_INPUT:
            return Caller(number=None, raw=user, display_name=display)
        raise InvalidCaller("caller number contains characters that are not digits")
    try:
        number = phone.normalize(user, region)
    except phone.InvalidNumber:
        return Caller(number=None, raw=user, display_name=display)
    return Caller(number=number, raw=user, display_name=display)
