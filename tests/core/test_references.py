"""Request references: format, normalisation and the check character."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentdesk.domain.model import DomainError
from consentdesk.domain.references import (
    ALPHABET,
    BODY_LENGTH,
    check_character,
    is_valid_reference,
    new_reference,
    normalize_reference,
    reference_prefix,
)

FORMAT = re.compile(r"RQ-[%s]{4}-[%s]{4}-[%s]{4}" % ((ALPHABET,) * 3))

bodies = st.text(alphabet=ALPHABET, min_size=BODY_LENGTH - 1, max_size=BODY_LENGTH - 1)


def reference(body: str) -> str:
    full = body + check_character(body)
    return f"RQ-{full[:4]}-{full[4:8]}-{full[8:]}"


def test_alphabet_is_unambiguous() -> None:
    assert not set("0O1IL") & set(ALPHABET)
    assert len(set(ALPHABET)) == len(ALPHABET) == 31


def test_new_references_are_well_formed_and_valid() -> None:
    refs = {new_reference() for _ in range(200)}
    assert len(refs) == 200
    for ref in refs:
        assert FORMAT.fullmatch(ref), ref
        assert normalize_reference(ref) == ref


@given(bodies, st.data())
def test_every_single_substitution_is_caught(body: str, data: st.DataObject) -> None:
    full = body + check_character(body)
    pos = data.draw(st.integers(0, len(full) - 1))
    wrong = data.draw(st.sampled_from([c for c in ALPHABET if c != full[pos]]))
    typo = full[:pos] + wrong + full[pos + 1 :]
    assert not is_valid_reference(typo)
    with pytest.raises(DomainError, match="check character does not match"):
        normalize_reference(typo)


@given(bodies, st.data())
def test_every_adjacent_transposition_is_caught(body: str, data: st.DataObject) -> None:
    full = body + check_character(body)
    pos = data.draw(st.integers(0, len(full) - 2))
    if full[pos] == full[pos + 1]:
        return  # swapping equal characters changes nothing
    swapped = full[:pos] + full[pos + 1] + full[pos] + full[pos + 2 :]
    assert not is_valid_reference(swapped)


def test_exhaustive_single_errors_on_one_reference() -> None:
    full = "7KX49MPT3HW"
    full += check_character(full)
    for pos in range(len(full)):
        for c in ALPHABET:
            if c != full[pos]:
                assert not is_valid_reference(full[:pos] + c + full[pos + 1 :])
        if pos + 1 < len(full) and full[pos] != full[pos + 1]:
            assert not is_valid_reference(full[:pos] + full[pos + 1] + full[pos] + full[pos + 2 :])


@given(bodies)
def test_normalisation_ignores_case_spaces_dashes_and_prefix(body: str) -> None:
    ref = reference(body)
    compact = ref.replace("-", "")
    variants = [
        ref.lower(),
        compact,
        compact[2:],
        " ".join(compact[2:]),
        f"  rq {compact[2:6]} – {compact[6:10]}—{compact[10:]} ",
    ]
    for variant in variants:
        assert normalize_reference(variant) == ref


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("  - ", "empty"),
        ("RQ-7KX4-9MPT", "12 characters"),
        ("RQ-7KX4-9MPT-3HWCX", "12 characters"),
        ("RQ-7KX4-9MPT-3HW0", "never contains '0'"),
        ("RQ-7KX4-9MPT-3HWO", "never contains 'O'"),
        ("rq-7kx4-9mpt-3hwl", "never contains 'L'"),
        ("RQ-7KX4-9MPT-3H#1", "never contains '#', '1'"),
        ("x" * 500, "too long"),
    ],
)
def test_bad_references_get_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(DomainError, match=message):
        normalize_reference(text)
    assert not is_valid_reference(text)


def test_all_adjacent_transpositions_from_every_state() -> None:
    # After one character the running check value can be any symbol, so this
    # covers every (state, x, y) the algorithm can meet, not a sample.
    suffix = "ABCDEFGH"
    for first in ALPHABET:
        for x in ALPHABET:
            for y in ALPHABET:
                if x != y:
                    body = first + x + y + suffix
                    swapped = first + y + x + suffix
                    assert check_character(body) != check_character(swapped)


@pytest.mark.parametrize(
    ("typed", "start"),
    [
        ("RQ-KD6X", "RQ-KD6X"),
        ("rq kd6x 9", "RQ-KD6X-9"),
        ("rq-k", "RQ-K"),
        ("RQ", None),  # no body yet: would match every request
        ("KD6X", None),  # without RQ it could be a call id
        ("RQ-KD0X", None),  # 0 is never in a reference
    ],
)
def test_the_start_of_a_reference(typed: str, start: str | None) -> None:
    assert reference_prefix(typed) == start
