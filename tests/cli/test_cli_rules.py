"""Statutory calendars, the CCPA confirmation clock and ambiguous numbers, through
the real ``consentdesk`` command."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from cli_helpers import Run, entry_count
from test_cli_errors import assert_one_line_error

from consentdesk.domain import rules
from consentdesk.domain.calendars import Calendar
from consentdesk.domain.model import Jurisdiction, RequestType

# UTC+14 and UTC-11: at every instant their dates differ by one day.
AHEAD, BEHIND = "Pacific/Kiritimati", "Pacific/Pago_Pago"


def config_file(tmp_path: Path, *, timezone: str = "", region: str = "DE") -> str:
    path = tmp_path / f"config-{region}-{timezone.replace('/', '-') or 'system'}.toml"
    path.write_text(f'[general]\ntimezone = "{timezone}"\nregion = "{region}"\n', "utf-8")
    return str(path)


def local_today(zone: str) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(zone)).date()


def create(cli: Run, config: str, number: str, *extra: str) -> tuple[int, str, str]:
    result = cli(
        "--config", config, "request", "create", number, "--agent", "a.test", *extra
    )  # fmt: skip
    return result.returncode, result.stdout, result.stderr


# --- numbers ---------------------------------------------------------------------------


def test_ambiguous_numbers_are_refused_with_a_hint(cli: Run, seeded: Path, tmp_path: Path) -> None:
    before = entry_count(seeded)
    germany = config_file(tmp_path, region="DE")
    for typed in ("49 151 12345678", "(415) 555-2671"):
        result = cli("--config", germany, "status", typed)
        assert_one_line_error(result, "ambiguous number (no + and no trunk prefix 0)")
        assert "international form with + and the country code, for example +49" in result.stderr
    uk = config_file(tmp_path, region="GB")
    assert_one_line_error(cli("--config", uk, "status", "20 7946 0958"), "trunk prefix 0")
    result = cli(
        "--config", germany, "request", "create", "49 151 12345678", "--type", "access",
        "--jurisdiction", "gdpr", "--agent", "a.test",
    )  # fmt: skip
    assert_one_line_error(result, "ambiguous number")
    assert entry_count(seeded) == before


def test_national_and_north_american_forms_keep_working(cli: Run, tmp_path: Path) -> None:
    germany = config_file(tmp_path, region="DE")
    found = json.loads(cli("--config", germany, "status", "0151 12345678", "--json").stdout)
    assert found["subject"]["number"] == "+4915112345678"
    us = config_file(tmp_path, region="US")
    result = cli("--config", us, "status", "(415) 555-2671", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["subject"]["number"] == "+14155552671"


# --- which day: general.timezone ------------------------------------------------------


def test_received_is_checked_against_the_controller_time_zone(
    cli: Run, seeded: Path, tmp_path: Path
) -> None:
    ahead_today = local_today(AHEAD)  # always a day after Pago Pago's date
    args = ("--type", "access", "--jurisdiction", "gdpr", "--received", ahead_today.isoformat())
    before = entry_count(seeded)
    result = cli(
        "--config", config_file(tmp_path, timezone=BEHIND), "request", "create",
        "0151 12345678", "--agent", "a.test", *args,
    )  # fmt: skip
    assert_one_line_error(result, f"{ahead_today.isoformat()} is in the future")
    assert entry_count(seeded) == before
    code, _out, err = create(cli, config_file(tmp_path, timezone=AHEAD), "0151 12345678", *args)
    assert code == 0, err
    assert entry_count(seeded) == before + 1


def test_request_dates_follow_the_controller_calendar(cli: Run, tmp_path: Path) -> None:
    # Received Friday 29 November 2024, the day after Thanksgiving: business days
    # skip California holidays, so the confirmation is due 13 December.
    config = config_file(tmp_path, timezone="America/Los_Angeles", region="US")
    code, out, err = create(
        cli, config, "+1 415 555 2671", "--type", "erasure", "--jurisdiction", "ccpa",
        "--received", "2024-11-29",
    )  # fmt: skip
    assert code == 0, err
    assert "Due 2025-01-13" in out
    assert "Confirm receipt by 2024-12-13 (CCPA Regs §7021)" in out
    expected = rules.acknowledge_by(
        Jurisdiction.CCPA, RequestType.ERASURE, date(2024, 11, 29), Calendar(UTC, "US")
    )
    assert expected == date(2024, 12, 13)


# --- the CCPA confirmation clock ------------------------------------------------------


def test_confirmation_clock_pending_overdue_then_confirmed(cli: Run, tmp_path: Path) -> None:
    config = config_file(tmp_path, timezone="America/Los_Angeles", region="US")
    today = local_today("America/Los_Angeles")
    code, out, err = create(
        cli, config, "+1 415 555 2671", "--type", "access", "--jurisdiction", "ccpa",
        "--received", (today - timedelta(days=30)).isoformat(),
    )  # fmt: skip
    assert code == 0, err
    late = re.search(r"Reference (RQ-\S+)", out)
    code, out, err = create(
        cli, config, "+1 415 555 2672", "--type", "erasure", "--jurisdiction", "ccpa",
    )  # fmt: skip
    assert code == 0, err
    fresh = re.search(r"Reference (RQ-\S+)", out)
    assert late and fresh
    listing = cli("--config", config, "request", "list", "--open").stdout
    rows = {line.split()[0]: line for line in listing.splitlines()[2:]}
    assert "CONFIRM OVERDUE (by " in rows[late.group(1)]
    assert "confirm by " in rows[fresh.group(1)]

    done = cli(
        "--config", config, "request", "confirm", late.group(1), "--how", "email",
        "--agent", "b.lead",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"Receipt of {late.group(1)} confirmed (email)" in done.stdout
    listing = cli("--config", config, "request", "list", "--open").stdout
    row = next(line for line in listing.splitlines() if line.startswith(late.group(1)))
    assert f"confirmed {datetime.now(UTC).date().isoformat()}" in row
    state = next(
        r
        for r in json.loads(cli("--config", config, "request", "list", "--json").stdout)
        if r["reference"] == late.group(1)
    )
    assert state["confirmed_how"] == "email" and state["confirmed_at"]

    again = cli(
        "--config", config, "request", "confirm", late.group(1), "--how", "letter", "--agent", "b"
    )  # fmt: skip
    assert_one_line_error(again, "already confirmed")


def test_confirmation_is_refused_where_the_law_asks_none(cli: Run, tmp_path: Path) -> None:
    config = config_file(tmp_path)
    code, out, err = create(
        cli, config, "0151 12345678", "--type", "access", "--jurisdiction", "gdpr"
    )
    assert code == 0, err
    assert "Confirm receipt" not in out
    reference = re.search(r"Reference (RQ-\S+)", out)
    assert reference
    result = cli(
        "--config", config, "request", "confirm", reference.group(1), "--how", "email",
        "--agent", "a",
    )  # fmt: skip
    assert_one_line_error(result, "needs no confirmation of receipt")
