"""The delivery queue in one process on SQLite: dead letters, replay, secret
rotation, disabled endpoints and order per subject, against a real receiver."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_records import CATALOGUE, NUMBER, OTHER, SCRIPTS, consent
from server_support import free_port, seed_users, wait_until
from sqlalchemy import Engine
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from webhook_receiver import Receiver

from consentdesk.domain.model import ConsentState, DomainError
from consentdesk.domain.review import Role, Viewer
from consentdesk.server import db, webhooks
from consentdesk.server.changes import ChangeSignal
from consentdesk.server.delivery import DeliveryWorker, RetryPolicy
from consentdesk.server.store import Store

ALICE = Viewer("alice", Role.AGENT, "red")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'server.db'}")
    db.upgrade(engine)
    seed_users(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(free_port()).start()
    yield r
    r.stop()


def worker(engine: Engine, **policy: float) -> DeliveryWorker:
    return DeliveryWorker(
        engine,
        CATALOGUE,
        ChangeSignal(engine),
        policy=RetryPolicy(**{"base": 0.05, "cap": 0.1, "timeout": 2.0, **policy}),
    )


def drain(w: DeliveryWorker, until: object, what: str) -> None:
    def step() -> bool:
        w.round()
        return bool(until())  # type: ignore[operator]

    wait_until(step, what=what, timeout=20)


def test_dead_letters_and_replay(engine: Engine, receiver: Receiver) -> None:
    store = Store(engine, catalogue=CATALOGUE, scripts=SCRIPTS)
    w = worker(engine, retry_for=0.3)
    try:
        w.round()  # the fan-out starts at the ledger head
        ep, receiver.secret = webhooks.add_endpoint(
            engine, receiver.url, ["consent.changed"], include_numbers=False, by="adam"
        )
        receiver.status = 500  # up, but failing
        store.capture(ALICE, consent(agent="alice"))
        store.capture(ALICE, consent(agent="alice", state=ConsentState.WITHDRAWN))
        drain(w, lambda: len(webhooks.dead_letters(engine)) == 2, "both to give up")
        dead = webhooks.dead_letters(engine, ep.id)
        assert [d["attempts"] >= 2 for d in dead] == [True, True]
        assert dead[0]["last_error"] == "HTTP 500"
        assert receiver.accepted == []

        receiver.status = 204
        assert webhooks.replay(engine, ep.id, [dead[0]["id"]]) == 1
        drain(w, lambda: len(receiver.accepted) == 1, "the replayed one")
        assert webhooks.replay(engine, ep.id) == 1
        drain(w, lambda: len(receiver.accepted) == 2, "the rest")
        states = [p["data"]["state"] for p in receiver.payloads()]
        assert states == ["given", "withdrawn"]
        assert webhooks.dead_letters(engine) == []
    finally:
        w.stop()


def test_rotation_signs_with_both_secrets_and_disable_stops(
    engine: Engine, receiver: Receiver
) -> None:
    store = Store(engine, catalogue=CATALOGUE, scripts=SCRIPTS)
    w = worker(engine)
    try:
        w.round()
        ep, old = webhooks.add_endpoint(
            engine, receiver.url, ["consent.changed"], include_numbers=True, by="adam"
        )
        new = webhooks.rotate_secret(engine, ep.id)
        assert new != old
        receiver.secret = old  # a receiver that has not switched yet still verifies
        store.capture(ALICE, consent(agent="alice"))
        drain(w, lambda: len(receiver.accepted) == 1, "a delivery under the old secret")
        receiver.secret = new
        store.capture(ALICE, consent(OTHER, agent="alice"))
        drain(w, lambda: len(receiver.accepted) == 2, "a delivery under the new secret")
        assert receiver.rejected == []
        assert [p["data"]["subject"] for p in receiver.payloads()] == [NUMBER, OTHER]

        assert not webhooks.set_enabled(engine, ep.id, False).enabled
        store.capture(ALICE, consent(agent="alice", state=ConsentState.WITHDRAWN))
        for _ in range(5):
            w.round()
        assert len(receiver.accepted) == 2
        assert [e.enabled for e in webhooks.list_endpoints(engine)] == [False]
    finally:
        w.stop()


def test_a_signature_from_another_secret_is_refused() -> None:
    body = b'{"type":"consent.changed"}'
    secret, now = webhooks.new_secret(), int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": webhooks.sign(secret, "msg_1", now, body),
    }
    assert Webhook(secret).verify(body, headers) == {"type": "consent.changed"}
    with pytest.raises(WebhookVerificationError, match="signature"):
        Webhook(webhooks.new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError, match="signature"):
        Webhook(secret).verify(body + b" ", headers)


@pytest.mark.parametrize(
    ("url", "events"),
    [
        ("ftp://example.org/x", ["consent.changed"]),
        ("https://user:pw@example.org/x", ["consent.changed"]),
        ("https://example.org/x", ["consent.deleted"]),
        ("https://example.org/x", []),
    ],
)
def test_bad_endpoints_are_refused(engine: Engine, url: str, events: list[str]) -> None:
    with pytest.raises(DomainError):
        webhooks.add_endpoint(engine, url, events, include_numbers=False, by="adam")
    assert webhooks.list_endpoints(engine) == []
