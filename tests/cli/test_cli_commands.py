"""Every ledger command on good input, through a real ``consentdesk`` process."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from datetime import date
from pathlib import Path

from cli_helpers import Run, run_cli, verified_count

from consentdesk import __version__
from consentdesk.domain.catalogue import load_catalogue
from consentdesk.domain.references import is_valid_reference
from consentdesk.stores.demo import DEMO_CALLER, DEMO_COMPANY
from consentdesk.stores.ledger import FILE_NAME

CONSENT = [
    "consent",
    "0151 12345678",
    "--purpose",
    "customer-survey",
    "--channel",
    "email",
    "--state",
    "given",
    "--script",
    "consent-general",
    "--lang",
    "de",
    "--agent",
    "a.test",
    "--agent-name",
    "Alex Test",
]


def test_version(tmp_path: Path) -> None:
    result = run_cli("--version", data_dir=None)
    assert result.returncode == 0
    assert result.stdout.strip() == f"consentdesk {__version__}"


def test_demo_is_idempotent(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = run_cli("demo", "--json", data_dir=data)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert DEMO_CALLER in summary["subjects"]
    assert summary["consents_added"] > 10
    assert summary["requests_added"] >= 3
    count = verified_count(data)
    assert count >= summary["consents_added"] + summary["requests_added"]

    second = run_cli("demo", data_dir=data)
    assert second.returncode == 0, second.stderr
    assert "0 consent events and 0 requests added" in second.stdout
    assert verified_count(data) == count


def test_status_table_shows_grid_and_requests(cli: Run) -> None:
    result = cli("status", "+49 151 12345678")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Anna Schmidt" in out
    assert "K-100234" in out
    for purpose in load_catalogue():
        assert purpose.title in out
    assert re.search(r"Offers and news from us\s+given to \d{4}-\d\d-\d\d", out)
    assert "withdrawn" in out
    assert "expired" in out
    assert "Open privacy requests" in out
    assert re.search(r"RQ-\w{4}-\w{4}-\w{4}\s+access\s+GDPR\s+in-progress", out)


def test_status_json_is_the_subject_status(cli: Run) -> None:
    result = cli("status", "0151 12345678", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["subject"]["number"] == DEMO_CALLER
    catalogue = load_catalogue()
    assert len(status["cells"]) == sum(len(p.channels) for p in catalogue)
    states = {(c["purpose"], c["channel"]): c["state"] for c in status["cells"]}
    assert states[("marketing-offers", "email")] == "withdrawn"
    assert states[("personalised-offers", "email")] == "expired"
    assert states[("partner-offers", "phone")] == "refused"  # the correction won
    assert [r["type"] for r in status["requests"]] == ["access"]


def test_status_of_a_number_never_seen_is_all_unknown(cli: Run) -> None:
    result = cli("status", "+49 30 98765432", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert {c["state"] for c in status["cells"]} == {"unknown"}
    assert status["requests"] == []


def test_numbers_are_read_in_the_configured_region(cli: Run, tmp_path: Path) -> None:
    config = tmp_path / "us.toml"
    config.write_text('[general]\nregion = "US"\n', encoding="utf-8")
    result = cli("--config", str(config), "status", "(415) 555-0132", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["subject"]["display_name"] == "Emily Carter"


def test_history_lists_every_event_with_its_script_hash(cli: Run) -> None:
    result = cli("history", "+4915112345678", "--json")
    assert result.returncode == 0, result.stderr
    events = json.loads(result.stdout)
    assert len(events) >= 8
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    for event in events:
        notice = event["notice"]
        assert notice["sha256"] == hashlib.sha256(notice["text"].encode()).hexdigest()
        assert DEMO_COMPANY in notice["text"]
    corrections = [e for e in events if e["corrects"]]
    assert len(corrections) == 1
    assert corrections[0]["corrects"] in {e["event_id"] for e in events}

    table = cli("history", "+49 151 12345678")
    assert table.returncode == 0, table.stderr
    assert "withdrawal-general v1 de" in table.stdout
    assert "corrects" in table.stdout


def test_consent_renders_the_script_with_config_values(cli: Run, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[general]\ncompany = "Stadtwerke Nord"\nagent_name = "Petra Lang"\n', encoding="utf-8"
    )
    from_config = CONSENT[: CONSENT.index("--agent-name")]  # the name comes from the file
    result = cli("--config", str(config), *from_config, "--call-id", "call-77", "--json")
    assert result.returncode == 0, result.stderr
    recorded = json.loads(result.stdout)
    event, receipt = recorded["event"], recorded["receipt"]
    notice = event["notice"]
    assert "Stadtwerke Nord" in notice["text"]
    assert "Petra Lang" in notice["text"]
    assert "Kundenbefragungen" in notice["text"] or "E-Mail" in notice["text"]
    assert notice["sha256"] == hashlib.sha256(notice["text"].encode()).hexdigest()
    assert (notice["script_id"], notice["language"]) == ("consent-general", "de")
    assert (event["subject"], event["state"], event["call_id"]) == (
        DEMO_CALLER,
        "given",
        "call-77",
    )
    assert event["valid_until"] is not None
    assert receipt["duplicate"] is False

    status = json.loads(cli("status", DEMO_CALLER, "--json").stdout)
    cell = next(
        c for c in status["cells"] if (c["purpose"], c["channel"]) == ("customer-survey", "email")
    )
    assert cell["state"] == "given"
    assert cell["event"]["event_id"] == event["event_id"]


def test_consent_table_output_and_withdrawal(cli: Run) -> None:
    given = cli(*CONSENT)
    assert given.returncode == 0, given.stderr
    assert re.search(
        r"Recorded: given for customer-survey by email .* ledger entry \d+", given.stdout
    )
    assert re.search(r"sha256 [0-9a-f]{64}", given.stdout)
    withdrawn = [*CONSENT]
    withdrawn[withdrawn.index("given")] = "withdrawn"
    withdrawn[withdrawn.index("consent-general")] = "withdrawal-general"
    result = cli(*withdrawn, "--lang", "en")
    assert result.returncode == 0, result.stderr
    assert "withdrawal-general v1 (en)" in result.stdout


def test_consent_falls_back_to_the_configured_language(cli: Run) -> None:
    args = [*CONSENT]
    args[args.index("de")] = "fr"
    result = cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["event"]["notice"]["language"] == "en"


def test_ccpa_consent_under_the_ccpa(cli: Run) -> None:
    result = cli(
        "consent", "+1 415 555 0132", "--purpose", "sale-sharing", "--channel", "online",
        "--state", "refused", "--script", "consent-general", "--lang", "en",
        "--agent", "m.rivera", "--agent-name", "Maria Rivera", "--jurisdiction", "ccpa",
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["event"]["jurisdiction"] == "ccpa"


def test_request_create_prints_reference_and_due_date(cli: Run) -> None:
    result = cli(
        "request", "create", "0151 12345678", "--type", "erasure", "--jurisdiction", "gdpr",
        "--received", "2025-01-31", "--agent", "a.test", "--note", "closing the account",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    reference = re.search(r"Reference (RQ-\S+)", result.stdout)
    assert reference and is_valid_reference(reference.group(1))
    assert "Due 2025-02-28" in result.stdout  # one month after 31 January

    listed = json.loads(cli("request", "list", "--json").stdout)
    mine = next(r for r in listed if r["reference"] == reference.group(1))
    assert (mine["subject"], mine["type"], mine["note"]) == (
        DEMO_CALLER,
        "erasure",
        "closing the account",
    )


def test_request_create_json_under_the_ccpa(cli: Run) -> None:
    result = cli(
        "request", "create", "+1 415 555 0132", "--type", "access", "--jurisdiction", "ccpa",
        "--agent", "m.rivera", "--call-id", "call-9", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    request = json.loads(result.stdout)
    received = date.fromisoformat(request["received"])
    assert (date.fromisoformat(request["due"]) - received).days == 45
    assert request["acknowledge_by"] is not None
    assert request["status"] == "received"
    assert request["call_id"] == "call-9"


def test_request_list_open_and_all(cli: Run) -> None:
    everything = json.loads(cli("request", "list", "--json").stdout)
    open_only = json.loads(cli("request", "list", "--open", "--json").stdout)
    assert len(everything) == 4
    assert {r["status"] for r in open_only} <= {"received", "verifying", "in-progress", "extended"}
    assert len(open_only) == 3
    dues = [r["due"] for r in everything]
    assert dues == sorted(dues)

    table = cli("request", "list", "--open")
    assert table.returncode == 0, table.stderr
    assert re.search(r"erasure\s+GDPR\s+verifying\s+\S+\s+\S+\s+OVERDUE \d+ d", table.stdout)
    assert re.search(r"access\s+GDPR\s+in-progress\s+\S+\s+\S+\s+[0-3] d left", table.stdout)
    assert "completed" not in table.stdout
    assert "completed" in cli("request", "list").stdout


def test_request_list_on_an_empty_ledger(tmp_path: Path) -> None:
    result = run_cli("request", "list", "--open", data_dir=tmp_path / "empty")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "No open privacy requests."


def test_data_dir_from_the_environment(seeded: Path) -> None:
    result = run_cli(
        "status", DEMO_CALLER, "--json", data_dir=None, env={"CONSENTDESK_DATA_DIR": str(seeded)}
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["subject"]["display_name"] == "Anna Schmidt"


def test_ledger_verify_ok(cli: Run, seeded: Path) -> None:
    result = cli("ledger", "verify")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"OK: \d+ events verified\n", result.stdout)
    before = verified_count(seeded)
    assert cli(*CONSENT).returncode == 0
    assert verified_count(seeded) == before + 1


def test_ledger_verify_names_the_first_broken_link(cli: Run, seeded: Path) -> None:
    path = seeded / FILE_NAME
    raw = sqlite3.connect(path)
    try:
        # Lift the append-only guard the way a tamperer would, then edit entry 3.
        raw.execute("DROP TRIGGER entries_no_update")
        raw.execute("UPDATE entries SET body = replace(body, 'a.meyer', 'x.other') WHERE seq = 3")
        raw.commit()
    finally:
        raw.close()
    result = cli("ledger", "verify")
    assert result.returncode == 1
    assert result.stdout.startswith("BROKEN: entry 3: ")
    assert "2 entries before it verified" in result.stdout
    assert "Traceback" not in result.stderr


def test_ledger_verify_names_a_stray_index_row(cli: Run, seeded: Path) -> None:
    raw = sqlite3.connect(seeded / FILE_NAME)
    try:
        raw.execute(
            "INSERT INTO consent_index (subject, seq, purpose, channel, state, event_id)"
            " VALUES ('+4915112345678', 999, 'marketing-offers', 'phone', 'given', 'forged')"
        )
        raw.commit()
    finally:
        raw.close()
    result = cli("ledger", "verify")
    assert result.returncode == 1
    assert re.fullmatch(r"BROKEN: consent index .*\(\d+ entries verified\)\n", result.stdout)


def test_status_and_history_reads_are_in_the_read_access_log(cli: Run, seeded: Path) -> None:
    def reads() -> list[tuple[str, str, str]]:
        conn = sqlite3.connect(f"{(seeded / FILE_NAME).absolute().as_uri()}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT json_extract(body, '$.reader'), subject, json_extract(body, '$.what')"
                " FROM entries WHERE kind = 'read-log' ORDER BY seq"
            ).fetchall()
        finally:
            conn.close()
        return [tuple(r) for r in rows]

    before = reads()
    env = {"CONSENTDESK_SITE_CONFIG": str(seeded / "site.toml")}
    (seeded / "site.toml").write_text('[general]\nagent = "t.tester"\n', encoding="utf-8")
    assert run_cli("status", DEMO_CALLER, data_dir=seeded, env=env).returncode == 0
    assert run_cli("history", DEMO_CALLER, "--json", data_dir=seeded, env=env).returncode == 0
    assert reads()[len(before) :] == [
        ("t.tester", DEMO_CALLER, "status"),
        ("t.tester", DEMO_CALLER, "detail"),
    ]


def test_a_script_that_reads_the_name_needs_the_agents_name(cli: Run) -> None:
    """The agent id never stands in for the name read out: that text becomes the proof."""
    without = [a for a in CONSENT if a not in ("--agent-name", "Alex Test")]
    result = cli(*without)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--agent-name" in result.stderr
    named = cli(*CONSENT, "--json")
    assert named.returncode == 0, named.stderr
    text = json.loads(named.stdout)["event"]["notice"]["text"]
    assert "Alex Test" in text and "a.test" not in text
