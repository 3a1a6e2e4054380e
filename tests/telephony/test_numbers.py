"""Caller numbers from SIP/tel URIs, name-addrs and dialled forms → one E.164."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentdesk.telephony.numbers import InvalidCaller, parse_caller

ERIKA = "+4915112345678"

SAME_LINE_DE = [
    "+4915112345678",
    "015112345678",
    "0151 1234 5678",
    "0049 151 12345678",
    "+49 (0)151-1234-5678",
    "sip:+4915112345678@pbx.example.com",
    "sips:+4915112345678@pbx.example.com:5061;transport=tls",
    "sip:015112345678@192.0.2.10;user=phone",
    "sip:0049151%2012345678@pbx;user=phone",
    "sip:+4915112345678;npdi;rn=+4915100000000@gw.example.com;user=phone",
    "sip:+4915112345678:secret@pbx.example.com",
    "sip:+4915112345678@pbx.example.com?Subject=hello",
    '"Erika Mustermann" <sip:+4915112345678@pbx.example.com>;tag=abc123',
    "Erika <sip:015112345678@pbx;user=phone>",
    "<sip:+4915112345678@pbx>",
    "tel:+49-151-1234-5678",
    "tel:+49-151-1234-5678;ext=12",
    "tel:015112345678;phone-context=+49",
    "TEL:+4915112345678",
]


@pytest.mark.parametrize("text", SAME_LINE_DE)
def test_every_form_maps_to_the_same_e164(text: str) -> None:
    caller = parse_caller(text, region="DE")
    assert caller.number == ERIKA


def test_us_number_with_extension_and_region() -> None:
    assert parse_caller("tel:+1-415-555-0100;ext=1", region="DE").number == "+14155550100"
    assert parse_caller("(415) 555-0100", region="US").number == "+14155550100"
    assert parse_caller("sip:4155550100@pbx;user=phone", region="US").number == "+14155550100"


def test_display_name_from_name_addr_with_escapes() -> None:
    caller = parse_caller(r'"Erika \"E\" M." <sip:+4915112345678@pbx>', region="DE")
    assert caller.display_name == 'Erika "E" M.'
    assert parse_caller("sip:+4915112345678@pbx", region="DE", display_name="X").display_name == "X"


def test_display_name_is_cleaned_and_bounded() -> None:
    caller = parse_caller(
        "sip:+4915112345678@pbx", region="DE", display_name="A\u200bB" + "x" * 500
    )
    assert len(caller.display_name) <= 128


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "anonymous",
        "Restricted",
        "sip:anonymous@anonymous.invalid",
        '"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1',
        "sip:anonymous@pbx.example.com",
        "sip:+4915112345678@anonymous.invalid",
        "sip:@pbx.example.com",
        "sip:pbx.example.com",
        "tel:;phone-context=+49",
    ],
)
def test_withheld_callers_have_no_number(text: str) -> None:
    caller = parse_caller(text, region="DE")
    assert caller.number is None
    assert caller.raw == ""
    assert caller.withheld


@pytest.mark.parametrize(
    ("text", "raw"),
    [("sip:201@pbx", "201"), ("sip:alice@pbx.example.com", "alice"), ("12", "12")],
)
def test_extensions_and_names_keep_raw_for_display(text: str, raw: str) -> None:
    caller = parse_caller(text, region="DE")
    assert caller.number is None
    assert caller.raw == raw
    assert not caller.withheld


@pytest.mark.parametrize(
    "text",
    [
        "javascript:alert(1)",
        "file:///etc/passwd",
        "http://evil.example/+4915112345678",
        "+49151\x0012345678",
        "0151\n12345678",
        "+49151" + "1" * 600,
        "٠١٥١١٢٣٤٥٦٧٨",  # Arabic-Indic digits
        "０１５１１２３４５６７８",  # fullwidth digits
        "+49 151 12345678 OR 1=1",
        '"unterminated <sip:+4915112345678@pbx>',
        "Name <sip:+49151@pbx> <sip:x@y>",
        "sip:%ff%fe@pbx",
        "sip:%00@pbx",
        "tel:%2B49151*12345678",
    ],
)
def test_hostile_caller_text_is_refused(text: str) -> None:
    with pytest.raises(InvalidCaller):
        parse_caller(text, region="DE")


@given(st.text(max_size=300))
def test_never_raises_anything_but_invalid_caller(text: str) -> None:
    try:
        caller = parse_caller(text, region="DE")
    except InvalidCaller:
        return
    assert caller.number is None or caller.number.startswith("+")
    assert caller.raw.isprintable()
