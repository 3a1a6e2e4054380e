"""The legal kernel through the real ``consentdesk`` command: lawful basis and
CCPA requests shape the grid and the Kantara receipt (issue #10)."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import Run

NUMBER = "0151 12345678"
AGENT = ("--agent", "a.test")


def _consent(cli: Run, purpose: str, channel: str, jurisdiction: str) -> None:
    result = cli(
        "consent", NUMBER, "--purpose", purpose, "--channel", channel, "--state", "given",
        "--script", "consent-general", "--lang", "en", "--jurisdiction", jurisdiction, *AGENT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def _receipt(cli: Run, tmp_path: Path) -> dict:
    out = tmp_path / "receipt.json"
    result = cli("export", "--format", "kantara", "--number", NUMBER, "--output", str(out))
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text(encoding="utf-8"))


def _purposes(receipt: dict) -> dict[str, dict]:
    return {p["purpose"].split(":")[0]: p for s in receipt["services"] for p in s["purposes"]}


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


def test_a_contract_purpose_is_information_with_its_basis(cli: Run) -> None:
    grid = cli("status", NUMBER)
    assert grid.returncode == 0, grid.stderr
    row = next(line for line in grid.stdout.splitlines() if "Service and contract" in line)
    assert "Contract" in row and "unknown" not in row
    refused = cli(
        "consent", NUMBER, "--purpose", "service-updates", "--channel", "email",
        "--state", "given", "--script", "consent-general", "--lang", "en", *AGENT,
    )  # fmt: skip
    assert refused.returncode != 0
    assert refused.stderr.count("\n") == 1 and "rests on contract, not consent" in refused.stderr
