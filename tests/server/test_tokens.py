"""Token lifecycle and enrollment codes: real servers, real databases, the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from server_records import CATALOGUE, NUMBER, SCRIPTS, consent
from server_support import (
    REPO,
    Api,
    ServerProcess,
    postgres_database,
    seed_users,
    wait_until,
    wipe,
)
from sqlalchemy import update

from consentdesk.domain.review import Forbidden, Role
from consentdesk.server import db, tokens
from consentdesk.server.db import enrollment_codes
from consentdesk.server.problems import Problem
from consentdesk.server.store import Store
from consentdesk.stores.http_backend import AuthError, HttpBackend
from consentdesk.stores.outbox import Outbox


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "CONSENTDESK_TOKEN_DAYS"}
    return subprocess.run(
        [sys.executable, "-m", "consentdesk", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        cwd=REPO,
        timeout=120,
    )


def token_id(token: str) -> str:
    return tokens.hash_secret(token)[: tokens.ID_LENGTH]


# --- revocation and disabling on a live desk -------------------------------------------


@pytest.mark.postgres
def test_token_revoke_cuts_a_live_desk_off_at_its_next_request(
    tmp_path: Path, server_process: Callable[..., ServerProcess]
) -> None:
    with postgres_database("cdtokens") as url:
        engine = db.make_engine(url)
        db.upgrade(engine)
        store = Store(engine, catalogue=CATALOGUE, scripts=SCRIPTS)
        store.add_user("alice", Role.AGENT, team="red")
        store.add_user("bert", Role.AGENT, team="red")
        alice, bert = store.create_token("alice", days=30), store.create_token("bert")
        server = server_process(url)
        desk = HttpBackend(server.url, alice, outbox=Outbox.for_server(tmp_path, server.url))
        other = HttpBackend(server.url, bert, outbox=Outbox.for_server(tmp_path / "b", server.url))
        try:
            assert desk.me().name == "alice"
            desk.capture(consent(agent="alice"))
            assert len(desk.sync_once().sent) == 1
            assert other.me().name == "bert"

            listed = cli("token", "list", "--database", url)
            assert listed.returncode == 0, listed.stderr
            row = next(
                line for line in listed.stdout.splitlines() if line.startswith(token_id(alice))
            )
            assert "\talice\tactive\t" in row and "UTC" in row.split("\t")[5]  # last used
            assert alice not in listed.stdout and bert not in listed.stdout

            revoked = cli("token", "revoke", token_id(alice), "--database", url)
            assert revoked.returncode == 0, revoked.stderr
            with pytest.raises(AuthError, match="revoked"):
                desk.me()  # the very next request, no cache to wait out
            with pytest.raises(AuthError):
                desk.status(NUMBER)
            assert other.me().name == "bert"  # only that token

            disabled = cli("user", "disable", "bert", "--database", url)
            assert disabled.returncode == 0, disabled.stderr
            with pytest.raises(Forbidden, match="disabled"):
                other.me()
            states = cli("token", "list", "--user", "alice", "--database", url).stdout
            assert "\trevoked\t" in states
        finally:
            desk.close()
            other.close()
            engine.dispose()


@pytest.mark.postgres
def test_every_process_forgets_a_token_when_it_changes(pg_url: str) -> None:
    """The per-process cache is on only while it hears changes (LISTEN/NOTIFY)."""
    engine, admin = db.make_engine(pg_url), db.make_engine(pg_url)
    wipe(engine)
    issued = seed_users(engine)
    store = Store(engine, catalogue=CATALOGUE, scripts=SCRIPTS)
    cache = store._auth  # the cache under test
    try:
        assert store.authenticate(issued["alice"]).name == "alice"  # starts the listener
        wait_until(lambda: cache.listening, what="the listener", timeout=10)
        store.authenticate(issued["alice"])
        store.authenticate(issued["bert"])
        assert store.cached_viewer(issued["alice"]) is not None

        tokens.revoke(admin, token_id=token_id(issued["alice"]))
        wait_until(lambda: store.cached_viewer(issued["alice"]) is None, what="forget", timeout=2)
        with pytest.raises(Problem, match="revoked"):
            store.authenticate(issued["alice"])

        store.authenticate(issued["bert"])
        Store(admin, catalogue=CATALOGUE, scripts=SCRIPTS).set_disabled("bert", True)
        wait_until(lambda: store.cached_viewer(issued["bert"]) is None, what="forget", timeout=2)
        with pytest.raises(Problem, match="disabled"):
            store.authenticate(issued["bert"])

        # The listening connection dies: the cache is off until it listens again.
        store.authenticate(issued["lena"])
        with admin.begin() as conn:
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'consentdesk-server-auth'"
            )
        wait_until(lambda: not cache.listening, what="the cache to turn off", timeout=5)
        assert store.cached_viewer(issued["lena"]) is None
        assert store.authenticate(issued["lena"]).name == "lena"  # from the database
        wait_until(lambda: cache.listening, what="listening again", timeout=10)
    finally:
        store.stop_listening()
        engine.dispose()
        admin.dispose()


def test_revoke_by_user_and_by_id_mistakes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    store = Store(engine, catalogue=CATALOGUE, scripts=SCRIPTS)
    store.add_user("alice", Role.AGENT, team="red")
    first, second = store.create_token("alice"), store.create_token("alice")
    assert tokens.revoke(engine, user="alice") == 2
    assert tokens.revoke(engine, user="alice") == 0
    for token in (first, second):
        with engine.connect() as conn, pytest.raises(Exception, match="revoked"):
            tokens.lookup(conn, token, tokens.utcnow())
    wrong = cli("token", "revoke", "nothex!", "--database", url)
    assert wrong.returncode != 0 and "hex id" in wrong.stderr and "Traceback" not in wrong.stderr
    missing = cli("token", "revoke", "abcdef123456", "--database", url)
    assert missing.returncode != 0 and "no token abcdef123456" in missing.stderr
    engine.dispose()


def test_expiry_from_the_site_default_and_per_token(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    assert cli("db", "upgrade", "--database", url).returncode == 0
    assert (
        cli(
            "user", "add", "alice", "--role", "agent", "--team", "red", "--database", url
        ).returncode
        == 0
    )
    site = cli("token", "create", "alice", "--database", url, env={"CONSENTDESK_TOKEN_DAYS": "7"})
    forever = cli(
        "token", "create", "alice", "--expires", "0", "--label", "kiosk", "--database", url
    )
    bad = cli("token", "create", "alice", "--database", url, env={"CONSENTDESK_TOKEN_DAYS": "soon"})
    assert site.returncode == 0 and forever.returncode == 0, site.stderr + forever.stderr
    assert bad.returncode != 0 and "CONSENTDESK_TOKEN_DAYS" in bad.stderr
    assert "never expires" in forever.stderr
    week, kiosk = site.stdout.strip(), forever.stdout.strip()
    engine = db.make_engine(url)
    now = tokens.utcnow()
    with engine.connect() as conn:
        assert tokens.lookup(conn, week, now + timedelta(days=6)).name == "alice"
        with pytest.raises(Exception, match="expired"):
            tokens.lookup(conn, week, now + timedelta(days=8))
        assert tokens.lookup(conn, kiosk, now + timedelta(days=3650)).name == "alice"
    listed = {t.id: t for t in tokens.list_tokens(engine)}
    assert listed[token_id(kiosk)].label == "kiosk" and listed[token_id(kiosk)].expires_at is None
    assert listed[token_id(week)].state(now + timedelta(days=8)) == "expired"
    engine.dispose()


# --- enrollment codes ------------------------------------------------------------------


def enroll(client: httpx.Client, code: str, **extra: str) -> httpx.Response:
    return client.post("/v1/enroll", json={"code": code, **extra})


def test_an_enrollment_code_buys_one_token_once(api: Api) -> None:
    code, _ = tokens.create_code(api.engine, "alice", token_days=30)
    assert len(code) == 9 and code[4] == "-"
    with api.client() as client:
        typed = code.lower().replace("-", " ")  # as an agent might type it
        answer = enroll(client, typed, label="desk-17")
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["user"] == {"name": "alice", "role": "agent", "team": "red"}
        assert body["expires_at"] is not None
        me = client.get("/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
        assert me.status_code == 200 and me.json()["name"] == "alice"
        again = enroll(client, code)
        assert again.status_code == 401 and "already used" in again.json()["detail"]
    labels = {t.label for t in tokens.list_tokens(api.engine, user="alice")}
    assert "desk-17" in labels


def test_expired_and_disabled_codes_are_refused(api: Api) -> None:
    old, _ = tokens.create_code(api.engine, "alice", token_days=None, hours=1)
    with api.engine.begin() as conn:
        conn.execute(update(enrollment_codes).values(expires_at=tokens.utcnow()))
    dora, _ = tokens.create_code(api.engine, "dora", token_days=None)  # dora is disabled
    with api.client() as client:
        assert enroll(client, old).status_code == 401
        refused = enroll(client, dora)
        assert refused.status_code == 403
        assert refused.json()["type"].endswith("account-disabled")
        assert enroll(client, "x" * 41).status_code == 422
        assert client.post("/v1/enroll", json=["ABCD-EFGH"]).status_code == 422


def test_wrong_codes_are_rate_limited_across_the_site(api: Api) -> None:
    good, _ = tokens.create_code(api.engine, "bert", token_days=None)
    with api.client() as client:
        for _ in range(tokens.ENROLL_FAILURES):
            assert enroll(client, "ZZZZ-ZZZZ").status_code == 401
        limited = enroll(client, good)
        assert limited.status_code == 429 and limited.headers["retry-after"] == "60"
        assert limited.json()["type"].endswith("too-many-attempts")
    # The limited attempt did not spend the code: it works once the window passes.
    with api.engine.begin() as conn:
        conn.execute(db.enroll_failures.delete())
    with api.client() as client:
        assert enroll(client, good).status_code == 201


def test_enroll_code_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    assert cli("db", "upgrade", "--database", url).returncode == 0
    made = cli("enroll-code", "create", "nobody", "--database", url)
    assert made.returncode != 0 and "user add" in made.stderr
    assert (
        cli(
            "user", "add", "alice", "--role", "agent", "--team", "red", "--database", url
        ).returncode
        == 0
    )
    made = cli(
        "enroll-code", "create", "alice", "--hours", "2", "--expires", "90", "--database", url
    )
    assert made.returncode == 0, made.stderr
    code = made.stdout.strip()
    assert len(code) == 9 and "valid until" in made.stderr
    engine = db.make_engine(url)
    done = tokens.enroll(engine, code, label=None)
    assert done.viewer.name == "alice" and done.expires_at is not None
    assert timedelta(days=89) < done.expires_at - tokens.utcnow() <= timedelta(days=90)
    engine.dispose()
