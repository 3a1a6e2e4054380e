"""Request references read aloud to the caller: ``RQ-7KX4-9MPT-3HWC``.

The alphabet leaves out 0/O, 1/I and L, which sound or look alike, and has 31
symbols. The last character is a Damm check character over the quasigroup
``x∘y = 3x + y (mod 31)``: 31 is prime and 3 - 1 is invertible, so the
quasigroup is totally anti-symmetric and every single substitution and every
adjacent transposition gives a reference that does not check.
"""

from __future__ import annotations

import re
import secrets

from consentdesk.domain.model import DomainError

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
PREFIX = "RQ"
GROUP = 4
GROUPS = 3
BODY_LENGTH = GROUP * GROUPS  # random characters plus the check character
MAX_INPUT = 64

_N = len(ALPHABET)
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—_./]+")


def _step(interim: int, value: int) -> int:
    return (3 * interim + value) % _N


def check_character(body: str) -> str:
    """The character that makes ``body + check`` fold to zero."""
    interim = 0
    for ch in body:
        interim = _step(interim, _VALUE[ch])
    return ALPHABET[(-3 * interim) % _N]


def _checks(body: str) -> bool:
    interim = 0
    for ch in body:
        interim = _step(interim, _VALUE[ch])
    return interim == 0


def _format(body: str) -> str:
    groups = [body[i : i + GROUP] for i in range(0, len(body), GROUP)]
    return "-".join([PREFIX, *groups])


def new_reference() -> str:
    """A fresh random reference (about 2.5 × 10^16 possibilities)."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH - 1))
    return _format(body + check_character(body))


def normalize_reference(text: str) -> str:
    """Canonical ``RQ-XXXX-XXXX-XXXX`` form of what an agent typed or heard.

    Case, spaces and dashes do not matter and the ``RQ`` prefix may be left off.
    Raises DomainError saying what is wrong.
    """
    if len(text) > MAX_INPUT:
        raise DomainError("reference is too long — please read it again")
    compact = _SEPARATORS.sub("", text).upper()
    if len(compact) == len(PREFIX) + BODY_LENGTH and compact.startswith(PREFIX):
        compact = compact[len(PREFIX) :]
    if not compact:
        raise DomainError("reference is empty")
    if len(compact) != BODY_LENGTH:
        raise DomainError(
            f"a reference has {BODY_LENGTH} characters after {PREFIX}- "
            f"(got {len(compact)}) — please read it again"
        )
    bad = sorted({ch for ch in compact if ch not in _VALUE})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad)
        raise DomainError(
            f"a reference never contains {shown} (no 0, O, 1, I or L) — please read it again"
        )
    if not _checks(compact):
        raise DomainError("reference check character does not match — please read it again")
    return _format(compact)


def reference_prefix(text: str) -> str | None:
    """The canonical start of a partly typed reference (``rq-kd6x`` → ``RQ-KD6X``).

    None unless it begins with ``RQ`` and has at least one character of the body,
    all from the alphabet, and fewer than a whole reference has.
    """
    compact = _SEPARATORS.sub("", text[:MAX_INPUT]).upper()
    if not compact.startswith(PREFIX):
        return None
    body = compact[len(PREFIX) :]
    if not 0 < len(body) < BODY_LENGTH or any(ch not in _VALUE for ch in body):
        return None
    return _format(body)


def is_valid_reference(text: str) -> bool:
    try:
        normalize_reference(text)
    except DomainError:
        return False
    return True
