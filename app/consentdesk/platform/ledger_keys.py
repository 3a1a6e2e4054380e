"""The embedded ledger's signing key and its newest checkpoints, kept in the OS keyring.

Kept outside the ledger file on purpose: whoever can rewrite the file cannot
also take back a checkpoint the keyring (or the team server) already holds.
The key is per ledger (named by its origin); checkpoints are per ledger
*path*, so a file replaced by another ledger is noticed too.
"""

from __future__ import annotations

import keyring.errors

from consentdesk.platform.secrets import SERVICE, KeyringUnavailable, _backend


def _get(username: str) -> str | None:
    try:
        return _backend().get_password(SERVICE, username)
    except keyring.errors.KeyringError as exc:
        raise KeyringUnavailable(f"the OS keyring cannot be read: {exc}") from None


def _set(username: str, value: str) -> None:
    try:
        _backend().set_password(SERVICE, username, value)
    except keyring.errors.KeyringError as exc:
        raise KeyringUnavailable(f"the OS keyring cannot store the ledger's data: {exc}") from None


def get_key(origin: str) -> str | None:
    return _get(f"ledger-key:{origin}")


def set_key(origin: str, private_key: str) -> None:
    _set(f"ledger-key:{origin}", private_key)


def get_checkpoint(ledger_path: str, kind: str = "own") -> str | None:
    """The newest checkpoint note kept for the ledger at *ledger_path*.

    *kind* ``own``: the desk's own signed checkpoint; ``cosigned``: the last
    one a team server cosigned.
    """
    return _get(f"ledger-checkpoint-{kind}:{ledger_path}")


def set_checkpoint(ledger_path: str, note: str, kind: str = "own") -> None:
    _set(f"ledger-checkpoint-{kind}:{ledger_path}", note)
