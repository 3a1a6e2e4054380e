"""Tamper evidence against an insider with write access to the ledger file.

Real ``consentdesk`` processes on a real file, with a keyring shared between
them (a file-backed keyring backend: the OS keyring of a headless test box).
Each tampering an insider could do with sqlite3 in hand must make
``ledger verify`` fail and name the entry or the range.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import run_cli

from consentdesk.domain.codec import link_hash
from consentdesk.stores.ledger import FILE_NAME

HERE = Path(__file__).parent


class Desk:
    def __init__(self, data: Path, keyring_file: Path) -> None:
        self.data = data
        import os

        path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(HERE)) if p)
        site = data.parent / "lead-site.toml"  # a lead's desk: it may open incidents
        site.write_text('[general]\nrole = "lead"\n', encoding="utf-8")
        self.env = {
            "CONSENTDESK_SITE_CONFIG": str(site),
            "PYTHON_KEYRING_BACKEND": "file_keyring.FileKeyring",
            "CONSENTDESK_TEST_KEYRING": str(keyring_file),
            "PYTHONPATH": path,
        }

    def run(self, *args: str) -> tuple[int, str]:
        result = run_cli(*args, data_dir=self.data, env=self.env)
        return result.returncode, result.stdout + result.stderr

    def consent(self, purpose: str, state: str) -> None:
        script = "withdrawal-general" if state == "withdrawn" else "consent-general"
        code, out = self.run(
            "consent", "0151 12345678", "--purpose", purpose, "--channel", "phone",
            "--state", state, "--script", script, "--lang", "de", "--agent", "a.test",
            "--agent-name", "Alex Test",
        )  # fmt: skip
        assert code == 0, out

    def verify(self, *extra: str) -> tuple[int, str]:
        return self.run("ledger", "verify", *extra)

    def sql(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.data / FILE_NAME, isolation_level=None)
        # An insider first removes the append-only guards.
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            conn.execute(f"DROP TRIGGER {name}")
        return conn


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    d = Desk(tmp_path / "data", tmp_path / "keyring.json")
    code, out = d.run("demo")
    assert code == 0, out
    d.consent("customer-survey", "given")  # entries 31..33, one transaction each
    d.consent("customer-survey", "withdrawn")
    code, out = d.run(
        "incident", "open", "--title", "Lost laptop", "--what", "a laptop was stolen",
        "--aware", "2025-03-29 10:00", "--script", "We are sorry.", "--region", "DE",
    )  # fmt: skip
    assert code == 0, out
    code, out = d.verify()
    assert code == 0 and out.startswith("OK: 33 events verified"), out
    yield d


def _delete_tail(conn: sqlite3.Connection, first: int, *, log_too: bool) -> None:
    conn.execute("DELETE FROM consent_index WHERE seq >= ?", (first,))
    conn.execute("DELETE FROM entries WHERE seq >= ?", (first,))
    if log_too:
        conn.execute("DELETE FROM log_checkpoints WHERE size >= ?", (first,))
        conn.execute("DELETE FROM log_nodes WHERE level = 0 AND idx >= ?", (first - 1,))


def _rechain(conn: sqlite3.Connection) -> None:
    """Recompute every chain link, as an insider covering their tracks would."""
    prev = "0" * 64
    rows = conn.execute("SELECT seq, body FROM entries ORDER BY seq").fetchall()
    for seq, body in rows:
        digest = link_hash(prev, body)
        conn.execute(
            "UPDATE entries SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq)
        )
        prev = digest


def test_deleting_the_incident_at_the_tail_names_the_missing_entry(desk: Desk) -> None:
    with desk.sql() as conn:
        _delete_tail(conn, 33, log_too=True)
    code, out = desk.verify()
    assert code == 1
    assert "entries 33..33 are missing" in out and "OS keyring" in out, out


def test_deleting_the_withdrawal_and_incident_names_the_range(desk: Desk) -> None:
    with desk.sql() as conn:
        _delete_tail(conn, 32, log_too=True)
        conn.execute("DELETE FROM consent_cells")
        conn.execute(
            "INSERT INTO consent_cells SELECT subject, purpose, channel, max(seq)"
            " FROM consent_index GROUP BY subject, purpose, channel"
        )
    code, out = desk.verify()
    assert code == 1
    assert "entries 32..33 are missing" in out, out


def test_rewriting_an_entry_and_recomputing_every_hash_names_it(desk: Desk) -> None:
    with desk.sql() as conn:
        body = conn.execute("SELECT body FROM entries WHERE seq = 31").fetchone()[0]
        conn.execute(
            "UPDATE entries SET body = ? WHERE seq = 31", (body.replace("a.test", "b.test"),)
        )
        _rechain(conn)
        conn.execute("DELETE FROM log_nodes")  # and the stored tree, rebuilt below by the desk
    code, out = desk.verify()
    assert code == 1
    assert "entry 31 no longer matches the signed root" in out, out


def test_an_inserted_forged_row_is_named(desk: Desk) -> None:
    with desk.sql() as conn:
        row = conn.execute("SELECT * FROM entries WHERE seq = 31").fetchone()
        conn.execute("UPDATE entries SET seq = seq + 1000 WHERE seq >= 32")
        conn.execute("UPDATE entries SET seq = seq - 999 WHERE seq >= 1000")
        forged = json.loads(row[9])
        forged["event_id"] = "00000000-0000-4000-8000-000000000001"
        forged_body = json.dumps(forged, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        conn.execute(
            "INSERT INTO entries VALUES (32, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row[1],
                forged["event_id"],
                row[3],
                row[4],
                row[5],
                row[6],
                *["0" * 64] * 2,
                forged_body,
            ),
        )
        _rechain(conn)
    code, out = desk.verify()
    assert code == 1
    assert "entry 32 no longer matches the signed root" in out, out


def test_editing_recorded_at_is_named(desk: Desk) -> None:
    with desk.sql() as conn:
        conn.execute("UPDATE entries SET recorded_at = '2020-01-01T00:00:00+00:00' WHERE seq = 32")
    code, out = desk.verify()
    assert code == 1
    assert re.search(r"entry 32 (no longer matches|does not match)", out), out


def test_a_replaced_file_is_caught_by_the_keyring(desk: Desk, tmp_path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (desk.data / (FILE_NAME + suffix)).unlink(missing_ok=True)
    code, out = desk.run("demo")
    assert code == 0, out
    code, out = desk.verify()
    assert code == 1
    assert "the file was replaced" in out or "are missing" in out, out


def test_receipts_verify_and_a_changed_byte_or_another_ledger_does_not(
    desk: Desk, tmp_path: Path
) -> None:
    receipt, page = tmp_path / "receipt.json", tmp_path / "receipt.html"
    code, out = desk.run(
        "receipt", "create", "0151 12345678", "--out", str(receipt), "--html", str(page)
    )
    assert code == 0, out
    code, key = desk.run("ledger", "key")
    assert code == 0, key
    key = key.strip()
    for path in (receipt, page):
        code, out = desk.run("receipt", "verify", str(path), "--key", key)
        assert code == 0 and out.startswith("OK: entries"), out

    text = receipt.read_text(encoding="utf-8")
    doc = json.loads(text)
    # One changed byte in a ledger entry, in the receipt, in the checkpoint.
    entry = doc["evidence"]["entries"][0]
    changes = [
        text.replace(entry["recorded_at"], entry["recorded_at"].replace(":", ";", 1), 1),
        text.replace('"consentType": "EXPLICIT"', '"consentType": "IMPLICIT"', 1),
        text.replace(
            "\\n" + str(doc["evidence"]["checkpoint"].split("\n")[1]) + "\\n",
            "\\n" + str(int(doc["evidence"]["checkpoint"].split("\n")[1]) + 1) + "\\n",
            1,
        ),
    ]
    for n, changed in enumerate(changes):
        assert changed != text, n
        bad = tmp_path / f"bad{n}.json"
        bad.write_text(changed, encoding="utf-8")
        code, out = desk.run("receipt", "verify", str(bad), "--key", key)
        assert code == 1 and out.startswith("INVALID"), (n, out)

    other = Desk(tmp_path / "other", tmp_path / "other-keyring.json")
    assert other.run("demo")[0] == 0
    code, other_key = other.run("ledger", "key")
    assert code == 0
    code, out = desk.run("receipt", "verify", str(receipt), "--key", other_key.strip())
    assert code == 1 and "INVALID" in out, out


def test_captures_after_a_truncation_are_not_signed_and_the_gap_stays_visible(desk: Desk) -> None:
    with desk.sql() as conn:
        _delete_tail(conn, 32, log_too=True)
        conn.execute("DELETE FROM log_nodes")  # the insider rebuilds the stored tree...
    desk.consent("customer-survey", "given")  # ...or lets the desk add to it: 32, 33, 34
    desk.consent("customer-survey", "given")
    desk.consent("customer-survey", "given")
    code, out = desk.verify()
    assert code == 1, out
    assert "no longer matches the signed root is in 32..33" in out, out
    with desk.sql() as conn:
        signed = [r[0] for r in conn.execute("SELECT size FROM log_checkpoints WHERE size > 31")]
    assert signed == []  # the desk vouched for none of the new state
