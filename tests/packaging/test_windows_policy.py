"""Windows Group Policy → managed settings, with a fake registry reader."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from consentdesk.platform import policy
from consentdesk.platform.config import Config, ConfigError, LockedSetting
from consentdesk.platform.policy import POLICY_KEY, RegistryValue, read_policy


class FakeRegistry:
    """HKLM as a dict of key path → values (key paths compared case-insensitively)."""

    def __init__(self, keys: dict[str, dict[str, RegistryValue]]) -> None:
        self.keys = {path.lower(): (path, values) for path, values in keys.items()}

    def subkeys(self, path: str) -> list[str]:
        prefix = path.lower() + "\\"
        return [
            original[len(prefix) :]
            for lowered, (original, _) in self.keys.items()
            if lowered.startswith(prefix) and "\\" not in lowered[len(prefix) :]
        ]

    def values(self, path: str) -> dict[str, RegistryValue]:
        return dict(self.keys.get(path.lower(), ("", {}))[1])


def registry(**sections: dict[str, RegistryValue]) -> FakeRegistry:
    return FakeRegistry({f"{POLICY_KEY}\\{name}": values for name, values in sections.items()})


def test_values_map_to_site_data_with_registry_types_coerced() -> None:
    reader = registry(
        server={"url": "https://ledger.example.com", "ca_bundle": ""},
        Sidebar={"always_on_top": 0, "clear_after_seconds": "10", "Dock": "left"},
        general={"languages": ["de", "en"], "fallback_languages": "en;de"},
        Locked={"server.url": 1, "general.region": "", "sidebar.dock": "0"},
    )
    assert read_policy(reader) == {
        "server": {"url": "https://ledger.example.com"},
        "sidebar": {"always_on_top": False, "clear_after_seconds": 10, "dock": "left"},
        "general": {"languages": ["de", "en"], "fallback_languages": ["en", "de"]},
        "managed": {"locked": ["server.url"]},
    }


def test_msi_style_string_values_lock_with_text_flags() -> None:
    reader = registry(
        server={"url": "https://ledger.example.com"},
        telephony={"baresip": "127.0.0.1:4444"},
        Locked={"server.url": "1", "telephony.baresip": "true", "general.region": "0"},
    )
    assert read_policy(reader)["managed"] == {"locked": ["server.url", "telephony.baresip"]}


def test_no_policy_key_is_no_policy() -> None:
    assert read_policy(FakeRegistry({})) == {}


@pytest.mark.skipif(sys.platform == "win32", reason="reads the real registry on Windows")
def test_off_windows_the_system_reader_is_absent() -> None:
    assert policy.system_reader() is None
    assert read_policy() == {}


def test_unknown_locked_key_is_a_clear_error() -> None:
    reader = registry(Locked={"server.nope": 1})
    with pytest.raises(ConfigError, match=r"Locked: unknown setting server\.nope"):
        read_policy(reader)


def test_bad_lock_flag_is_a_clear_error() -> None:
    reader = registry(Locked={"server.url": "maybe"})
    with pytest.raises(ConfigError, match=r"Locked\\server\.url must be 1 or 0"):
        read_policy(reader)


@pytest.fixture
def machine_policy(monkeypatch: pytest.MonkeyPatch) -> FakeRegistry:
    reader = registry(
        server={"url": "https://ledger.example.com"},
        general={"region": "at"},
        Locked={"server.url": 1},
    )
    monkeypatch.setattr(policy, "system_reader", lambda: reader)
    return reader


def test_config_load_applies_policy_and_its_locks(
    machine_policy: FakeRegistry, tmp_path: Path
) -> None:
    user_file = tmp_path / "config.toml"
    user_file.write_text(
        '[server]\nurl = "https://elsewhere.example"\n[general]\nregion = "DE"\n', encoding="utf-8"
    )
    config = Config.load(user_file=user_file)
    assert config.get("server.url") == "https://ledger.example.com"
    assert config.source("server.url") == "managed"
    # Not locked: the user's own value still wins over the policy default.
    assert config.get("general.region") == "DE"
    assert config.source("general.region") == "user"
    with pytest.raises(LockedSetting):
        config.set("server.url", "https://mine.example")


def test_policy_outranks_the_site_file(
    machine_policy: FakeRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site.toml"
    site.write_text('[general]\nregion = "CH"\ncompany = "Site GmbH"\n', encoding="utf-8")
    monkeypatch.setenv("CONSENTDESK_SITE_CONFIG", str(site))
    config = Config.load(user_file=tmp_path / "absent.toml")
    assert config.get("general.region") == "AT"
    assert config.get("general.company") == "Site GmbH"


def test_invalid_policy_value_names_the_registry_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    reader = registry(sidebar={"dock": "top"})
    monkeypatch.setattr(policy, "system_reader", lambda: reader)
    with pytest.raises(ConfigError, match=r"HKLM\\Software\\Policies\\ConsentDesk: sidebar\.dock"):
        Config.load(user_file=tmp_path / "absent.toml")


def test_explicit_site_files_skip_the_registry(
    machine_policy: FakeRegistry, tmp_path: Path
) -> None:
    config = Config.load(user_file=tmp_path / "absent.toml", site_files=[])
    assert config.get("server.url") == ""
    assert not config.is_locked("server.url")
