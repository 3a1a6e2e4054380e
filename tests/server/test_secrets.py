"""The sign-in token: OS keyring per server URL, environment where there is no keyring."""

from __future__ import annotations

import os
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from consentdesk.platform import secrets
from consentdesk.platform.secrets import KeyringUnavailable

SERVER = "https://ledger.example.org"


def test_token_per_server_in_the_keyring(memory_keyring: object) -> None:
    secrets.set_token(SERVER + "/", " cdt_one ")
    secrets.set_token("https://other.example.org", "cdt_two")
    assert secrets.get_token(SERVER) == "cdt_one"
    assert secrets.resolve_token(SERVER) == "cdt_one"
    secrets.delete_token(SERVER)
    secrets.delete_token(SERVER)  # signing out twice is fine
    assert secrets.get_token(SERVER) is None
    assert secrets.get_token("https://other.example.org") == "cdt_two"


def test_an_empty_token_is_not_stored() -> None:
    with pytest.raises(ValueError):
        secrets.set_token(SERVER, "   ")


def test_without_a_keyring_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    keyring.set_keyring(fail.Keyring())
    assert not secrets.keyring_available()
    with pytest.raises(KeyringUnavailable, match="CONSENTDESK_TOKEN"):
        secrets.set_token(SERVER, "cdt_x")
    with pytest.raises(KeyringUnavailable):
        secrets.get_token(SERVER)
    assert secrets.resolve_token(SERVER) is None
    monkeypatch.setenv("CONSENTDESK_TOKEN", "cdt_from_env")
    assert secrets.resolve_token(SERVER) == "cdt_from_env"


def test_the_token_is_never_written_to_disk(memory_keyring: object, tmp_path: Path) -> None:
    token = "cdt_" + "s3cr3t" * 6
    secrets.set_token(SERVER, token)
    roots = [Path(os.environ[v]) for v in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")]
    for root in [*roots, tmp_path]:
        for path in root.rglob("*") if root.exists() else ():
            if path.is_file():
                assert token.encode() not in path.read_bytes(), path
