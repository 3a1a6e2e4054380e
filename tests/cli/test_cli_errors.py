"""Every user mistake: a one-line reason on stderr, a non-zero exit, nothing recorded."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from cli_helpers import Run, entry_count, run_cli, verified_count

from consentdesk.stores.ledger import FILE_NAME


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], fragment: str, *, code: int = 2
) -> None:
    assert "Traceback" not in result.stderr
    assert result.returncode == code, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("consentdesk")
    assert fragment in lines[0]
    assert result.stdout == ""


CONSENT = {
    "number": "0151 12345678",
    "--purpose": "marketing-offers",
    "--channel": "phone",
    "--state": "given",
    "--script": "consent-general",
    "--lang": "en",
    "--agent": "a.test",
    "--agent-name": "Alex Test",
}
REQUEST = {
    "number": "0151 12345678",
    "--type": "access",
    "--jurisdiction": "gdpr",
    "--agent": "a.test",
}


def consent_args(**changes: str | None) -> list[str]:
    return _args(["consent"], CONSENT, changes)


def request_args(**changes: str | None) -> list[str]:
    return _args(["request", "create"], REQUEST, changes)


def _args(head: list[str], base: dict[str, str], changes: dict[str, str | None]) -> list[str]:
    values = dict(base)
    for key, value in changes.items():
        option = key if key == "number" else "--" + key.replace("_", "-")
        if value is None:
            values.pop(option)
        else:
            values[option] = value
    args = [*head]
    if "number" in values:
        args.append(values.pop("number"))
    for option, value in values.items():
        args += [option, value]
    return args


TOMORROW = (date.today() + timedelta(days=2)).isoformat()

MISTAKES = [
    (["status", "12ab"], "not a phone number"),
    (["status", "+49 123"], "not a valid phone number"),
    (["status", "x" * 80], "too long"),
    (["history", ""], "empty"),
    (["status"], "required: NUMBER"),
    (["status", "0151 12345678", "--color"], "unrecognized arguments: --color"),
    (["nonsense"], "invalid choice: 'nonsense'"),
    (["request"], "required: ACTION"),
    (["ledger"], "required: ACTION"),
    (consent_args(number="0049"), "phone number"),
    (consent_args(purpose="telepathy"), "unknown purpose 'telepathy'"),
    (consent_args(purpose="call-recording", channel="email"), "does not apply to channel email"),
    (consent_args(channel="pigeon"), "unknown channel 'pigeon'"),
    (consent_args(state="maybe"), "unknown state 'maybe'"),
    (consent_args(state="expired"), "unknown state 'expired'"),
    (consent_args(script="no-such-script"), "unknown script 'no-such-script'"),
    (consent_args(script="request-access"), "for privacy requests"),
    (consent_args(state="withdrawn"), "needs a withdrawal script"),
    (consent_args(jurisdiction="lgpd"), "unknown jurisdiction 'lgpd'"),
    (consent_args(lang="english"), "not a two-letter language code"),
    (consent_args(purpose="sale-sharing", channel="online"), "does not apply under gdpr"),
    # A contract purpose is information, never asked as consent (lawful basis drives it).
    (
        consent_args(purpose="service-updates", channel="sms"),
        "rests on contract, not consent",
    ),
    (consent_args(agent="  "), "agent is required"),
    (consent_args(agent=None), "required: --agent"),
    (consent_args(script=None, lang=None), "required: --script, --lang"),
    (request_args(type="gossip"), "unknown request type 'gossip'"),
    (request_args(type="opt-out-sale-sharing"), "is not a request under EU GDPR"),
    (request_args(jurisdiction="pipeda"), "unknown jurisdiction 'pipeda'"),
    (request_args(received="31.01.2025"), "is not a date like 2025-01-31"),
    (request_args(received="2025-02-30"), "is not a date like 2025-01-31"),
    (request_args(received=TOMORROW), "is in the future"),
    (request_args(number="+1 999"), "phone number"),
    (request_args(type=None), "required: --type"),
    (request_args(note="x" * 2500), "over 2000 characters"),
]


@pytest.mark.parametrize(
    ("args", "fragment"), MISTAKES, ids=[shlex.join(a)[:60] for a, _ in MISTAKES]
)
def test_mistake_is_one_line_and_records_nothing(
    cli: Run, seeded: Path, args: list[str], fragment: str
) -> None:
    before = entry_count(seeded)
    assert_one_line_error(cli(*args), fragment)
    assert entry_count(seeded) == before


def test_bad_config_file_names_file_and_key(cli: Run, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[general]\nregion = "Germany"\n', encoding="utf-8")
    result = cli("--config", str(config), "status", "0151 12345678")
    assert_one_line_error(result, "general.region")
    assert str(config) in result.stderr


def test_unreadable_toml_config(cli: Run, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[general\n", encoding="utf-8")
    assert_one_line_error(cli("--config", str(config), "request", "list"), "not valid TOML")


def test_verify_without_a_ledger(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    assert_one_line_error(run_cli("ledger", "verify", data_dir=missing), "no ledger at")
    assert not missing.exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"not a database at all\n" * 50, b"SQLite format 3\x00" + b"\x00" * 200],
    ids=["empty", "text", "foreign-sqlite"],
)
@pytest.mark.parametrize(
    "args", [["status", "0151 12345678"], ["demo"], ["ledger", "verify"], ["request", "list"]]
)
def test_corrupt_ledger_is_refused_and_left_alone(
    tmp_path: Path, content: bytes, args: list[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    ledger = data / FILE_NAME
    ledger.write_bytes(content)
    assert_one_line_error(run_cli(*args, data_dir=data), str(ledger), code=1)
    assert ledger.read_bytes() == content


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    plain = tmp_path / "file"
    plain.write_text("x", encoding="utf-8")
    assert_one_line_error(run_cli("demo", data_dir=plain), str(plain), code=1)


def run_read_only(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with *data_dir* truly read-only.

    Permission bits do not stop root, so as root the folder is bind-mounted
    read-only in a private user and mount namespace (``unshare``).
    """
    command = [sys.executable, "-m", "consentdesk", "--data-dir", str(data_dir), *args]
    if os.geteuid() != 0:
        data_dir.chmod(0o555)
        for child in data_dir.iterdir():
            child.chmod(0o444)
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        finally:
            data_dir.chmod(0o755)
            for child in data_dir.iterdir():
                child.chmod(0o644)
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed to make a read-only folder as root"
    script = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
    return subprocess.run(
        [unshare, "--map-root-user", "--mount", "sh", "-c", script, "sh", str(data_dir), *command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_read_only_empty_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    result = run_read_only(data, "demo")
    assert_one_line_error(result, "read-only", code=1)
    assert list(data.iterdir()) == []


def test_read_only_data_dir_with_a_ledger(seeded: Path) -> None:
    before = (seeded / FILE_NAME).read_bytes()
    result = run_read_only(seeded, *consent_args())
    assert_one_line_error(result, "read-only", code=1)
    assert (seeded / FILE_NAME).read_bytes() == before
    assert verified_count(seeded) > 0
