"""``consentdesk support-bundle``: what goes in, and that nothing private does."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from consentdesk import __version__
from consentdesk.cli import main
from consentdesk.platform import logs

SECRETS_AND_PERSONAL_DATA = (
    "+4915112345678",
    "15112345678",
    "anna.schmidt@example.com",
    "Anna Schmidt",
    "agent-0815",
    "s3cr3t",
    "svc-user",
    "tenant-42",
)


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user with a site file, a user file with personal bits, and an old log with a leak."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    site = tmp_path / "site.toml"
    site.write_text(
        '[server]\nurl = "https://svc-user:s3cr3t@ledger.example.com/api?tenant=tenant-42"\n'
        '[managed]\nlocked = ["server.url"]\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("CONSENTDESK_SITE_CONFIG", str(site))
    user = tmp_path / "home" / "config.toml"
    user.parent.mkdir()
    user.write_text(
        '[general]\nagent = "agent-0815"\nagent_name = "Anna Schmidt"\nregion = "AT"\n',
        encoding="utf-8",
    )
    log_dir = logs.default_log_dir()
    log_dir.mkdir(parents=True)
    # A line written without the filter (an older build, say) still must not leak.
    (log_dir / "consentdesk.log.1").write_text(
        "INFO consentdesk.telephony pop for +4915112345678 (anna.schmidt@example.com)\n",
        encoding="utf-8",
    )
    path = logs.setup_logging()
    import logging

    logging.getLogger("consentdesk.gui").info("sidebar started for sip:015112345678@pbx")
    logs.teardown_logging()
    assert path.is_file()
    return user


def bundle_members(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as bundle:
        return {name: bundle.read(name).decode("utf-8") for name in bundle.namelist()}


@pytest.mark.qt  # the bundle records the Qt version
def test_bundle_holds_logs_versions_and_config_with_sources(
    machine: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "bundle.zip"
    assert main(["--config", str(machine), "support-bundle", "--output", str(output)]) == 0
    assert capsys.readouterr().out.strip() == str(output)
    members = bundle_members(output)
    assert set(members) == {
        "README.txt",
        "versions.json",
        "config.json",
        "paths.json",
        "logs/consentdesk.log",
        "logs/consentdesk.log.1",
    }
    versions = json.loads(members["versions.json"])
    assert versions["consentdesk"] == __version__
    assert versions["python"].count(".") == 2
    assert versions["qt"]["qt_runtime"].startswith("6.")
    assert versions["os"] == "Linux"
    config = json.loads(members["config.json"])
    assert config["server.url"] == {
        "value": "https://[redacted]@ledger.example.com/api?tenant=[redacted]",
        "source": "managed",
        "locked": True,
    }
    assert config["general.region"] == {"value": "AT", "source": "user", "locked": False}
    assert config["general.agent_name"]["value"] == "[redacted]"
    assert config["sidebar.dock"] == {"value": "right", "source": "default", "locked": False}
    assert json.loads(members["paths.json"])["user_config"] == "~/config.toml"
    assert "sidebar started for sip:[redacted]@pbx" in members["logs/consentdesk.log"]
    assert "pop for [redacted-number]" in members["logs/consentdesk.log.1"]


def test_no_secret_or_personal_data_anywhere_in_the_bundle(machine: Path, tmp_path: Path) -> None:
    output = tmp_path / "bundle.zip"
    assert main(["--config", str(machine), "support-bundle", "--output", str(output)]) == 0
    raw = output.read_bytes()
    with zipfile.ZipFile(output) as bundle:
        texts = [bundle.read(name).decode("utf-8") for name in bundle.namelist()]
    for needle in SECRETS_AND_PERSONAL_DATA:
        assert all(needle not in text for text in texts), needle
        # Stored names and comments are plain bytes in the archive, too.
        assert needle.encode() not in raw, needle
    assert all(str(tmp_path / "home") not in text for text in texts)


def test_default_output_lands_in_the_current_folder(
    machine: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["--config", str(machine), "support-bundle"]) == 0
    written = Path(capsys.readouterr().out.strip())
    assert written.parent == tmp_path
    assert written.name.startswith("consentdesk-support-") and written.suffix == ".zip"
    assert zipfile.is_zipfile(written)


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("missing-folder/bundle.zip", "does not exist"),
        ("bundle.txt", "must name a .zip file"),
    ],
)
def test_bad_output_is_one_clear_line(
    machine: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    output: str,
    message: str,
) -> None:
    code = main(["--config", str(machine), "support-bundle", "--output", str(tmp_path / output)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not list(tmp_path.glob("*.zip")) and not list(tmp_path.glob(".support-*"))
