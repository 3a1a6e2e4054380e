"""The desk's durable outbox: captures wait here until the team server has them.

A capture is committed to a small SQLite file in the data folder (WAL,
``synchronous=FULL``) before the agent is told it is recorded; a sync worker
then sends the items in order, each carrying its event id so the server
ignores repeats. Items leave the outbox only once the server has answered
for them: accepted (removed), or refused for good (kept as *rejected* with
the server's reason, for someone to look at; never silently dropped).

Admission is the kernel's (:mod:`consentdesk.domain.admission`), the same the
server applies, so a record the desk accepted offline is not refused on sync.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from consentdesk.domain.backend import BackendError
from consentdesk.domain.codec import canonical_json
from consentdesk.domain.model import (
    DomainError,
    utcnow,
)

log = logging.getLogger("consentdesk.outbox")

APPLICATION_ID = 0x4344_4F42  # "CDOB": marks the file as a Consent Desk outbox
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    agent TEXT NOT NULL,
    ref TEXT,
    body TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX items_state_seq ON items (state, seq);
CREATE INDEX items_subject ON items (subject, seq);
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class OutboxError(BackendError):
    """The outbox file cannot be used (not ours, damaged, or not writable)."""


class ItemKind(enum.StrEnum):
    CONSENT = "consent"
    REQUEST = "request"
    CHANGE = "request-change"
    PROFILE = "profile"


class ItemState(enum.StrEnum):
    PENDING = "pending"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One record waiting for the server (or refused by it)."""

    seq: int
    kind: ItemKind
    key: uuid.UUID  # the event id: the server's idempotency key
    subject: str
    agent: str
    ref: str | None  # the request id, for request records
    body: str  # canonical JSON, sent byte for byte
    queued_at: datetime
    state: ItemState
    attempts: int
    last_error: str | None

    def payload(self) -> Any:
        return json.loads(self.body)


# --- the outbox file ---------------------------------------------------------------


def outbox_path(data_dir: Path, server_url: str) -> Path:
    """One outbox per server, so switching servers never mixes their records."""
    digest = hashlib.sha256(server_url.rstrip("/").encode("utf-8")).hexdigest()[:16]
    return data_dir / "outbox" / f"outbox-{digest}.sqlite3"


class Outbox:
    """Thread-safe: the capture path and the sync worker share one connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn = self._open(path)

    @classmethod
    def for_server(cls, data_dir: Path, server_url: str) -> Outbox:
        return cls(outbox_path(data_dir, server_url))

    def _open(self, path: Path) -> sqlite3.Connection:
        try:
            # Owner-only: the outbox holds customers' numbers and consent records.
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            existed = path.exists() and path.stat().st_size > 0
            if not existed:
                fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
                os.close(fd)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"cannot open the outbox {path}: {exc}") from None
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if existed and app_id != APPLICATION_ID:
                raise OutboxError(f"{path} is not a Consent Desk outbox; it was left as it is")
            if version > SCHEMA_VERSION:
                raise OutboxError(f"{path} was written by a newer Consent Desk")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            if version == 0:
                conn.execute("BEGIN IMMEDIATE")
                # Another process may have created it while we waited for the lock.
                if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise OutboxError(
                f"{path} is damaged or not an outbox ({exc}); left as it is"
            ) from None
        except OutboxError:
            conn.close()
            raise
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise OutboxError(f"the outbox could not be written: {exc}") from None

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise OutboxError(f"the outbox could not be read: {exc}") from None

    # --- items ---------------------------------------------------------------

    def add(
        self,
        kind: ItemKind,
        key: uuid.UUID,
        record: Any,
        *,
        subject: str,
        agent: str,
        ref: str | None = None,
    ) -> tuple[OutboxItem, bool]:
        """Queue *record* durably; ``(item, added)``. The same key with the same
        record again gives the waiting item; with a different record, DomainError."""
        body = canonical_json(record)
        with self._write() as conn:
            row = conn.execute("SELECT * FROM items WHERE key = ?", (str(key),)).fetchone()
            if row is not None:
                item = _item(row)
                if item.kind != kind or item.body != body:
                    raise DomainError(f"event id {key} is already queued with different content")
                return item, False
            cur = conn.execute(
                "INSERT INTO items (kind, key, subject, agent, ref, body, queued_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (kind.value, str(key), subject, agent, ref, body, utcnow().isoformat()),
            )
            seq = cur.lastrowid
            row = conn.execute("SELECT * FROM items WHERE seq = ?", (seq,)).fetchone()
        return _item(row), True

    def pending(self, *, limit: int | None = None) -> list[OutboxItem]:
        """Waiting items, oldest first."""
        rows = self._read(
            "SELECT * FROM items WHERE state = 'pending' ORDER BY seq LIMIT ?", (limit or -1,)
        )
        return [_item(r) for r in rows]

    def pending_for(self, subject: str) -> list[OutboxItem]:
        rows = self._read(
            "SELECT * FROM items WHERE state = 'pending' AND subject = ? ORDER BY seq",
            (subject,),
        )
        return [_item(r) for r in rows]

    def pending_for_request(self, request_id: str) -> list[OutboxItem]:
        rows = self._read(
            "SELECT * FROM items WHERE state = 'pending' AND ref = ? ORDER BY seq",
            (request_id,),
        )
        return [_item(r) for r in rows]

    def pending_of_kind(self, kind: ItemKind) -> list[OutboxItem]:
        rows = self._read(
            "SELECT * FROM items WHERE state = 'pending' AND kind = ? ORDER BY seq",
            (kind.value,),
        )
        return [_item(r) for r in rows]

    def pending_count(self) -> int:
        return int(self._read("SELECT count(*) FROM items WHERE state = 'pending'")[0][0])

    def rejected(self) -> list[OutboxItem]:
        rows = self._read("SELECT * FROM items WHERE state = 'rejected' ORDER BY seq")
        return [_item(r) for r in rows]

    def mark_sent(self, item: OutboxItem) -> None:
        """The server holds the record: it leaves the outbox."""
        with self._write() as conn:
            conn.execute("DELETE FROM items WHERE seq = ? AND state = 'pending'", (item.seq,))

    def settle(
        self, sent: Sequence[OutboxItem], rejected: Sequence[tuple[OutboxItem, str]]
    ) -> None:
        """Record what the server answered for a whole sync pass, in one transaction."""
        if not sent and not rejected:
            return
        with self._write() as conn:
            conn.executemany(
                "DELETE FROM items WHERE seq = ? AND state = 'pending'", [(i.seq,) for i in sent]
            )
            conn.executemany(
                "UPDATE items SET state = 'rejected', last_error = ?, attempts = attempts + 1"
                " WHERE seq = ?",
                [(reason, i.seq) for i, reason in rejected],
            )
        for item, reason in rejected:
            log.warning("the server refused outbox item %d: %s", item.seq, reason)

    def mark_rejected(self, item: OutboxItem, reason: str) -> None:
        """The server refused the record for good: keep it, with the reason."""
        with self._write() as conn:
            conn.execute(
                "UPDATE items SET state = 'rejected', last_error = ?, attempts = attempts + 1"
                " WHERE seq = ?",
                (reason, item.seq),
            )
        log.warning("the server refused outbox item %d: %s", item.seq, reason)

    def note_failure(self, item: OutboxItem, reason: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE items SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                (reason, item.seq),
            )

    # --- cached reference data (catalogue, scripts, identity) --------------------

    def meta(self, name: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, name: str, value: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _item(row: Sequence[Any]) -> OutboxItem:
    # SELECT * in the schema's column order.
    seq, kind, key, subject, agent, ref, body, queued_at, state, attempts, last_error = row
    return OutboxItem(
        seq=int(seq),
        kind=ItemKind(kind),
        key=uuid.UUID(key),
        subject=str(subject),
        agent=str(agent),
        ref=ref,
        body=str(body),
        queued_at=datetime.fromisoformat(queued_at),
        state=ItemState(state),
        attempts=int(attempts),
        last_error=last_error,
    )
