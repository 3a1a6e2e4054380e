"""A ledger on read-only media: status, history, requests and verify work; writes refuse.

As root, the folder is bind-mounted read-only in a private namespace (see
``run_read_only``), the way a DVD, an archive mount or a read-only share is.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cli_helpers import Run
from test_cli_errors import assert_one_line_error, consent_args, run_read_only

from consentdesk.stores.demo import DEMO_CALLER
from consentdesk.stores.ledger import FILE_NAME, LedgerReadOnly
from consentdesk.stores.ledger_readonly import ReadOnlyLedger, open_ledger_for_reading


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["status", DEMO_CALLER, "--json"], id="status"),
        pytest.param(["history", DEMO_CALLER, "--json"], id="history"),
        pytest.param(["request", "list", "--json"], id="requests"),
    ],
)
def test_read_commands_work_on_read_only_media(seeded: Path, cli: Run, args: list[str]) -> None:
    expected = cli(*args)
    assert expected.returncode == 0, expected.stderr
    before = _files(seeded)
    result = run_read_only(seeded, *args)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(expected.stdout)
    assert json.loads(result.stdout), "the read shows the ledger's data"
    assert _files(seeded) == before, "nothing written, no -wal or -shm left behind"


def test_verify_works_on_read_only_media(seeded: Path, cli: Run) -> None:
    expected = cli("ledger", "verify")
    assert expected.returncode == 0 and expected.stdout.startswith("OK: "), expected.stderr
    before = _files(seeded)
    result = run_read_only(seeded, "ledger", "verify")
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected.stdout
    assert _files(seeded) == before


def test_verify_on_read_only_media_still_finds_tampering(seeded: Path) -> None:
    with sqlite3.connect(seeded / FILE_NAME) as conn:
        triggers = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")
        ]
        for name in triggers:
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute(
            "UPDATE entries SET body = replace(body, '\"given\"', '\"refused\"') WHERE seq = 2"
        )
    conn.close()
    result = run_read_only(seeded, "ledger", "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("BROKEN: entry 2: ")


def test_writes_on_read_only_media_are_refused_in_one_line(seeded: Path) -> None:
    before = _files(seeded)
    assert_one_line_error(run_read_only(seeded, *consent_args()), "read-only", code=1)
    assert _files(seeded) == before


def test_read_only_opening_refuses_writes(seeded: Path) -> None:
    with ReadOnlyLedger(seeded / FILE_NAME) as ledger:
        assert ledger.verify().ok
        with pytest.raises(LedgerReadOnly), ledger._write() as conn:
            conn.execute("DELETE FROM subjects")
        # Closed cleanly, the copy has no write-ahead log: read without locks or index.
        assert ledger.reader_uri().endswith("?mode=ro&immutable=1")


def test_for_reading_opens_a_writable_ledger_as_usual(seeded: Path) -> None:
    with open_ledger_for_reading(seeded) as ledger:
        assert not isinstance(ledger, ReadOnlyLedger)
        assert ledger.count() > 0


def _copy_with_pending_log(seeded: Path, dest: Path, *, with_index: bool) -> None:
    """Copy *seeded* while a writer holds unsaved write-ahead log pages."""
    import shutil

    dest.mkdir()
    conn = sqlite3.connect(seeded / FILE_NAME)
    try:
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute(
            "INSERT INTO subjects VALUES ('+4930111222', NULL, NULL, '2026-01-01T00:00:00+00:00')"
        )
        conn.commit()
        names = [FILE_NAME, f"{FILE_NAME}-wal"] + ([f"{FILE_NAME}-shm"] if with_index else [])
        for name in names:
            shutil.copyfile(seeded / name, dest / name)
    finally:
        conn.close()


def test_pending_write_ahead_log_with_its_index_is_read(seeded: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    _copy_with_pending_log(seeded, copy, with_index=True)
    result = run_read_only(copy, "ledger", "verify")
    assert result.returncode == 0 and result.stdout.startswith("OK: "), result.stderr


def test_pending_write_ahead_log_without_index_is_refused_clearly(
    seeded: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    _copy_with_pending_log(seeded, copy, with_index=False)
    before = _files(copy)
    result = run_read_only(copy, "ledger", "verify")
    assert_one_line_error(result, "unsaved write-ahead log pages", code=1)
    assert _files(copy) == before
