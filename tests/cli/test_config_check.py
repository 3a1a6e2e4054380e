"""``consentdesk config check [FILE]`` names file, line and key, and runs when others can't."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import run_cli
from test_cli_errors import assert_one_line_error

SHIPPED = Path(__file__).resolve().parents[2] / "resources" / "desktop" / "config.toml"
BROKEN = """\
# Site settings
region = "AT"

[general]
regoin = "AT"
agent = 5

[sidebar]
dock = "left"
always_on_top = "yes"
"""


def _env(tmp_path: Path, site: Path) -> dict[str, str]:
    return {"CONSENTDESK_SITE_CONFIG": str(site), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}


def test_check_names_file_line_and_key_of_every_mistake(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(BROKEN, encoding="utf-8")
    result = run_cli("config", "check", str(site), data_dir=None, env=_env(tmp_path, site))
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"{site}:2: region is outside any [section] (put it under [general], as general.region)",
        f"{site}:5: general.regoin is not a known setting (did you mean general.region?)",
        f"{site}:6: general.agent must be text",
        f"{site}:10: sidebar.always_on_top must be true or false",
    ]


def test_check_reads_the_site_and_user_files_without_an_argument(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text('[server]\nurl = "https://ledger.example.com"\n', encoding="utf-8")
    user = tmp_path / "user.toml"
    user.write_text("[sidebar]\nclear_after_seconds = 99999\n", encoding="utf-8")
    result = run_cli(
        "--config", str(user), "config", "check", data_dir=None, env=_env(tmp_path, site)
    )
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"OK: {site} (1 setting)",
        f"{user}:2: sidebar.clear_after_seconds must be a whole number of seconds from 0 to 3600",
    ]


def test_check_runs_when_the_broken_file_stops_every_other_command(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text('[general\nregion = "DE"\n', encoding="utf-8")
    env = _env(tmp_path, site)
    status = run_cli("status", "+4915112345678", data_dir=tmp_path / "data", env=env)
    assert_one_line_error(status, f"{site}:1: not valid TOML")
    assert "config check" not in status.stderr  # one problem: nothing more to list
    result = run_cli("config", "check", data_dir=None, env=env)
    assert result.returncode == 1
    assert result.stdout.startswith(f"{site}:1: not valid TOML: ")


def test_one_line_error_points_to_check_when_there_is_more(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(BROKEN, encoding="utf-8")
    result = run_cli(
        "status", "+4915112345678", data_dir=tmp_path / "data", env=_env(tmp_path, site)
    )
    assert_one_line_error(result, f"{site}:2: region is outside any [section]")
    assert "(and 3 more: run `consentdesk config check`)" in result.stderr


def test_shipped_site_config_checks_clean(tmp_path: Path) -> None:
    result = run_cli("config", "check", str(SHIPPED), data_dir=None, env=_env(tmp_path, SHIPPED))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"OK: {SHIPPED} (0 settings)\n"


def test_check_of_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    result = run_cli("config", "check", str(missing), data_dir=None, env=_env(tmp_path, missing))
    assert_one_line_error(result, f"{missing}: no such file")


def test_check_refuses_a_managed_section_in_the_users_own_file(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text('[sidebar]\ndock = "left"\n\n[managed]\nlocked = []\n', encoding="utf-8")
    site = tmp_path / "absent.toml"
    result = run_cli(
        "--config", str(user), "config", "check", data_dir=None, env=_env(tmp_path, site)
    )
    assert result.returncode == 1
    assert result.stdout == f"{user}:4: [managed] belongs in the site file\n"
