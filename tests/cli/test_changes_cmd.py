"""``consentdesk changes`` on the embedded ledger, through real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cli_helpers import Run
from test_cli_commands import CONSENT


def lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_changes_are_ordered_resumable_and_pseudonymous(cli: Run) -> None:
    everything = lines(cli("changes", "--json"))
    *changes, end = everything
    assert changes and set(end) == {"next"}
    cursors = [int(c["data"]["cursor"]) for c in changes]  # type: ignore[index]
    assert cursors == sorted(cursors)
    assert all("subject" not in c["data"] for c in changes)  # type: ignore[operator]
    assert "+49" not in json.dumps(changes)
    # The id is stable: the same subject has the same id on every run.
    assert lines(cli("changes", "--json")) == everything

    middle = str(cursors[len(cursors) // 2])
    rest = lines(cli("changes", "--after", middle, "--json"))[:-1]
    assert rest == [c for c in changes if int(c["data"]["cursor"]) > int(middle)]  # type: ignore[index]

    assert cli(*CONSENT).returncode == 0
    new = lines(cli("changes", "--after", str(end["next"]), "--json", "--numbers"))
    (change, tail) = new
    assert change["type"] == "consent.changed"
    assert change["data"]["subject"] == "+4915112345678"  # type: ignore[index]
    assert change["data"]["state"] == "given"  # type: ignore[index]
    assert int(tail["next"]) == int(change["data"]["cursor"])  # type: ignore[index, call-overload]


def test_follow_prints_what_another_process_captures(cli: Run, seeded: Path) -> None:
    head = lines(cli("changes", "--json"))[-1]["next"]
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "consentdesk",
            "--data-dir",
            str(seeded),
            "changes",
            "--json",
            "--follow",
            "--after",
            str(head),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert cli(*CONSENT).returncode == 0
        assert follower.stdout is not None
        line = json.loads(follower.stdout.readline())
        assert (line["type"], line["data"]["state"]) == ("consent.changed", "given")
    finally:
        follower.terminate()
        follower.wait(timeout=30)
        if follower.stdout is not None:
            follower.stdout.close()


def test_a_bad_cursor_is_a_usage_error(cli: Run) -> None:
    result = cli("changes", "--after", "yesterday", "--json")
    assert result.returncode == 2
    assert "cursor" in result.stderr and "Traceback" not in result.stderr


def test_mail_password_needs_the_mail_settings_first(cli: Run) -> None:
    result = cli("mail", "set-password")
    assert result.returncode == 2
    assert "mail.smtp_host" in result.stderr and "Traceback" not in result.stderr
