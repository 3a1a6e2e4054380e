"""The webhook delivery worker: one thread per server process, sharing one queue.

Each round fans new changes out into ``webhook_deliveries``, then claims the
*head* of some per-subject queues (the oldest pending delivery of an endpoint
and subject, ``FOR UPDATE SKIP LOCKED`` so processes take different ones) with
a lease, plus the deliveries queued behind each head. A claimed chain is sent
in order and stops at its first failure, so a subject's next change is never
delivered before the previous one succeeded or was dead-lettered. Failures
retry with exponential backoff and full jitter until :data:`RETRY_FOR` has
passed since the first try, then the delivery is dead (admins can replay it).
A success after failures wakes that endpoint's waiting retries at once: a
receiver that comes back gets its backlog without waiting out the backoff.
At-least-once: a crash between a send and its acknowledgement resends the
same ``webhook-id`` after the lease.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, and_, exists, func, select, text, tuple_, update

from consentdesk import __version__
from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.model import utcnow
from consentdesk.server.changes import ChangeSignal, pseudonym_key
from consentdesk.server.db import is_sqlite
from consentdesk.server.feed_db import webhook_deliveries, webhook_endpoints
from consentdesk.server.webhooks import DEAD, DELIVERED, PENDING, fan_out, sign

log = logging.getLogger("consentdesk.server.delivery")


def _env_seconds(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, for at least ``retry_for``."""

    base: float = _env_seconds("CONSENTDESK_WEBHOOK_BACKOFF_S", 5.0)
    cap: float = _env_seconds("CONSENTDESK_WEBHOOK_BACKOFF_CAP_S", 3600.0)
    retry_for: float = _env_seconds("CONSENTDESK_WEBHOOK_RETRY_FOR_S", 86400.0)
    timeout: float = _env_seconds("CONSENTDESK_WEBHOOK_TIMEOUT_S", 10.0)

    def delay(self, attempts: int) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(attempts - 1, 30))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


HEADS_PER_ROUND = 64
CHAIN = 50  # deliveries of one subject sent in one claim
IDLE_WAIT_S = 0.5


@dataclass(slots=True)
class _Item:
    id: int
    msg_id: str
    payload: str
    attempts: int
    first_try_at: datetime | None


@dataclass(slots=True)
class _Chain:
    endpoint_id: str
    url: str
    secrets: tuple[str, ...]
    items: list[_Item]


class DeliveryWorker:
    """Fans out and delivers until stopped; start one per server process."""

    def __init__(
        self,
        engine: Engine,
        catalogue: Catalogue,
        signal: ChangeSignal,
        *,
        policy: RetryPolicy | None = None,
        senders: int = 16,
    ) -> None:
        self.engine = engine
        self.catalogue = catalogue
        self.signal = signal
        self.policy = policy or RetryPolicy()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(senders, thread_name_prefix="consentdesk-webhook")
        self._client = httpx.Client(
            timeout=self.policy.timeout,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=senders * 2, max_keepalive_connections=senders),
            headers={"user-agent": f"consentdesk-webhooks/{__version__}"},
        )
        self._thread: threading.Thread | None = None
        self._key: bytes | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="consentdesk-delivery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._pool.shutdown(wait=True)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            seen = self.signal.generation
            try:
                busy = self.round()
            except Exception:
                log.exception("webhook delivery round failed; trying again shortly")
                busy = False
                self._stop.wait(2.0)
            if not busy:
                self.signal.wait(seen, IDLE_WAIT_S)

    def round(self) -> bool:
        """One fan-out and one batch of deliveries; whether there was anything to do."""
        if self._key is None:
            self._key = pseudonym_key(self.engine)
        fanned = fan_out(self.engine, self.catalogue, self._key)
        chains = self._claim()
        if chains:
            sent = list(self._pool.map(self._send_chain, chains))
            # One acknowledgement for the round: the ack is what costs, not the send.
            self._ack(
                [i for ids, _ in sent for i in ids],
                {
                    c.endpoint_id
                    for c, (_, recovered) in zip(chains, sent, strict=True)
                    if recovered
                },
            )
        return bool(fanned or chains)

    # --- claiming -------------------------------------------------------------------

    def _claim(self) -> list[_Chain]:
        """Lease the heads of up to HEADS_PER_ROUND queues and what waits behind them."""
        d, e = webhook_deliveries, webhook_endpoints
        now = utcnow()
        with self.engine.connect() as conn:
            conn = conn.execution_options(ledger_write=is_sqlite(conn))
            with conn.begin():
                heads = _heads(now)
                if not is_sqlite(conn):
                    heads = heads.with_for_update(of=d, skip_locked=True)
                found = conn.execute(heads).all()
                if not found:
                    return []
                endpoints = {
                    r.id: r
                    for r in conn.execute(
                        select(e).where(e.c.id.in_({h.endpoint_id for h in found}))
                    )
                }
                queues = {(h.endpoint_id, h.order_key): h.id for h in found}
                items = _queued(conn, queues)
                chains = [
                    _Chain(ep, endpoints[ep].url, _secrets(endpoints[ep], now), queue)
                    for (ep, _), queue in items.items()
                ]
                lease = now + timedelta(seconds=30 + self.policy.timeout * CHAIN)
                ids = [i.id for c in chains for i in c.items]
                conn.execute(update(d).where(d.c.id.in_(ids)).values(lease_until=lease))
        return chains

    # --- sending --------------------------------------------------------------------

    def _send_chain(self, chain: _Chain) -> tuple[list[int], bool]:
        """Send a chain in order up to its first failure: the delivered ids, and
        whether a retry among them succeeded (the receiver is back)."""
        delivered: list[int] = []
        recovered = False
        try:
            for item in chain.items:
                error = self._post(chain, item)
                if error is not None:
                    self._failed(item, error, chain)
                    break
                delivered.append(item.id)
                recovered = recovered or item.attempts > 0
        except Exception:
            log.exception("webhook delivery to endpoint %s failed", chain.endpoint_id)
        if len(delivered) < len(chain.items):  # the rest waits behind its head again
            self._release([i.id for i in chain.items[len(delivered) :]])
        return delivered, recovered

    def _post(self, chain: _Chain, item: _Item) -> str | None:
        body = item.payload.encode("utf-8")
        stamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": item.msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": " ".join(sign(s, item.msg_id, stamp, body) for s in chain.secrets),
        }
        try:
            answer = self._client.post(chain.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return type(exc).__name__
        if 200 <= answer.status_code < 300:
            return None
        return f"HTTP {answer.status_code}"

    def _ack(self, ids: list[int], recovered: set[str]) -> None:
        if not ids:
            return
        d = webhook_deliveries
        now = utcnow()
        with self.engine.begin() as conn:
            if not is_sqlite(conn):
                # Losing an acknowledgement only means a resend (at-least-once).
                conn.execute(text("SET LOCAL synchronous_commit = off"))
            conn.execute(
                update(d)
                .where(d.c.id.in_(ids), d.c.state == PENDING)
                .values(state=DELIVERED, delivered_at=now, lease_until=None)
            )
            for endpoint_id in sorted(recovered):  # back: its waiting retries go now
                conn.execute(
                    update(d)
                    .where(d.c.endpoint_id == endpoint_id, d.c.state == PENDING, d.c.next_at > now)
                    .values(next_at=now)
                )

    def _failed(self, item: _Item, error: str, chain: _Chain) -> None:
        d = webhook_deliveries
        now = utcnow()
        first = item.first_try_at or now
        attempts = item.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "first_try_at": first,
            "last_error": error,
            "lease_until": None,
        }
        if (now - first).total_seconds() >= self.policy.retry_for:
            values["state"] = DEAD
            log.warning(
                "webhook %s to endpoint %s dead after %d tries (%s)",
                item.msg_id,
                chain.endpoint_id,
                attempts,
                error,
            )
        else:
            values["next_at"] = now + timedelta(seconds=self.policy.delay(attempts))
            log.info(
                "webhook to endpoint %s failed (%s); try %d", chain.endpoint_id, error, attempts
            )
        with self.engine.begin() as conn:
            conn.execute(update(d).where(d.c.id == item.id).values(values))

    def _release(self, ids: list[int]) -> None:
        d = webhook_deliveries
        with self.engine.begin() as conn:
            conn.execute(
                update(d).where(d.c.id.in_(ids), d.c.state == PENDING).values(lease_until=None)
            )


def _heads(now: datetime) -> Any:
    """Due, unleased deliveries with no earlier pending one in their queue."""
    d, e = webhook_deliveries, webhook_endpoints
    earlier = webhook_deliveries.alias("earlier")
    return (
        select(d.c.id, d.c.endpoint_id, d.c.order_key)
        .join(e, and_(e.c.id == d.c.endpoint_id, e.c.enabled.is_(True)))
        .where(
            d.c.state == PENDING,
            d.c.next_at <= now,
            (d.c.lease_until.is_(None)) | (d.c.lease_until < now),
            ~exists().where(
                earlier.c.endpoint_id == d.c.endpoint_id,
                earlier.c.order_key == d.c.order_key,
                earlier.c.state == PENDING,
                earlier.c.id < d.c.id,
            ),
        )
        .order_by(d.c.id)
        .limit(HEADS_PER_ROUND)
    )


def _queued(
    conn: Connection, queues: dict[tuple[str, str], int]
) -> dict[tuple[str, str], list[_Item]]:
    """Every claimed queue's pending deliveries in one read, at most CHAIN each, in order."""
    d = webhook_deliveries
    ranked = (
        select(
            d.c.id,
            d.c.endpoint_id,
            d.c.order_key,
            d.c.msg_id,
            d.c.payload,
            d.c.attempts,
            d.c.first_try_at,
            func.row_number()
            .over(partition_by=(d.c.endpoint_id, d.c.order_key), order_by=d.c.id)
            .label("n"),
        )
        .where(tuple_(d.c.endpoint_id, d.c.order_key).in_(list(queues)), d.c.state == PENDING)
        .subquery()
    )
    rows = conn.execute(select(ranked).where(ranked.c.n <= CHAIN).order_by(ranked.c.id)).all()
    items: dict[tuple[str, str], list[_Item]] = {q: [] for q in queues}
    for r in rows:
        key = (r.endpoint_id, r.order_key)
        if r.id >= queues[key]:
            items[key].append(_Item(r.id, r.msg_id, r.payload, r.attempts, _aware(r.first_try_at)))
    return items


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive UTC datetimes."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _secrets(endpoint: Any, now: datetime) -> tuple[str, ...]:
    until = _aware(endpoint.previous_until)
    if endpoint.previous_secret and until is not None and until > now:
        return (endpoint.secret, endpoint.previous_secret)
    return (endpoint.secret,)


def start_feed(engine: Engine, catalogue: Catalogue, signal: ChangeSignal) -> DeliveryWorker | None:
    """This process's change listener and delivery worker (``CONSENTDESK_WEBHOOKS=off``:
    the listener only, for processes that must not send)."""
    signal.start()
    if os.environ.get("CONSENTDESK_WEBHOOKS", "on").lower() in ("off", "0", "no"):
        return None
    worker = DeliveryWorker(engine, catalogue, signal)
    worker.start()
    return worker


def stop_feed(signal: ChangeSignal, worker: DeliveryWorker | None) -> None:
    signal.stop()
    if worker is not None:
        worker.stop()
