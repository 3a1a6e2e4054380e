"""The team ledger's verifiable log on PostgreSQL, checked by ``consentdesk db verify``.

Captures go through the real store and appender into a real PostgreSQL
database with the server's log key set; an insider with database access then
tampers with the rows, and ``db verify`` (a real process) must name the entry
or the range.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_records import CATALOGUE, SCRIPTS, consent
from server_support import postgres_database, seed_users
from sqlalchemy import Engine, text

from consentdesk.domain.checkpoint import Signer
from consentdesk.domain.codec import GENESIS, link_hash
from consentdesk.domain.model import ConsentState
from consentdesk.server import db, log_store
from consentdesk.server.store import Store

SIGNER = Signer.generate("ledger.test.example")
ENTRIES = 6


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Engine]]:
    monkeypatch.setenv(log_store.KEY_ENV, SIGNER.text())
    with postgres_database("cdlog") as url:
        engine = db.make_engine(url)
        db.upgrade(engine)
        tokens = seed_users(engine)
        store = Store(engine, catalogue=CATALOGUE, scripts=SCRIPTS)
        viewer = store.authenticate(tokens["alice"])
        for i in range(ENTRIES):
            state = ConsentState.WITHDRAWN if i % 2 else ConsentState.GIVEN
            store.capture(viewer, consent(agent="alice", state=state, call_id=f"c{i}"))
        yield url, engine
        engine.dispose()


def _verify(url: str, *extra: str, key: bool = True) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != log_store.KEY_ENV}
    args = [sys.executable, "-m", "consentdesk", "db", "verify", "--database", url, *extra]
    if key:
        args += ["--key", SIGNER.verifier().text()]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, check=False)
    return done.returncode, done.stdout + done.stderr


def _rechain(conn: object) -> None:
    prev = GENESIS
    rows = conn.execute(text("SELECT seq, body FROM entries ORDER BY seq")).all()  # type: ignore[attr-defined]
    for seq, body in rows:
        digest = link_hash(prev, body)
        conn.execute(  # type: ignore[attr-defined]
            text("UPDATE entries SET prev_hash = :p, hash = :h WHERE seq = :s"),
            {"p": prev, "h": digest, "s": seq},
        )
        prev = digest


def test_an_untouched_database_verifies(ledger: tuple[str, Engine]) -> None:
    code, out = _verify(ledger[0])
    assert code == 0 and f"OK {ENTRIES} entries" in out, out


def test_deleting_the_newest_entries_is_named_against_a_kept_checkpoint(
    ledger: tuple[str, Engine], tmp_path: Path
) -> None:
    url, engine = ledger
    with engine.connect() as conn:
        kept = log_store.newest(conn)
    assert kept is not None
    anchor = tmp_path / "checkpoint.txt"
    anchor.write_text(kept.render(), encoding="utf-8")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM entries WHERE seq >= 5"))
        conn.execute(text("DELETE FROM log_checkpoints WHERE size >= 5"))
        conn.execute(text("DELETE FROM log_nodes WHERE level = 0 AND idx >= 4"))
    code, out = _verify(url, "--checkpoint", str(anchor))
    assert code == 1
    assert f"entries 5..{ENTRIES} are missing" in out, out


def test_a_rewrite_with_recomputed_hashes_is_named(ledger: tuple[str, Engine]) -> None:
    url, engine = ledger
    with engine.begin() as conn:
        body = conn.execute(text("SELECT body FROM entries WHERE seq = 3")).scalar_one()
        conn.execute(
            text("UPDATE entries SET body = :b WHERE seq = 3"),
            {"b": body.replace('"call_id":"c2"', '"call_id":"c9"')},
        )
        _rechain(conn)
    code, out = _verify(url)
    assert code == 1
    assert "entry 3 no longer matches the signed root" in out, out


def test_a_recorded_at_edit_is_named(ledger: tuple[str, Engine]) -> None:
    url, engine = ledger
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE entries SET recorded_at = recorded_at - interval '1 hour' WHERE seq = 4")
        )
    code, out = _verify(url)
    assert code == 1
    assert "entry 4 no longer matches the signed root" in out, out


def test_a_forged_checkpoint_is_caught(ledger: tuple[str, Engine]) -> None:
    url, engine = ledger
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM entries WHERE seq = 6"))
        conn.execute(text("DELETE FROM log_checkpoints WHERE size >= 5"))
        conn.execute(text("DELETE FROM log_nodes"))
        forged = Signer.generate("ledger.test.example")
        log_store.extend(conn, forged)  # a head the insider signed with their own key
    code, out = _verify(url)
    assert code == 1
    assert "forged" in out, out


def test_a_rotated_key_verifies_with_the_old_public_key_kept(
    ledger: tuple[str, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, engine = ledger
    rotated = Signer.generate("ledger.test.example")
    monkeypatch.setenv(log_store.KEY_ENV, rotated.text())
    store = Store(engine, catalogue=CATALOGUE, scripts=SCRIPTS)
    viewer = store.authenticate(store.create_token("alice"))
    store.capture(viewer, consent(agent="alice", call_id="after-rotation"))
    with engine.connect() as conn:
        newest = log_store.newest(conn)
    assert newest is not None and newest.checkpoint().size == ENTRIES + 1

    env = {**os.environ, log_store.KEY_ENV: rotated.text()}
    args = [sys.executable, "-m", "consentdesk", "db", "verify", "--database", url]
    only_new = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    assert only_new.returncode == 1 and "forged" in only_new.stderr, only_new.stderr
    env[log_store.PUBLIC_KEYS_ENV] = SIGNER.verifier().text()
    both = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    assert both.returncode == 0 and f"OK {ENTRIES + 1} entries" in both.stdout, both.stderr


def test_an_inserted_forged_row_is_named(ledger: tuple[str, Engine]) -> None:
    url, engine = ledger
    columns = [c.name for c in db.entries.c if c.name not in ("seq", "event_id")]
    listed = ", ".join(columns)
    with engine.begin() as conn:
        conn.execute(text("UPDATE entries SET seq = seq + 1000 WHERE seq >= 3"))
        conn.execute(text("UPDATE entries SET seq = seq - 999 WHERE seq >= 1000"))
        conn.execute(
            text(
                f"INSERT INTO entries (seq, event_id, {listed})"  # noqa: S608 (fixed names)
                f" SELECT 3, :e, {listed} FROM entries WHERE seq = 2"
            ),
            {"e": "00000000-0000-4000-8000-000000000003"},
        )
        _rechain(conn)
    code, out = _verify(url)
    assert code == 1
    assert "entry 3 no longer matches the signed root" in out, out
