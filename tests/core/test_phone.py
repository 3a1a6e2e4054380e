"""Numbers typed without + : the trunk-prefix rule (libphonenumber metadata)."""

from __future__ import annotations

import pytest

from consentdesk.domain import phone
from consentdesk.domain.phone import InvalidNumber


@pytest.mark.parametrize(
    ("text", "region", "e164"),
    [
        ("0151 12345678", "DE", "+4915112345678"),
        ("+49 151 12345678", "DE", "+4915112345678"),
        ("0049 151 12345678", "DE", "+4915112345678"),
        ("+49 151 12345678", "US", "+4915112345678"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("1 415 555 2671", "US", "+14155552671"),
        ("416 555 0199", "CA", "+14165550199"),
        ("06 12 34 56 78", "FR", "+33612345678"),
    ],
)
def test_international_and_national_forms(text: str, region: str, e164: str) -> None:
    assert phone.normalize(text, region) == e164


@pytest.mark.parametrize(
    ("text", "region", "prefix"),
    [
        ("49 151 12345678", "DE", "0"),  # the country code without +
        ("(415) 555-2671", "DE", "0"),  # a US number typed at a German desk
        ("151 12345678", "DE", "0"),
        ("20 7946 0958", "GB", "0"),
        ("44 20 7946 0958", "GB", "0"),
    ],
)
def test_no_plus_and_no_trunk_prefix_is_refused_with_a_hint(
    text: str, region: str, prefix: str
) -> None:
    with pytest.raises(InvalidNumber, match=rf"no \+ and no trunk prefix {prefix}\)") as err:
        phone.normalize(text, region)
    assert "international form with + and the country code, for example +" in str(err.value)


def test_trunk_prefix_comes_from_the_metadata() -> None:
    assert phone.trunk_prefix("DE") == "0"
    assert phone.trunk_prefix("gb") == "0"
    assert phone.trunk_prefix("RU") == "8"
    assert phone.trunk_prefix("US") is None  # NANP: ten-digit dialling needs no 1
    assert phone.trunk_prefix("CA") is None
    assert phone.trunk_prefix("IT") is None  # no trunk prefix: the 0 is part of the number
