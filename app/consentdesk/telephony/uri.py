"""Strict parsing of the URIs a desktop or softphone hands us on a call.

Accepted: ``consentdesk://call?number=…&id=…&event=incoming|answered|ended``,
``tel:…`` and ``sip:``/``sips:`` URIs. A URI is hostile input: it is bounded in
length, percent-decoded exactly once, may hold no control characters, spaces
or fragments, and anything else (``javascript:``, ``file:``, other hosts or
paths) is refused with a one-line reason. Nothing in a URI is ever executed or
opened; it only ever becomes a :class:`CallEvent`.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from consentdesk.domain.model import DomainError
from consentdesk.telephony.events import CallEvent, CallPhase, CallSource, is_valid_call_id
from consentdesk.telephony.numbers import InvalidCaller, parse_caller

MAX_URI = 2048
MAX_PARAM = 512
SCHEME = "consentdesk"
_ALLOWED = re.compile(r"[!-~]+")  # printable ASCII, no spaces: everything else must be %-encoded


class InvalidUri(DomainError):
    """The URI is not one we accept; the message says why (safe to show)."""


def _decode(value: str, name: str) -> str:
    try:
        text = unquote_to_bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidUri(f"{name} is not valid UTF-8 after percent-decoding") from None
    if not text.isprintable():
        raise InvalidUri(f"{name} contains control characters")
    return text


def _query(query: str) -> dict[str, str]:
    """Parameters of a query string, decoded once; '+' stays a plus (phone numbers)."""
    params: dict[str, str] = {}
    for part in query.split("&"):
        if not part:
            continue
        raw_name, sep, raw_value = part.partition("=")
        if not sep:
            raise InvalidUri("query parameter without '='")
        name = _decode(raw_name, "parameter name").lower()
        if len(raw_value) > MAX_PARAM:
            raise InvalidUri(f"parameter {name[:32]!r} is too long")
        if name in params:
            raise InvalidUri(f"parameter {name[:32]!r} is given twice")
        params[name] = _decode(raw_value, f"parameter {name[:32]!r}")
    return params


def _consentdesk(uri: str, region: str) -> CallEvent:
    rest = uri[len(SCHEME) + 1 :]
    if not rest.startswith("//"):
        raise InvalidUri("consentdesk URI must start with consentdesk://call")
    authority_path, _, query = rest[2:].partition("?")
    if authority_path.lower() not in ("call", "call/"):
        raise InvalidUri("consentdesk URI must be consentdesk://call?number=…")
    params = _query(query)
    event_name = params.get("event", CallPhase.INCOMING.value).lower()
    try:
        phase = CallPhase(event_name)
    except ValueError:
        raise InvalidUri("event must be incoming, answered or ended") from None
    call_id = params.get("id", "")
    if call_id and not is_valid_call_id(call_id):
        raise InvalidUri("id must be 1-256 printable ASCII characters without spaces")
    if "number" not in params:
        raise InvalidUri("consentdesk URI needs a number parameter")
    try:
        caller = parse_caller(params["number"], region=region)
    except InvalidCaller as exc:
        raise InvalidUri(str(exc)) from None
    return CallEvent(
        phase=phase,
        call_id=call_id,
        source=CallSource.URI,
        number=caller.number,
        raw_number=caller.raw,
        display_name=caller.display_name,
    )


def parse_call_uri(uri: str, *, region: str) -> CallEvent:
    """The call a URI announces; ``call_id`` is ``""`` when the URI names none.

    Raises :class:`InvalidUri` for anything but the accepted forms.
    """
    if len(uri) > MAX_URI:
        raise InvalidUri(f"URI is longer than {MAX_URI} characters")
    if not uri:
        raise InvalidUri("URI is empty")
    if not _ALLOWED.fullmatch(uri):
        raise InvalidUri("URI contains spaces, control or non-ASCII characters")
    if "#" in uri:
        raise InvalidUri("URI must not have a fragment")
    scheme, sep, _ = uri.partition(":")
    scheme = scheme.lower()
    if not sep or not re.fullmatch(r"[a-z][a-z0-9+.\-]*", scheme):
        raise InvalidUri("not a URI")
    if scheme == SCHEME:
        return _consentdesk(uri, region)
    if scheme in ("tel", "sip", "sips"):
        try:
            caller = parse_caller(uri, region=region)
        except InvalidCaller as exc:
            raise InvalidUri(str(exc)) from None
        return CallEvent(
            phase=CallPhase.INCOMING,
            call_id="",
            source=CallSource.URI,
            number=caller.number,
            raw_number=caller.raw,
            display_name=caller.display_name,
        )
    raise InvalidUri(f"unsupported URI scheme {scheme[:20]!r}; expected consentdesk:, tel: or sip:")
