"""``consentdesk export`` and ``consentdesk incident`` on the embedded ledger."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from review_support import ANNA_CUSTOMER, T0, Clock, Scenario, populate

from consentdesk.cli import main
from consentdesk.domain.export import KANTARA_SCHEMA, TS27560_SCHEMA, load_schema
from consentdesk.domain.review import ReadKind, ReadLogFilter, Role, Viewer
from consentdesk.stores.ledger import FILE_NAME, EmbeddedLedger
from consentdesk.stores.review_sql import SqlReviewSource, incidents


@pytest.fixture
def scenario(data_dir: Path) -> Iterator[Scenario]:
    with EmbeddedLedger(data_dir / FILE_NAME, clock=Clock(T0 + timedelta(days=2))) as led:
        yield populate(led)


def run(data_dir: Path, *argv: str, role: str = "lead") -> int:
    """``consentdesk`` on *data_dir* at a desk whose ``general.role`` is *role*."""
    config = data_dir.parent / f"{role}.toml"
    config.write_text(f'[general]\nagent = "lena"\nrole = "{role}"\n', encoding="utf-8")
    return main(["--data-dir", str(data_dir), "--config", str(config), *argv])


def reads(data_dir: Path) -> list:
    with EmbeddedLedger(data_dir / FILE_NAME) as led:
        return list(SqlReviewSource(led, Viewer("x", Role.ADMIN)).read_log(ReadLogFilter()))


def test_csv_export_of_a_day_for_one_agent(
    data_dir: Path, scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "day.csv"
    code = run(
        data_dir,
        "export",
        "--format",
        "csv",
        "--from",
        "2025-03-03",
        "--agent",
        "anna",
        "--tz",
        "Europe/Berlin",
        "--output",
        str(out),
    )
    assert code == 0
    assert "Wrote 3 actions" in capsys.readouterr().out
    assert out.read_bytes().startswith("\ufeff".encode())  # Excel reads it as UTF-8
    with out.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["agent"] for r in rows} == {"anna"}
    assert all(r["number"].startswith("•") for r in rows)
    assert reads(data_dir) == []  # masked numbers: nothing was read


def test_27560_export_validates_and_is_logged(
    data_dir: Path, scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(data_dir, "export", "--format", "ts27560", "--output", "-") == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, load_schema(TS27560_SCHEMA))
    assert doc["export"]["record_count"] == 4
    # The export itself, then each exported customer's requests (what CCPA stopped).
    logged = reads(data_dir)
    customers = {r["header"]["pii_principal_id"] for r in doc["records"]}
    assert [r.read.what for r in logged] == [ReadKind.EXPORT] * (1 + len(customers))


def test_kantara_receipt_for_one_customer(
    data_dir: Path, scenario: Scenario, tmp_path: Path
) -> None:
    out = tmp_path / "receipt.json"
    number = "0151 1234 5678"
    assert (
        run(data_dir, "export", "--format", "kantara", "--number", number, "--output", str(out))
        == 0
    )
    receipts = json.loads(out.read_text(encoding="utf-8"))
    assert len(receipts) >= 1  # one receipt per consent in force
    for receipt in receipts:
        jsonschema.validate(receipt, load_schema(KANTARA_SCHEMA))
        assert receipt["piiPrincipalId"] == ANNA_CUSTOMER
    assert len({r["consentReceiptID"] for r in receipts}) == len(receipts)
    # The history and the requests (what CCPA requests stopped) are both read.
    logged = reads(data_dir)
    assert [(e.read.subject, e.read.what) for e in logged] == [
        (ANNA_CUSTOMER, ReadKind.EXPORT),
        (ANNA_CUSTOMER, ReadKind.EXPORT),
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "kantara", "--output", "-"], "needs --number"),
        (["--format", "csv", "--from", "yesterday", "--output", "-"], "not a date"),
        (["--format", "csv", "--number", "12", "--output", "-"], "--number"),
        (["--format", "csv", "--tz", "Mars/Olympus", "--output", "-"], "unknown time zone"),
        (["--format", "pdf", "--output", "-"], "invalid choice"),
    ],
)
def test_bad_export_input_is_one_line(
    data_dir: Path,
    scenario: Scenario,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    if "pdf" in argv:  # argparse's own choice check exits with status 2
        with pytest.raises(SystemExit) as info:
            run(data_dir, "export", *argv)
        assert info.value.code == 2
    else:
        assert run(data_dir, "export", *argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_failed_file_export_leaves_nothing_half_written(
    data_dir: Path, scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(data_dir, "export", "--format", "csv", "--output", str(tmp_path)) == 2
    assert "is a folder" in capsys.readouterr().err
    missing = tmp_path / "no-such-folder" / "x.csv"
    assert run(data_dir, "export", "--format", "csv", "--output", str(missing)) == 2
    assert not missing.parent.exists()


def test_incident_from_open_to_close(
    data_dir: Path, scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--tz", "Europe/Berlin"]
    code = run(
        data_dir,
        "incident",
        "open",
        "--title",
        "Mailing to wrong recipients",
        "--what",
        "2,000 addresses in To:",
        "--aware",
        "2025-10-25 10:00",
        "--purpose",
        "marketing-offers",
        "--region",
        "DE",
        "--script",
        "We know about the email sent in error.",
        "--json",
        *base,
    )
    assert code == 0
    opened = json.loads(capsys.readouterr().out)
    short = opened["opened"]["incident_id"][:8]
    assert opened["opened"]["aware_at"] == "2025-10-25T08:00:00+00:00"

    assert run(data_dir, "incident", "tag", short, "--call", "call-99") == 0
    assert run(data_dir, "incident", "tag", short, "--call", "call-99") == 0
    capsys.readouterr()
    code = run(
        data_dir,
        "incident",
        "notify",
        short,
        "--authority",
        "BfDI",
        "--at",
        "2025-10-28 09:30",  # 72 h ended 09:00 CET (clocks went back on the 26th)
        *base,
    )
    assert code == 2 and "reasons for the delay" in capsys.readouterr().err
    code = run(
        data_dir,
        "incident",
        "notify",
        short,
        "--authority",
        "BfDI",
        "--at",
        "2025-10-28 08:30",
        "--reference",
        "K-1",
        *base,
    )
    assert code == 0
    assert "Authority notified 71 h 30 min after awareness" in capsys.readouterr().out
    assert run(data_dir, "incident", "close", short, "--summary", "customers informed") == 0
    assert run(data_dir, "incident", "list", "--open") == 0
    assert "No open incidents." in capsys.readouterr().out
    with EmbeddedLedger(data_dir / FILE_NAME) as led:
        (inc,) = incidents(led)
        assert not inc.is_open and inc.notified is not None
        assert (
            SqlReviewSource(led, Viewer("x", Role.ADMIN)).call_tags(inc.incident_id)[0].call_id
            == "call-99"
        )
        assert led.verify().ok


def test_incident_input_errors(
    data_dir: Path, scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    common = [
        "--title",
        "t",
        "--what",
        "w",
        "--script",
        "s",
        "--region",
        "DE",
        "--tz",
        "Europe/Berlin",
    ]
    assert run(data_dir, "incident", "open", "--aware", "2025-10-26 02:30", *common) == 2
    assert "happens twice" in capsys.readouterr().err
    assert (
        run(
            data_dir,
            "incident",
            "open",
            "--aware",
            "2025-03-01 10:00",
            "--purpose",
            "nope",
            *common,
        )
        == 2
    )
    assert "unknown purpose" in capsys.readouterr().err
    assert run(data_dir, "incident", "close", "deadbeef", "--summary", "x") == 2
    assert "no incident" in capsys.readouterr().err
    assert run(data_dir, "incident", "close", "dead", "--summary", "x") == 2
    assert "first 8 characters" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ("review",),
        ("export", "--format", "csv", "--output", "-"),
        (
            *("incident", "open", "--title", "t", "--what", "w"),
            *("--aware", "2025-03-03 09:00", "--script", "We are aware of an incident. " * 5),
        ),
    ],
    ids=["review", "export", "incident-open"],
)
def test_an_agent_desk_is_refused_the_lead_commands(
    data_dir: Path, scenario: Scenario, argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    before = len(reads(data_dir))
    assert run(data_dir, *argv, role="agent") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("consentdesk") and "team leads and admins" in err
    assert "\n" not in err
    assert len(reads(data_dir)) == before  # nothing was read for it


def test_an_agent_desk_lists_incidents(data_dir: Path, scenario: Scenario) -> None:
    assert run(data_dir, "incident", "list", role="agent") == 0
