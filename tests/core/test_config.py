"""The settings registry: defaults, site and user files, locking, errors, saving."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from consentdesk.platform.config import (
    SETTINGS,
    Config,
    ConfigError,
    LockedSetting,
    check_data,
    key_lines,
    read_source,
)


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
    with pytest.raises(ConfigError, match=r"site\.toml:1: not valid TOML"):
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
        ('general = "flat"\n', "general is outside any [section]"),
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
    with pytest.raises(ConfigError, match=r"site\.toml:2: managed\.locked .*general\.colour"):
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


# --- errors name file, line and key ----------------------------------------------------


def test_error_names_file_line_and_key(tmp_path: Path, user: Path) -> None:
    site = write(
        tmp_path / "site.toml",
        '# IT settings\n[general]\ncompany = "Stadtwerke"\n\n[sidebar]\ndock = "top"\n',
    )
    with pytest.raises(ConfigError) as info:
        load(user, site)
    assert str(info.value).startswith(f"{site}:6: sidebar.dock must be one of right, left")


def test_every_problem_is_reported_with_its_line(tmp_path: Path) -> None:
    site = write(
        tmp_path / "site.toml",
        'region = "AT"\n[general]\ncompnay = "x"\nagent = 5\n[sidebar]\ndock = "left"\n',
    )
    data, lines = read_source(site)
    valid, problems = check_data(data, site, lines)
    assert valid == {"sidebar.dock": "left"}
    assert [(p.line, p.key) for p in problems] == [
        (1, "region"),
        (3, "general.compnay"),
        (4, "general.agent"),
    ]
    assert "put it under [general], as general.region" in str(problems[0])
    assert str(problems[1]).endswith("is not a known setting (did you mean general.company?)")
    assert str(problems[2]) == f"{site}:4: general.agent must be text"


def test_more_problems_are_counted_in_the_one_line(tmp_path: Path, user: Path) -> None:
    site = write(tmp_path / "site.toml", "[general]\nagent = 1\ncompany = 2\n")
    with pytest.raises(ConfigError, match=r"and 1 more: run `consentdesk config check`"):
        load(user, site)


def test_toml_syntax_error_names_the_line(tmp_path: Path, user: Path) -> None:
    site = write(tmp_path / "site.toml", '[general]\ncompany = "a"\nregion = DE\n')
    with pytest.raises(ConfigError, match=r"site\.toml:3: not valid TOML: "):
        load(user, site)


def test_managed_section_in_a_user_file_is_refused(user: Path) -> None:
    user.parent.mkdir()
    write(user, '[sidebar]\ndock = "left"\n\n[managed]\nlocked = ["sidebar.dock"]\n')
    with pytest.raises(ConfigError, match=r"config\.toml:4: \[managed\] belongs in the site"):
        load(user)


def test_key_lines_handles_dotted_keys_and_quoted_headers() -> None:
    text = '[ "general" ]\nregion = "DE"\nsidebar.dock = "left"  # x\n[server]\nurl=""\n'
    assert key_lines(text) == {
        "[general]": 1,
        "general.region": 2,
        "general.sidebar.dock": 3,
        "[server]": 4,
        "server.url": 5,
    }


# --- the shipped site config ---------------------------------------------------------------

SHIPPED = Path(__file__).resolve().parents[2] / "resources" / "desktop" / "config.toml"


def test_shipped_site_config_is_valid_as_shipped(user: Path) -> None:
    config = load(user, SHIPPED)
    assert config.site == {} and config.locked == frozenset()


def _uncomment(text: str, index: int) -> str:
    lines = text.splitlines()
    lines[index] = lines[index].removeprefix("# ")
    return "\n".join(lines) + "\n"


def test_uncommenting_any_key_in_the_shipped_site_config_gives_a_valid_file(
    tmp_path: Path, user: Path
) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    lines = text.splitlines()
    headers = [line for line in lines if line.startswith("[")]
    assert headers == sorted(set(headers), key=headers.index), "each section once"
    assert {h.strip("[]") for h in headers} >= {s.key.split(".")[0] for s in SETTINGS}
    keys = [i for i, line in enumerate(lines) if re.match(r"# [a-z_]+ = ", line)]
    assert len(keys) == len(SETTINGS) + 1  # every setting, and [managed] locked
    for index in keys:
        site = write(tmp_path / "site.toml", _uncomment(text, index))
        config = load(user, site)
        name = lines[index].removeprefix("# ").split(" = ")[0]
        if name == "locked":
            assert config.locked
        else:
            (key,) = config.site
            assert key.endswith(f".{name}") and config.source(key) == "site"
