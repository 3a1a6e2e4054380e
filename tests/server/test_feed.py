"""The change feed and signed webhooks through real processes.

A real ``consentdesk serve`` on PostgreSQL, a desk's HTTP backend capturing, and
a real HTTP receiver that checks every signature with the ``standardwebhooks``
library; the receiver (and the server) are killed and brought back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from server_records import NUMBER, OTHER, THIRD, consent, new_request
from server_support import (
    ServerProcess,
    free_port,
    postgres_database,
    seed_users,
    wait_until,
)
from sqlalchemy import Engine, text
from webhook_receiver import Receiver

from consentdesk.domain.model import ConsentState
from consentdesk.server import db
from consentdesk.stores.http_backend import HttpBackend
from consentdesk.stores.outbox import Outbox

pytestmark = pytest.mark.postgres


@pytest.fixture
def team(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Engine, dict[str, str]]]:
    # Short backoff so a receiver that comes back is retried within the test.
    monkeypatch.setenv("CONSENTDESK_WEBHOOK_BACKOFF_S", "0.2")
    monkeypatch.setenv("CONSENTDESK_WEBHOOK_BACKOFF_CAP_S", "1")
    with postgres_database("cdfeed") as url:
        engine = db.make_engine(url)
        db.upgrade(engine)
        yield url, engine, seed_users(engine)
        engine.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(free_port()).start()
    yield r
    r.stop()


def register(
    server: ServerProcess, token: str, url: str, events: list[str], *, numbers: bool = False
) -> dict[str, object]:
    answer = httpx.post(
        f"{server.url}/v1/admin/webhooks",
        json={"url": url, "events": events, "include_numbers": numbers},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, object] = answer.json()
    assert str(body["secret"]).startswith("whsec_")
    return body


_OPEN: list[HttpBackend] = []


@pytest.fixture(autouse=True)
def _close_desks() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def desk(server: ServerProcess, token: str, tmp_path: Path) -> HttpBackend:
    """A desk's HTTP backend, as the sidebar uses it (closed after the test)."""
    backend = HttpBackend(server.url, token, outbox=Outbox(tmp_path / "outbox.sqlite3"))
    _OPEN.append(backend)
    return backend


def changes(server: ServerProcess, token: str, **params: object) -> dict[str, object]:
    answer = httpx.get(
        f"{server.url}/v1/changes",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, object] = answer.json()
    return result


def test_a_withdrawal_reaches_a_receiver_signed_and_the_feed(
    team: tuple[str, Engine, dict[str, str]],
    receiver: Receiver,
    server_process: Callable[..., ServerProcess],
    tmp_path: Path,
) -> None:
    url, engine, tokens = team
    server = server_process(url)
    endpoint = register(server, tokens["adam"], receiver.url, ["consent.changed"])
    receiver.secret = str(endpoint["secret"])
    numbers = Receiver(free_port(), secret=None).start()
    try:
        numbers.secret = str(
            register(server, tokens["adam"], numbers.url, ["consent.changed"], numbers=True)[
                "secret"
            ]
        )
        backend = desk(server, tokens["alice"], tmp_path)
        backend.capture(consent(agent="alice"))
        backend.capture(consent(agent="alice", state=ConsentState.WITHDRAWN))
        assert len(backend.sync_once().sent) == 2  # what the sidebar's sync does

        wait_until(lambda: len(receiver.payloads()) >= 2, what="two signed deliveries")
        wait_until(lambda: len(numbers.payloads()) >= 2, what="deliveries with numbers")
    finally:
        numbers.stop()
    assert receiver.rejected == []
    given, withdrawn = receiver.payloads()[:2]
    assert (given["type"], given["data"]["state"]) == ("consent.changed", "given")
    assert withdrawn["data"]["state"] == "withdrawn"
    assert withdrawn["data"]["previous_state"] == "given"
    # Without include_numbers, only a stable pseudonymous id: never the number.
    assert "subject" not in withdrawn["data"]
    assert NUMBER not in str(receiver.payloads())
    assert withdrawn["data"]["subject_id"] == given["data"]["subject_id"]
    assert withdrawn["data"]["subject_id"].startswith("sub_")
    assert numbers.payloads()[1]["data"]["subject"] == NUMBER

    assert NUMBER not in str(changes(server, tokens["adam"]))  # pseudonymous by default
    with engine.connect() as conn:
        logged = conn.execute(text("SELECT count(*) FROM read_log")).scalar()
    feed = changes(server, tokens["adam"], numbers="true")
    with engine.connect() as conn:  # the number left the server: a logged read
        assert conn.execute(text("SELECT count(*) FROM read_log")).scalar() == logged + 1
    states = [(c["data"]["subject"], c["data"]["state"]) for c in feed["changes"]]
    assert states == [(NUMBER, "given"), (NUMBER, "withdrawn")]
    assert changes(server, tokens["adam"], after=feed["next"])["changes"] == []
    # Resumable from any cursor: after the first change, only the second.
    first = feed["changes"][0]["data"]["cursor"]
    assert [
        c["data"]["state"] for c in changes(server, tokens["adam"], after=first)["changes"]
    ] == ["withdrawn"]
    # Only admins read the feed.
    lead = httpx.get(
        f"{server.url}/v1/changes", headers={"Authorization": f"Bearer {tokens['lena']}"}
    )
    assert lead.status_code == 403


def test_a_long_poll_wakes_when_another_process_appends(
    team: tuple[str, Engine, dict[str, str]],
    server_process: Callable[..., ServerProcess],
    tmp_path: Path,
) -> None:
    url, _engine, tokens = team
    reader, writer = server_process(url), server_process(url)
    head = changes(reader, tokens["adam"])["next"]
    import threading

    got: dict[str, object] = {}
    poll = threading.Thread(
        target=lambda: got.update(changes(reader, tokens["adam"], after=head, wait=20))
    )
    poll.start()
    backend = desk(writer, tokens["alice"], tmp_path)
    request = backend.create_request(new_request(OTHER, agent="alice"))
    backend.sync_once()
    poll.join(timeout=25)
    assert not poll.is_alive()
    (change,) = got["changes"]  # type: ignore[misc]
    assert change["type"] == "request.changed"
    assert change["data"]["reference"] == request.reference
    assert change["data"]["status"] == "received"


def test_a_receiver_down_for_a_while_and_a_server_restart_lose_nothing(
    team: tuple[str, Engine, dict[str, str]],
    receiver: Receiver,
    server_process: Callable[..., ServerProcess],
    tmp_path: Path,
) -> None:
    url, engine, tokens = team
    server = server_process(url)
    receiver.secret = str(
        register(server, tokens["adam"], receiver.url, ["consent.changed"])["secret"]
    )
    backend = desk(server, tokens["alice"], tmp_path)
    receiver.stop()
    sent: dict[str, list[str]] = {}
    states = [ConsentState.GIVEN, ConsentState.WITHDRAWN] * 3
    for number in (NUMBER, OTHER, THIRD):
        for state in states:
            backend.capture(consent(number, agent="alice", state=state))
            sent.setdefault(number, []).append(state.value)
    backend.sync_once()

    def tried() -> bool:
        with engine.connect() as conn:
            return bool(
                conn.execute(
                    text("SELECT count(*) FROM webhook_deliveries WHERE attempts > 1")
                ).scalar()
            )

    wait_until(tried, what="failed delivery attempts while the receiver is down")
    server.kill()  # deliveries are in the database, not in the process
    server = server_process(url, port=server.port)
    receiver.start()
    wait_until(lambda: len(receiver.unique()) >= 18, what="the whole backlog")

    assert receiver.rejected == []
    by_subject: dict[str, list[tuple[int, str]]] = {}
    for d in receiver.accepted:
        data = d.payload["data"]
        by_subject.setdefault(data["subject_id"], []).append((int(data["cursor"]), data["state"]))
    assert len(by_subject) == 3
    for got in by_subject.values():
        firsts = list(dict.fromkeys(got))  # repeats of one id are allowed, order is not
        assert firsts == sorted(firsts)
        assert [s for _, s in firsts] == [s.value for s in states]
