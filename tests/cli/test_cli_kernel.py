"""The legal kernel through the real ``consentdesk`` command: lawful basis and
CCPA requests shape the grid and the Kantara receipt (issue #10)."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import Run, run_cli
from test_cli_errors import assert_one_line_error

from consentdesk.domain.capture import consent_event
from consentdesk.domain.catalogue import load_catalogue
from consentdesk.domain.model import Channel, ConsentEvent, ConsentState, Jurisdiction
from consentdesk.domain.scripts import load_scripts, render, script_by_id, script_context

NUMBER = "0151 12345678"
AGENT = ("--agent", "a.test")
SPEAKER = (*AGENT, "--agent-name", "Alex Test")  # consent-general reads the name out


def _event() -> ConsentEvent:
    catalogue = load_catalogue()
    purpose = catalogue.get("marketing-offers")
    script = script_by_id(load_scripts(), "consent-general", "en")
    context = script_context(
        language="en", company="Example", agent_name="Al", purposes=[purpose],
        channels=[Channel.PHONE],
    )  # fmt: skip
    return consent_event(
        catalogue=catalogue, purpose=purpose.id, channel=Channel.PHONE,
        state=ConsentState.GIVEN, rendered=render(script, context), agent="alice",
        jurisdiction=Jurisdiction.GDPR, subject="+4915112345678",
    )  # fmt: skip


def _consent(cli: Run, purpose: str, channel: str, jurisdiction: str) -> None:
    result = cli(
        "consent", NUMBER, "--purpose", purpose, "--channel", channel, "--state", "given",
        "--script", "consent-general", "--lang", "en", "--jurisdiction", jurisdiction, *SPEAKER,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def _receipt(cli: Run, tmp_path: Path) -> list[dict]:
    """The customer's receipts, exported from a team lead's desk (one per consent)."""
    out = tmp_path / "receipt.json"
    site = tmp_path / "lead-site.toml"
    site.write_text('[general]\nrole = "lead"\n', encoding="utf-8")
    result = cli(
        "export", "--format", "kantara", "--number", NUMBER, "--output", str(out),
        env={"CONSENTDESK_SITE_CONFIG": str(site)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    receipts: list[dict] = json.loads(out.read_text(encoding="utf-8"))
    return receipts


def _ts27560(cli: Run, tmp_path: Path) -> list[dict]:
    """The TS 27560 records of every capture, exported (and schema-checked) by a lead."""
    out = tmp_path / "records.json"
    site = tmp_path / "lead-site.toml"
    site.write_text('[general]\nrole = "lead"\n', encoding="utf-8")
    result = cli(
        "export", "--format", "ts27560", "--output", str(out),
        env={"CONSENTDESK_SITE_CONFIG": str(site)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    records: list[dict] = json.loads(out.read_text(encoding="utf-8"))["records"]
    return records


def _purposes(receipts: list[dict]) -> dict[str, dict]:
    return {
        p["purpose"].split(":")[0]: p
        for receipt in receipts
        for s in receipt["services"]
        for p in s["purposes"]
    }


def _cell(cli: Run, purpose: str, channel: str) -> dict:
    result = cli("status", NUMBER, "--json")
    assert result.returncode == 0, result.stderr
    cells = json.loads(result.stdout)["cells"]
    return next(c for c in cells if (c["purpose"], c["channel"]) == (purpose, channel))


def test_an_opt_out_of_sale_stops_the_cell_and_leaves_the_receipt(cli: Run, tmp_path: Path) -> None:
    _consent(cli, "sale-sharing", "online", "ccpa")
    _consent(cli, "marketing-offers", "email", "ccpa")
    sale = "Selling or sharing your personal information"
    before = _purposes(_receipt(cli, tmp_path))
    assert before[sale]["thirdPartyDisclosure"] is True  # a sale discloses by nature
    assert before[sale]["thirdPartyName"]
    assert _cell(cli, "sale-sharing", "online")["state"] == "given"

    made = cli(
        "request", "create", NUMBER, "--type", "opt-out-sale-sharing",
        "--jurisdiction", "ccpa", "--json", *AGENT,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    reference = json.loads(made.stdout)["reference"]

    cell = _cell(cli, "sale-sharing", "online")
    assert cell["state"] == "opted-out" and cell["request"]["reference"] == reference
    grid = cli("status", NUMBER)
    assert f"opted out {reference}" in grid.stdout
    after = _purposes(_receipt(cli, tmp_path))
    assert sale not in after  # no longer in force
    assert "Offers and news from us" in after

    # The ISO/IEC TS 27560 records say so too: the sale record ends with the opt-out.
    records = _ts27560(cli, tmp_path)
    purpose_of = {  # this caller's records (the demo has other customers too)
        (r["processing"]["purposes"][0]["purpose_id"], r["processing"]["purposes"][0]["channel"]): r
        for r in records
        if r["header"]["pii_principal_id"] == "tel:+4915112345678"
    }
    sold = purpose_of[("sale-sharing", "online")]
    last = sold["events"][-1]
    assert last["event_state"] == "dpv:ConsentWithdrawn"
    assert (last["request_reference"], last["request_type"]) == (reference, "opt-out-sale-sharing")
    assert sold["header"]["last_event"] == last["event_time"]
    offers = purpose_of[("marketing-offers", "email")]
    assert offers["events"][-1]["event_state"] == "dpv:ConsentGiven"  # not stopped


def test_a_contract_purpose_is_information_with_its_basis(cli: Run) -> None:
    grid = cli("status", NUMBER)
    assert grid.returncode == 0, grid.stderr
    row = next(line for line in grid.stdout.splitlines() if "Service and contract" in line)
    assert "Contract" in row and "unknown" not in row
    refused = cli(
        "consent", NUMBER, "--purpose", "service-updates", "--channel", "email",
        "--state", "given", "--script", "consent-general", "--lang", "en", *SPEAKER,
    )  # fmt: skip
    assert refused.returncode != 0
    assert refused.stderr.count("\n") == 1 and "rests on contract, not consent" in refused.stderr


def test_the_outbox_command_shows_what_the_server_refused(tmp_path: Path) -> None:
    from consentdesk.stores.outbox import ItemKind, Outbox

    url = "https://ledger.example.org"
    config = tmp_path / "config.toml"
    config.write_text(f'[server]\nurl = "{url}"\n', encoding="utf-8")
    data = tmp_path / "data"
    box = Outbox.for_server(data, url)
    waiting, refused = _event(), _event()
    for event in (waiting, refused):
        box.add(ItemKind.CONSENT, event.event_id, event, subject=event.subject, agent="alice")
    (item,) = [i for i in box.pending() if i.key == refused.event_id]
    box.mark_rejected(item, "422 the lawful basis of 'marketing-offers' is consent, not contract")
    box.close()

    result = run_cli("--config", str(config), "outbox", data_dir=data)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("PENDING") and str(waiting.event_id) in line for line in lines)
    (rejected,) = [line for line in lines if line.startswith("REJECTED")]
    assert str(refused.event_id) in rejected and "lawful basis" in rejected
    as_json = json.loads(run_cli("--config", str(config), "outbox", "--json", data_dir=data).stdout)
    assert [r["state"] for r in as_json] == ["pending", "rejected"]


def test_the_outbox_command_without_a_server_says_so(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    result = run_cli("--config", str(config), "outbox", data_dir=tmp_path / "data")
    assert_one_line_error(result, "no team server is set")
