"""Backup and restore as documented (packaging/server/README.md), rehearsed for real:
``pg_dump -Fc`` of a live ledger, ``pg_restore`` into a fresh database, and
``consentdesk db verify`` passes on the copy, which serves the same records."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from server_records import CATALOGUE, NUMBER, SCRIPTS, consent
from server_support import REPO, postgres_database, seed_users

from consentdesk.server import db
from consentdesk.server.store import Store

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not shutil.which("pg_dump"), reason="needs the PostgreSQL client tools"),
]
GUIDE = REPO / "packaging" / "server" / "README.md"


def consentdesk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consentdesk", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "CONSENTDESK_DATABASE"},
    )


def test_the_guide_names_the_rehearsed_commands() -> None:
    guide = GUIDE.read_text()
    for command in ("pg_dump --format=custom", "pg_restore --no-owner", "consentdesk db verify"):
        assert command in guide


def test_a_dump_restores_into_a_fresh_database_that_verifies(tmp_path: Path) -> None:
    dump = tmp_path / "ledger.dump"
    with postgres_database("cdbackup") as live, postgres_database("cdrestore") as copy:
        engine = db.make_engine(live)
        db.upgrade(engine)
        tokens = seed_users(engine)
        store = Store(engine, catalogue=CATALOGUE, scripts=SCRIPTS)
        alice = store.authenticate(tokens["alice"])
        for i in range(20):
            store.capture(alice, consent(agent="alice", call_id=f"call-{i}"))
        history = [e.event_id for e in store.history(alice, NUMBER, call_id=None)]
        engine.dispose()

        dumped = subprocess.run(
            ["pg_dump", "--format=custom", "--file", str(dump), live],
            capture_output=True,
            text=True,
        )
        assert dumped.returncode == 0, dumped.stderr
        restored = subprocess.run(
            ["pg_restore", "--no-owner", "--exit-on-error", "--dbname", copy, str(dump)],
            capture_output=True,
            text=True,
        )
        assert restored.returncode == 0, restored.stderr

        verified = consentdesk("db", "verify", "--database", copy)
        assert verified.returncode == 0, verified.stderr
        assert verified.stdout.strip() == "OK 20 entries"
        engine = db.make_engine(copy)
        db.check_schema(engine)  # the copy is at this server's schema
        store = Store(engine, catalogue=CATALOGUE, scripts=SCRIPTS)
        alice = store.authenticate(tokens["alice"])  # tokens came along
        assert [e.event_id for e in store.history(alice, NUMBER, call_id=None)] == history
        engine.dispose()
