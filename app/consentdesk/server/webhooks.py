"""Webhook endpoints and the fan-out of feed changes into their delivery queue.

Deliveries follow the Standard Webhooks specification: each message has a
stable ``webhook-id`` (the same on every retry, so receivers can drop
repeats), a ``webhook-timestamp`` and ``webhook-signature`` ``v1,<base64
HMAC-SHA256 of "id.timestamp.body">`` keyed with the endpoint's ``whsec_``
secret. After a rotation the old secret keeps signing beside the new one for
:data:`ROTATION_GRACE`, so receivers can switch without losing messages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, insert, select, text, update

from consentdesk.domain.backend import NotFound
from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.changes import check_event_types, subject_pseudonym
from consentdesk.domain.model import DomainError, utcnow
from consentdesk.server.changes import head_seq, read_changes
from consentdesk.server.db import is_sqlite
from consentdesk.server.feed_db import feed_state, webhook_deliveries, webhook_endpoints

ROTATION_GRACE = timedelta(hours=24)
FANOUT_LOCK_KEY = 0x43444657  # "CDFW": one fan-out at a time across processes
_FANOUT_CURSOR = "fanout-cursor"
PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A registered receiver (its secret is shown once, when made or rotated)."""

    id: str
    url: str
    events: tuple[str, ...]
    include_numbers: bool
    enabled: bool
    created_at: datetime
    created_by: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "include_numbers": self.include_numbers,
            "enabled": self.enabled,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One Standard Webhooks signature (``v1,<base64>``)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DomainError("a webhook URL is http:// or https:// with a host name")
    if parts.username or parts.password:
        raise DomainError("put no credentials in a webhook URL; deliveries are signed")
    return url.strip()


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        row.id,
        row.url,
        tuple(json.loads(row.events)),
        bool(row.include_numbers),
        bool(row.enabled),
        row.created_at,
        row.created_by,
    )


def add_endpoint(
    engine: Engine, url: str, events: Sequence[str], *, include_numbers: bool, by: str
) -> tuple[Endpoint, str]:
    """Register a receiver; it gets the changes appended from now on. Returns its secret."""
    url = check_url(url)
    types = check_event_types(events)
    secret = new_secret()
    endpoint_id = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(
            insert(webhook_endpoints).values(
                id=endpoint_id,
                url=url,
                events=json.dumps(list(types)),
                include_numbers=include_numbers,
                secret=secret,
                enabled=True,
                created_at=utcnow(),
                created_by=by,
                from_seq=head_seq(conn),
            )
        )
    return get_endpoint(engine, endpoint_id), secret


def get_endpoint(engine: Engine, endpoint_id: str) -> Endpoint:
    with engine.connect() as conn:
        row = conn.execute(
            select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
        ).first()
    if row is None:
        raise NotFound("no such webhook endpoint")
    return _endpoint(row)


def list_endpoints(engine: Engine) -> list[Endpoint]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(webhook_endpoints).order_by(webhook_endpoints.c.created_at)
        ).all()
    return [_endpoint(r) for r in rows]


def set_enabled(engine: Engine, endpoint_id: str, enabled: bool) -> Endpoint:
    with engine.begin() as conn:
        values: dict[str, Any] = {"enabled": enabled}
        if enabled:  # changes while it was off are not queued; start from now
            values["from_seq"] = head_seq(conn)
        done = conn.execute(
            update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id).values(values)
        )
    if done.rowcount == 0:
        raise NotFound("no such webhook endpoint")
    return get_endpoint(engine, endpoint_id)


def rotate_secret(engine: Engine, endpoint_id: str) -> str:
    """A new secret; the old one keeps signing beside it for :data:`ROTATION_GRACE`."""
    secret = new_secret()
    t = webhook_endpoints
    with engine.begin() as conn:
        row = conn.execute(select(t.c.secret).where(t.c.id == endpoint_id)).first()
        if row is None:
            raise NotFound("no such webhook endpoint")
        conn.execute(
            update(t)
            .where(t.c.id == endpoint_id)
            .values(
                secret=secret,
                previous_secret=row.secret,
                previous_until=utcnow() + ROTATION_GRACE,
            )
        )
    return secret


def dead_letters(
    engine: Engine, endpoint_id: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Deliveries that gave up, oldest first (no payloads: they may hold numbers)."""
    d = webhook_deliveries
    query = select(
        d.c.id,
        d.c.msg_id,
        d.c.endpoint_id,
        d.c.event_type,
        d.c.seq,
        d.c.attempts,
        d.c.first_try_at,
        d.c.last_error,
    ).where(d.c.state == DEAD)
    if endpoint_id is not None:
        query = query.where(d.c.endpoint_id == endpoint_id)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(d.c.id).limit(limit)).all()
    return [
        {
            "id": r.id,
            "msg_id": r.msg_id,
            "endpoint_id": r.endpoint_id,
            "type": r.event_type,
            "cursor": str(r.seq),
            "attempts": r.attempts,
            "first_try_at": r.first_try_at.isoformat() if r.first_try_at else None,
            "last_error": r.last_error,
        }
        for r in rows
    ]


def replay(engine: Engine, endpoint_id: str, ids: Sequence[int] | None = None) -> int:
    """Put dead deliveries of an endpoint back in its queue (all, or those *ids*)."""
    get_endpoint(engine, endpoint_id)
    d = webhook_deliveries
    stmt = update(d).where(d.c.endpoint_id == endpoint_id, d.c.state == DEAD)
    if ids is not None:
        stmt = stmt.where(d.c.id.in_(list(ids)))
    with engine.begin() as conn:
        done = conn.execute(
            stmt.values(
                state=PENDING,
                attempts=0,
                first_try_at=None,
                next_at=utcnow(),
                lease_until=None,
                last_error=None,
            )
        )
    return int(done.rowcount)


@contextmanager
def fanout_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction only one process at a time holds (advisory lock / BEGIN IMMEDIATE)."""
    with engine.connect() as conn:
        conn = conn.execution_options(ledger_write=True)
        with conn.begin():
            if not is_sqlite(conn):
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": FANOUT_LOCK_KEY})
            yield conn


def fan_out(engine: Engine, catalogue: Catalogue, key: bytes, limit: int = 500) -> int:
    """Queue deliveries for the changes after the fan-out cursor; how many entries were read."""
    with fanout_transaction(engine) as conn:
        cursor = conn.execute(
            select(feed_state.c.value).where(feed_state.c.name == _FANOUT_CURSOR)
        ).scalar()
        if cursor is None:  # first run: deliver what is appended from now on
            conn.execute(insert(feed_state).values(name=_FANOUT_CURSOR, value=str(head_seq(conn))))
            return 0
        after = int(cursor)
        changes, nxt = read_changes(conn, catalogue, after, limit)
        if nxt == after:
            return 0
        endpoints = conn.execute(
            select(webhook_endpoints).where(webhook_endpoints.c.enabled.is_(True))
        ).all()
        rows = _delivery_rows(changes, endpoints, key)
        if rows:
            conn.execute(insert(webhook_deliveries), rows)
        conn.execute(
            update(feed_state).where(feed_state.c.name == _FANOUT_CURSOR).values(value=str(nxt))
        )
        return nxt - after


def _delivery_rows(
    changes: Sequence[Any], endpoints: Sequence[Any], key: bytes
) -> list[dict[str, Any]]:
    now = utcnow()
    rows: list[dict[str, Any]] = []
    index: dict[int, int] = {}
    pseudonyms: dict[str, str] = {}
    for change in changes:
        i = index[change.seq] = index.get(change.seq, -1) + 1
        subject_id = None
        if change.subject is not None:
            subject_id = pseudonyms.get(change.subject) or subject_pseudonym(key, change.subject)
            pseudonyms[change.subject] = subject_id
        for ep in endpoints:
            if change.seq <= ep.from_seq or change.type not in json.loads(ep.events):
                continue
            payload = change.to_json(subject_id=subject_id, include_number=ep.include_numbers)
            rows.append(
                {
                    "msg_id": f"msg_{ep.id.replace('-', '')[:16]}_{change.seq}_{i}",
                    "endpoint_id": ep.id,
                    # Pseudonymous, so the queue holds no number the endpoint may not see.
                    "order_key": _order_key(change.order_key, subject_id),
                    "seq": change.seq,
                    "event_type": change.type,
                    "payload": json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
                    "state": PENDING,
                    "attempts": 0,
                    "next_at": now,
                    "lease_until": None,
                    "created_at": now,
                    "first_try_at": None,
                    "delivered_at": None,
                    "last_error": None,
                }
            )
    return rows


def _order_key(key: str, subject_id: str | None) -> str:
    return subject_id if subject_id is not None and key.startswith("subject:") else key
