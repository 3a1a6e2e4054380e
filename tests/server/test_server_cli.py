"""The server's commands through a real subprocess: serve, db, user, token."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from server_support import REPO, postgres_database, sqlite_url
from sqlalchemy import inspect

from consentdesk.server import db
from consentdesk.server.db import DatabaseError, check_schema

BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"fastapi", "uvicorn", "sqlalchemy", "alembic", "psycopg"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block())
"""


def run(
    *args: str, env: dict[str, str] | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "CONSENTDESK_DATABASE"}
    return subprocess.run(
        [sys.executable, "-m", "consentdesk", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        cwd=REPO,
        timeout=120,
    )


def test_setup_from_nothing_to_a_token(tmp_path: Path) -> None:
    path = tmp_path / "team.db"
    url = sqlite_url(path)
    first = run("db", "upgrade", "--database", url)
    head = db.head_revision()  # the newest migration, whichever it is
    assert first.returncode == 0 and f"empty → {head}" in first.stdout
    again = run("db", "upgrade", env={"CONSENTDESK_DATABASE": url})
    assert again.returncode == 0 and again.stdout.strip() == f"schema {head}"
    added = run("user", "add", "alice", "--role", "agent", "--team", "red", "--database", url)
    assert added.returncode == 0 and added.stdout.strip() == "added agent alice in team red"
    made = run("token", "create", "alice", "--database", url)
    assert made.returncode == 0
    token = made.stdout.strip()
    assert token.startswith("cdt_") and len(token.splitlines()) == 1
    assert "Shown once" in made.stderr
    with sqlite3.connect(path) as conn:
        stored = conn.execute("SELECT token_hash FROM tokens").fetchall()
    assert stored == [(hashlib.sha256(token.encode()).hexdigest(),)]
    for file in tmp_path.iterdir():
        assert token.encode() not in file.read_bytes()
    listed = run("user", "list", "--json", "--database", url)
    assert json.loads(listed.stdout) == [{"name": "alice", "role": "agent", "team": "red"}]
    verified = run("db", "verify", "--database", url)
    assert verified.returncode == 0 and verified.stdout.strip() == "OK 0 entries"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("user", "add", "lea", "--role", "lead"), 2, "a lead needs --team"),
        (("user", "add", "x", "--role", "boss"), 2, "invalid choice"),
        (("token", "create", "nobody"), 1, "no user 'nobody'"),
        (("user", "disable", "nobody"), 1, "no user 'nobody'"),
    ],
)
def test_mistakes_are_one_line(
    tmp_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    url = sqlite_url(tmp_path / "team.db")
    assert run("db", "upgrade", "--database", url).returncode == 0
    result = run(*args, "--database", url)
    assert result.returncode == code and message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 3


def test_database_problems_are_one_line(tmp_path: Path) -> None:
    missing = run("user", "list")
    assert missing.returncode == 2 and "CONSENTDESK_DATABASE" in missing.stderr
    foreign = run("db", "upgrade", "--database", "mysql://localhost/x")
    assert foreign.returncode == 1 and "unsupported database 'mysql'" in foreign.stderr
    down = run("db", "upgrade", "--database", "postgresql://postgres@127.0.0.1:1/x")
    assert down.returncode == 1 and "Connection refused" in down.stderr
    fresh = run("serve", "--database", sqlite_url(tmp_path / "new.db"), "--port", "1")
    assert fresh.returncode == 1 and "run: consentdesk db upgrade" in fresh.stderr
    for result in (missing, foreign, down, fresh):
        assert "Traceback" not in result.stderr


def test_openapi_is_printed_as_committed() -> None:
    result = run("serve", "--openapi")
    assert result.returncode == 0
    assert json.loads(result.stdout) == json.loads(
        (REPO / "resources" / "openapi.json").read_text()
    )


def test_the_desktop_cli_does_without_the_server_extra(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER)
    env = {"PYTHONPATH": f"{blocker}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    assert run("--version", env=env).returncode == 0
    result = run("db", "upgrade", "--database", sqlite_url(tmp_path / "x.db"), env=env)
    assert result.returncode == 2
    assert "needs the server extra: pip install 'consentdesk[server]'" in result.stderr
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, consentdesk.cli as c; c.build_parser();"
            " print(sorted(m for m in ('fastapi', 'sqlalchemy', 'uvicorn') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    assert probe.stdout.strip() == "[]"


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migrations_build_exactly_the_tables_the_code_uses(tmp_path: Path, kind: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    def check(url: str) -> None:
        engine = db.make_engine(url)
        with pytest.raises(DatabaseError, match="db upgrade"):
            check_schema(engine)
        assert db.upgrade(engine) == db.head_revision()
        assert db.upgrade(engine) == db.head_revision()  # a second run changes nothing
        check_schema(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
            tables = set(inspect(conn).get_table_names())
        engine.dispose()
        assert diff == []
        assert tables == {*db.metadata.tables, "alembic_version"}

    if kind == "sqlite":
        check(sqlite_url(tmp_path / "m.db"))
    else:
        with postgres_database("cdmigrate") as url:
            check(url)
