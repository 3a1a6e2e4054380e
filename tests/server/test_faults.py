"""Faults between desk, server and database: nothing lost, nothing doubled.

Real ``consentdesk serve`` processes on loopback ports, real PostgreSQL.
After every fault the server holds each capture exactly once and the hash
chain verifies end to end.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from server_records import CATALOGUE, NUMBER, SCRIPTS, consent, new_request
from server_support import ServerProcess, postgres_database, seed_users, wait_until
from sqlalchemy import Engine, text

from consentdesk.domain.model import Channel, ConsentState
from consentdesk.server import db
from consentdesk.server.store import Store
from consentdesk.stores.http_backend import BATCH_RECORDS, HttpBackend, SyncReport
from consentdesk.stores.outbox import Outbox

pytestmark = pytest.mark.postgres
CAPTURES = 1000  # enough that a sync pass is still running when the server dies


@pytest.fixture
def database() -> Iterator[tuple[str, Engine]]:
    with postgres_database("cdfault") as url:
        engine = db.make_engine(url)
        db.upgrade(engine)
        yield url, engine
        engine.dispose()


def desk(server: ServerProcess, token: str, folder: Path) -> HttpBackend:
    return HttpBackend(server.url, token, outbox=Outbox.for_server(folder, server.url))


def drain(backend: HttpBackend, *, what: str = "the outbox to drain") -> None:
    def empty() -> bool:
        backend.sync_once()
        return backend.pending_count() == 0

    wait_until(empty, what=what)
    assert backend.rejected() == []


def assert_exactly_once(engine: Engine, event_ids: list[uuid.UUID]) -> None:
    """Each id recorded once, nothing else, projections whole, chain unbroken."""
    engine.dispose()  # connections from before a fault may be dead
    with engine.connect() as conn:
        stored = [r[0] for r in conn.execute(text("SELECT event_id FROM entries ORDER BY seq"))]
        seqs = [r[0] for r in conn.execute(text("SELECT seq FROM entries ORDER BY seq"))]
        requests = conn.execute(text("SELECT count(*) FROM requests")).scalar_one()
        request_entries = conn.execute(
            text("SELECT count(*) FROM entries WHERE kind = 'request'")
        ).scalar_one()
    assert sorted(stored) == sorted(str(e) for e in event_ids)
    assert len(stored) == len(set(stored))
    assert seqs == list(range(1, len(seqs) + 1))
    assert requests == request_entries
    report = Store(engine, catalogue=CATALOGUE, scripts=SCRIPTS).verify()
    assert report.ok and report.checked == len(event_ids), report.message


def entry_count(engine: Engine) -> int:
    # A fresh connection each time: the test's pool may have lost its connections
    # to the faults it injects.
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])


def test_server_killed_in_the_middle_of_a_sync(
    database: tuple[str, Engine],
    server_process: Callable[..., ServerProcess],
    tmp_path: Path,
) -> None:
    url, engine = database
    tokens = seed_users(engine)
    server = server_process(url)
    backend = desk(server, tokens["alice"], tmp_path)
    events = [consent(agent="alice") for _ in range(CAPTURES)]
    for event in events:
        backend.capture(event)
    reports: list[SyncReport] = []
    syncing = threading.Thread(target=lambda: reports.append(backend.sync_once()))
    syncing.start()
    wait_until(lambda: entry_count(engine) >= 60, what="the sync to be under way")
    server.kill()
    syncing.join()
    (report,) = reports
    assert report.error is not None and 0 < report.pending < CAPTURES
    # Nothing lost; a batch the server committed but could not answer is still
    # waiting too (it will be answered as a repeat).
    waiting = backend.pending_count() + entry_count(engine)
    assert CAPTURES <= waiting <= CAPTURES + BATCH_RECORDS
    server.start()  # same port: the desk's URL has not changed
    drain(backend)
    assert_exactly_once(engine, [e.event_id for e in events])
    backend.close()


def test_server_down_for_500_captures_then_back(
    database: tuple[str, Engine],
    server_process: Callable[..., ServerProcess],
    tmp_path: Path,
) -> None:
    url, engine = database
    tokens = seed_users(engine)
    server = server_process(url)
    backend = desk(server, tokens["alice"], tmp_path)
    backend.status(NUMBER)  # the desk has seen this caller once
    server.stop()
    events = [
        consent(agent="alice", channel=(Channel.PHONE, Channel.EMAIL)[i % 2]) for i in range(500)
    ]
    receipts = [backend.capture(e) for e in events]
    assert all(r.pending for r in receipts) and backend.pending_count() == 500
    status = backend.status(NUMBER)  # offline: the last answer with the waiting captures on top
    assert status.cell("marketing-offers", Channel.PHONE).state == ConsentState.GIVEN
    assert backend.sync_once().error is not None
    server.start()
    drain(backend)
    assert_exactly_once(engine, [e.event_id for e in events])
    assert len(backend.history(NUMBER)) == 500
    backend.close()


def test_desk_restart_resends_what_was_waiting(
    database: tuple[str, Engine],
    server_process: Callable[..., ServerProcess],
    tmp_path: Path,
) -> None:
    url, engine = database
    tokens = seed_users(engine)
    server = server_process(url)
    server.stop()
    first = desk(server, tokens["alice"], tmp_path)
    events = [consent(agent="alice") for _ in range(20)]
    for event in events:
        first.capture(event)
    request = new_request(agent="alice")
    first.create_request(request)
    first.close()  # the desk is closed (or crashed) with everything still waiting
    server.start()
    again = desk(server, tokens["alice"], tmp_path)
    assert again.pending_count() == 21
    drain(again)
    assert_exactly_once(engine, [e.event_id for e in events] + [request.event_id])
    again.close()


def test_the_same_capture_sent_twice(
    database: tuple[str, Engine],
    server_process: Callable[..., ServerProcess],
    tmp_path: Path,
) -> None:
    """Sent, answered, but the answer was lost: the resend is a harmless repeat."""
    url, engine = database
    tokens = seed_users(engine)
    server = server_process(url)
    backend = desk(server, tokens["alice"], tmp_path / "one")
    event = consent(agent="alice")
    backend.capture(event)
    (item,) = backend.outbox.pending()
    direct = httpx.post(
        f"{server.url}/v1/consents",
        content=item.body.encode(),
        headers={"Authorization": f"Bearer {tokens['alice']}"},
    )
    assert direct.status_code == 201
    report = backend.sync_once()
    ((_, answer),) = report.sent
    assert answer == direct.json() | {"duplicate": True}
    other_desk = desk(server, tokens["alice"], tmp_path / "two")
    assert other_desk.capture(event).pending
    other_desk.sync_once()
    assert_exactly_once(engine, [event.event_id])
    backend.close()
    other_desk.close()


def test_database_connections_dropped_mid_run(
    database: tuple[str, Engine],
    server_process: Callable[..., ServerProcess],
    tmp_path: Path,
) -> None:
    """pg_terminate_backend on every server connection, repeatedly, while a desk syncs."""
    url, engine = database
    name = url.rsplit("/", 1)[1]
    tokens = seed_users(engine)
    server = server_process(url)
    backend = desk(server, tokens["alice"], tmp_path)
    events = [consent(agent="alice") for _ in range(400)]
    for event in events:
        backend.capture(event)
    done = threading.Event()

    def keep_syncing() -> None:
        deadline = time.monotonic() + 120
        while backend.pending_count() and time.monotonic() < deadline:
            backend.sync_once()
        done.set()

    syncing = threading.Thread(target=keep_syncing, daemon=True)
    syncing.start()
    kills = 0
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as admin:
        for threshold in (50, 120, 200, 280):
            wait_until(
                lambda t=threshold: entry_count(engine) >= t or done.is_set(),
                what=f"{threshold} entries",
            )
            kills += admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s"
                " AND pid <> pg_backend_pid() AND application_name = 'consentdesk-server'",
                (name,),
            ).fetchone()[0]
    syncing.join()
    assert kills > 0
    assert backend.rejected() == []
    assert_exactly_once(engine, [e.event_id for e in events])
    backend.close()


def test_two_servers_one_database_one_chain(
    database: tuple[str, Engine],
    server_process: Callable[..., ServerProcess],
    tmp_path: Path,
) -> None:
    """Two stateless server processes, concurrent writers: same answers, one chain."""
    url, engine = database
    tokens = seed_users(engine)
    servers = [server_process(url), server_process(url)]
    desks = {
        (name, i): desk(servers[i], tokens[name], tmp_path / f"{name}-{i}")
        for name in ("alice", "bert")
        for i in (0, 1)
    }
    written: dict[tuple[str, int], list[uuid.UUID]] = {}

    def work(key: tuple[str, int]) -> None:
        backend = desks[key]
        ids = []
        for n in range(60):
            event = consent(agent=key[0], channel=(Channel.PHONE, Channel.EMAIL)[n % 2])
            backend.capture(event)
            ids.append(event.event_id)
            if n % 5 == 4:
                backend.sync_once()
        drain(backend)
        written[key] = ids

    threads = [threading.Thread(target=work, args=(key,)) for key in desks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_ids = [i for ids in written.values() for i in ids]
    assert len(all_ids) == 240
    assert_exactly_once(engine, all_ids)
    answers = []
    for server in servers:
        headers = {"Authorization": f"Bearer {tokens['lena']}"}
        with httpx.Client(base_url=server.url, headers=headers) as client:
            status = client.get(f"/v1/subjects/{NUMBER}/status").json()
            history = client.get(f"/v1/subjects/{NUMBER}/history").json()
            actions = client.get("/v1/review/actions", params={"limit": 1000}).json()
        answers.append((status["cells"], history, actions["rows"]))
    assert answers[0] == answers[1]
    assert len(answers[0][1]) == 240
    assert {r["agent"] for r in answers[0][2]} == {"alice"}  # lena leads team red
    for backend in desks.values():
        backend.close()
