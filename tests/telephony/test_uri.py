"""URI hand-off parsing: accepted forms, and hostile input refused with a reason."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentdesk.telephony.events import CallPhase, CallSource
from consentdesk.telephony.uri import MAX_URI, InvalidUri, parse_call_uri

ERIKA = "+4915112345678"


@pytest.mark.parametrize(
    ("uri", "phase", "call_id"),
    [
        (
            "consentdesk://call?number=%2B4915112345678&id=abc-1@pbx&event=incoming",
            "incoming",
            "abc-1@pbx",
        ),
        ("consentdesk://call?number=+4915112345678", "incoming", ""),
        ("consentdesk://call/?number=015112345678&event=answered&id=7", "answered", "7"),
        ("CONSENTDESK://CALL?EVENT=ENDED&number=0151-1234-5678&id=x", "ended", "x"),
        ("consentdesk://call?number=0151%201234%205678&utm_source=crm&x=", "incoming", ""),
        ("consentdesk://call?number=sip%3A%2B4915112345678%40pbx%3Buser%3Dphone", "incoming", ""),
    ],
)
def test_consentdesk_uris(uri: str, phase: str, call_id: str) -> None:
    event = parse_call_uri(uri, region="DE")
    assert event.number == ERIKA
    assert event.phase == CallPhase(phase)
    assert event.call_id == call_id
    assert event.source == CallSource.URI


@pytest.mark.parametrize(
    "uri",
    [
        "tel:+49-151-1234-5678",
        "tel:015112345678;phone-context=+49",
        "sip:+4915112345678@pbx.example.com",
        "sip:015112345678@192.0.2.1;user=phone",
        "sips:+4915112345678@pbx.example.com;transport=tls",
    ],
)
def test_tel_and_sip_uris(uri: str) -> None:
    event = parse_call_uri(uri, region="DE")
    assert (event.number, event.phase, event.call_id) == (ERIKA, CallPhase.INCOMING, "")


def test_withheld_number_in_uri() -> None:
    event = parse_call_uri("sip:anonymous@anonymous.invalid", region="DE")
    assert event.number is None and event.raw_number == ""


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("", "empty"),
        ("javascript:alert(1)", "unsupported URI scheme"),
        ("JaVaScRiPt:alert(document.cookie)//tel:+4915112345678", "unsupported URI scheme"),
        ("file:///etc/passwd", "unsupported URI scheme"),
        ("http://call?number=+4915112345678", "unsupported URI scheme"),
        ("data:text/html,<script>", "unsupported URI scheme"),
        ("consentdesk:call?number=1", "must start with consentdesk://call"),
        ("consentdesk://evil.example/call?number=+4915112345678", "consentdesk://call"),
        ("consentdesk://call/../../etc?number=+4915112345678", "consentdesk://call"),
        ("consentdesk://user@call?number=+4915112345678", "consentdesk://call"),
        ("consentdesk://call?id=1", "needs a number"),
        ("consentdesk://call?number=+4915112345678&number=+4930123456", "given twice"),
        ("consentdesk://call?number=+4915112345678&event=exec", "event must be"),
        ("consentdesk://call?number=+4915112345678&id=a%20b", "id must be"),
        ("consentdesk://call?number=+4915112345678&id=" + "x" * 300, "id must be"),
        ("consentdesk://call?number=+4915112345678&flag", "without '='"),
        ("consentdesk://call?number=+4915112345678#frag", "fragment"),
        ("consentdesk://call?number=+49151 12345678", "spaces"),
        ("consentdesk://call?number=+49151\t12345678", "spaces"),
        ("consentdesk://call?number=%2B49151%0A12345678", "control"),
        ("consentdesk://call?number=%2B49151%0012345678", "control"),
        ("consentdesk://call?number=%FF%FE", "UTF-8"),
        ("consentdesk://call?number=%252B4915112345678", "not digits"),
        ("consentdesk://call?number=%25252B4915112345678", "not digits"),
        ("consentdesk://call?number=%D9%A0%D9%A1%D9%A5%D9%A1", "not digits"),
        ("consentdesk://call?number=%EF%BC%90%EF%BC%91%EF%BC%95", "not digits"),
        ("consentdesk://call?number=javascript%3Aalert(1)", "sip:, sips: or tel:"),
        ("consentdesk://call?number=file%3A%2F%2F%2Fetc%2Fpasswd", "sip:, sips: or tel:"),
        ("consentdesk://call?number=%3Cscript%3E", "not digits"),
        ("consentdesk://call?number=" + "1" * 600, "too long"),
        ("tel:+49151١٢٣٤٥٦٧٨", "non-ASCII"),
        ("tel:+4915112345678;ext=1\x07", "control"),
        ("sip:\u202e8765432115194+@pbx", "non-ASCII"),
        ("+4915112345678", "not a URI"),
        ("x" * (MAX_URI + 1), "longer than"),
    ],
)
def test_hostile_uris_are_refused_with_a_reason(uri: str, reason: str) -> None:
    with pytest.raises(InvalidUri, match=reason):
        parse_call_uri(uri, region="DE")


def test_percent_decoding_happens_once() -> None:
    # %252B decodes once to the text "%2B…", which is not a number: refused,
    # never decoded a second time into "+…".
    with pytest.raises(InvalidUri):
        parse_call_uri("consentdesk://call?number=%252B4915112345678", region="DE")
    event = parse_call_uri("consentdesk://call?number=%2B4915112345678&id=a%2541", region="DE")
    assert event.call_id == "a%41"


@given(st.text(max_size=400))
def test_arbitrary_text_gives_an_event_or_invalid_uri(text: str) -> None:
    try:
        event = parse_call_uri(text, region="DE")
    except InvalidUri as exc:
        assert str(exc)
        assert "\n" not in str(exc)
        return
    assert event.source == CallSource.URI


@given(
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=200),
)
def test_arbitrary_query_strings_never_crash(query: str) -> None:
    with contextlib.suppress(InvalidUri):
        parse_call_uri("consentdesk://call?" + query, region="DE")
