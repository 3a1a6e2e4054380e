"""The settings registry: defaults, site and user files, locking, errors, saving."""

from __future__ import annotations

from pathlib import Path

import pytest

from consentdesk.platform.config import SETTINGS, Config, ConfigError, LockedSetting


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def load(user: Path, *site: Path) -> Config:
    return Config.load(user_file=user, site_files=list(site))


@pytest.fixture
def user(tmp_path: Path) -> Path:
    return tmp_path / "user" / "config.toml"


def test_defaults_apply_without_any_file(user: Path) -> None:
    config = load(user)
    for setting in SETTINGS:
        assert config.get(setting.key) == setting.default
        assert config.source(setting.key) == "default"
        assert not config.is_locked(setting.key)


def test_site_file_overrides_defaults(tmp_path: Path, user: Path) -> None:
    site = write(tmp_path / "site.toml", '[general]\ncompany = "Stadtwerke Nord"\nregion = "at"\n')
    config = load(user, site)
    assert config.get("general.company") == "Stadtwerke Nord"
    assert config.get("general.region") == "AT"  # parsed: upper-cased
    assert config.source("general.company") == "site"


def test_user_file_overrides_site(tmp_path: Path, user: Path) -> None:
    site = write(tmp_path / "site.toml", '[general]\ncompany = "Stadtwerke Nord"\n')
    user.parent.mkdir()
    write(user, '[general]\ncompany = "Team Blue"\nlanguages = ["de", "en"]\n')
    config = load(user, site)
    assert config.get("general.company") == "Team Blue"
    assert config.get("general.languages") == ("de", "en")
    assert config.source("general.company") == "user"


def test_later_site_file_wins_over_earlier(tmp_path: Path, user: Path) -> None:
    first = write(tmp_path / "a.toml", '[sidebar]\ndock = "left"\n')
    second = write(tmp_path / "b.toml", '[sidebar]\ndock = "right"\n')
    assert load(user, first, second).get("sidebar.dock") == "right"


def test_locked_key_wins_over_user_and_cannot_be_set(tmp_path: Path, user: Path) -> None:
    site = write(
        tmp_path / "site.toml",
        '[server]\nurl = "https://consent.example.net"\n\n'
        '[managed]\nlocked = ["server.url", "general.region"]\n',
    )
    user.parent.mkdir()
    write(user, '[server]\nurl = "https://elsewhere.example.org"\n[general]\nregion = "US"\n')
    config = load(user, site)
    assert config.get("server.url") == "https://consent.example.net"
    assert config.is_locked("server.url")
    assert config.source("server.url") == "managed"
    # Locked without a site value: the built-in default holds, not the user's.
    assert config.get("general.region") == "DE"
    with pytest.raises(LockedSetting, match=r"server\.url"):
        config.set("server.url", "https://mine.example.org")
    assert config.get("server.url") == "https://consent.example.net"


def test_bad_toml_names_the_file(tmp_path: Path, user: Path) -> None:
    site = write(tmp_path / "site.toml", "[general\ncompany = 1\n")
    with pytest.raises(ConfigError, match=r"site\.toml: not valid TOML"):
        load(user, site)


def test_unknown_key_names_file_and_key(user: Path) -> None:
    user.parent.mkdir()
    write(user, '[general]\ncolour = "blue"\n')
    with pytest.raises(ConfigError) as info:
        load(user)
    assert str(user) in str(info.value)
    assert "general.colour" in str(info.value)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('[general]\nregion = "Germany"\n', "general.region"),
        ('[general]\njurisdiction = "lgpd"\n', "general.jurisdiction"),
        ('[general]\nlanguages = ["english"]\n', "general.languages"),
        ("[sidebar]\nalways_on_top = 1\n", "sidebar.always_on_top"),
        ("[sidebar]\nclear_after_seconds = -1\n", "sidebar.clear_after_seconds"),
        ('[telephony]\nbaresip = "localhost"\n', "telephony.baresip"),
        ('[server]\nurl = "https://x.example?token=abc"\n', "server.url"),
        ('general = "flat"\n', "[general]"),
    ],
)
def test_bad_value_names_file_and_key(user: Path, body: str, key: str) -> None:
    user.parent.mkdir()
    write(user, body)
    with pytest.raises(ConfigError) as info:
        load(user)
    assert str(user) in str(info.value)
    assert key in str(info.value)


def test_bad_managed_section_names_the_file(tmp_path: Path, user: Path) -> None:
    site = write(tmp_path / "site.toml", '[managed]\nlocked = ["general.colour"]\n')
    with pytest.raises(ConfigError, match=r"site\.toml: \[managed\] locked"):
        load(user, site)


def test_set_rejects_unknown_key_and_bad_value(user: Path) -> None:
    config = load(user)
    with pytest.raises(ConfigError, match=r"general\.colour"):
        config.set("general.colour", "blue")
    with pytest.raises(ConfigError, match=r"sidebar\.dock"):
        config.set("sidebar.dock", "top")
    assert config.get("sidebar.dock") == "right"


def test_save_round_trips_every_kind_of_value(user: Path) -> None:
    config = load(user)
    config.set("general.company", 'Müller & "Söhne" \\ KG')
    config.set("general.fallback_languages", ["de", "en"])
    config.set("sidebar.always_on_top", False)
    config.set("sidebar.clear_after_seconds", 30)
    config.save()
    again = load(user)
    assert again.get("general.company") == 'Müller & "Söhne" \\ KG'
    assert again.get("general.fallback_languages") == ("de", "en")
    assert again.get("sidebar.always_on_top") is False
    assert again.get("sidebar.clear_after_seconds") == 30
    assert again.user == config.user
    assert not list(user.parent.glob("*.tmp"))


def test_save_keeps_site_values_out_of_the_user_file(tmp_path: Path, user: Path) -> None:
    site = write(tmp_path / "site.toml", '[general]\ncompany = "Stadtwerke Nord"\n')
    config = load(user, site)
    config.set("sidebar.dock", "left")
    config.save()
    assert "company" not in user.read_text(encoding="utf-8")
    assert load(user, site).get("general.company") == "Stadtwerke Nord"
