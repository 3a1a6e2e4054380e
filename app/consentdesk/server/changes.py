"""The server's change feed: pages of changes after a cursor, and a wake-up signal.

Changes are derived from ``entries`` in ``seq`` order by the kernel
(:mod:`consentdesk.domain.changes`). Long polls wait on :class:`ChangeSignal`:
on PostgreSQL every append NOTIFYs ``consentdesk_changes`` (see the appender)
and one LISTEN connection per process bumps a counter, so a waiting request in
any process wakes when any process appends; on SQLite it re-reads briefly.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text
from sqlalchemy.exc import IntegrityError

from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.changes import FEED_KINDS, Change, ChangeDeriver, LedgerRow
from consentdesk.domain.codec import KIND_CONSENT, KIND_REQUEST, KIND_REQUEST_CHANGE
from consentdesk.domain.review_records import KIND_INCIDENT
from consentdesk.server.db import entries, is_sqlite
from consentdesk.server.feed_db import feed_state

log = logging.getLogger("consentdesk.server.changes")

CHANNEL = "consentdesk_changes"
PAGE_LIMIT = 500
SQLITE_POLL_S = 0.2
_PSEUDONYM_KEY = "pseudonym-key"


def notify_appended(conn: Connection) -> None:
    """Tell every server process's listeners that entries were appended (on commit)."""
    if not is_sqlite(conn):
        conn.execute(text(f"NOTIFY {CHANNEL}"))


def head_seq(conn: Connection) -> int:
    row = conn.execute(text("SELECT max(seq) FROM entries")).scalar()
    return int(row or 0)


def read_changes(
    conn: Connection, catalogue: Catalogue, after: int, limit: int = PAGE_LIMIT
) -> tuple[list[Change], int]:
    """Changes of the entries after *after* (up to *limit* entries) and the next cursor."""
    c = entries.c
    page = conn.execute(
        select(c.seq, c.kind, c.subject, c.request_id, c.recorded_at, c.body)
        .where(c.seq > after)
        .order_by(c.seq)
        .limit(limit)
    ).all()
    if not page:
        return [], after
    deriver = ChangeDeriver(tuple(catalogue.purposes))
    deriver.learn(_context(conn, page, after))
    rows = [_row(r) for r in page if r.kind in FEED_KINDS]
    return deriver.derive(rows), int(page[-1].seq)


def _context(conn: Connection, page: Sequence[Any], after: int) -> list[LedgerRow]:
    """What the page's changes are compared with: earlier records of its subjects,
    requests and incidents, in ledger order."""
    c = entries.c
    subjects = sorted({r.subject for r in page if r.kind == KIND_CONSENT})
    request_ids = sorted(
        {r.request_id for r in page if r.kind == KIND_REQUEST_CHANGE and r.request_id}
    )
    cols = (c.seq, c.kind, c.recorded_at, c.body)
    found: list[Any] = []
    if subjects:
        found += conn.execute(
            select(*cols).where(c.kind == KIND_CONSENT, c.subject.in_(subjects), c.seq <= after)
        ).all()
    if request_ids:
        found += conn.execute(
            select(*cols).where(
                c.kind.in_((KIND_REQUEST, KIND_REQUEST_CHANGE)),
                c.request_id.in_(request_ids),
                c.seq <= after,
            )
        ).all()
    if any(r.kind == KIND_INCIDENT for r in page):
        found += conn.execute(select(*cols).where(c.kind == KIND_INCIDENT, c.seq <= after)).all()
    return [_row(r) for r in sorted(found, key=lambda r: r.seq)]


def _row(r: Any) -> LedgerRow:
    at = r.recorded_at
    if at.tzinfo is None:  # SQLite hands back naive UTC
        at = at.replace(tzinfo=UTC)
    return LedgerRow(int(r.seq), r.kind, at, r.body)


def pseudonym_key(engine: Engine) -> bytes:
    """The server's secret for subjects' pseudonymous ids (made on first use)."""
    with engine.begin() as conn:
        value = conn.execute(
            select(feed_state.c.value).where(feed_state.c.name == _PSEUDONYM_KEY)
        ).scalar()
    if value is not None:
        return bytes.fromhex(value)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(feed_state).values(name=_PSEUDONYM_KEY, value=secrets.token_hex(32))
            )
    except IntegrityError:
        pass  # another process made it first
    return pseudonym_key(engine)


class ChangeSignal:
    """A counter that grows whenever entries may have been appended, in any process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.generation = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.listening = threading.Event()

    def start(self) -> None:
        if is_sqlite(self.engine) or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._listen, name="consentdesk-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def bump(self) -> None:
        with self._cond:
            self.generation += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        """Block until the counter passes *seen* or *timeout* passes (threads)."""
        if self._thread is None:
            time.sleep(min(timeout, SQLITE_POLL_S))
            return
        with self._cond:
            self._cond.wait_for(lambda: self.generation != seen, timeout=timeout)

    async def wait_async(self, seen: int, timeout: float) -> None:
        """The same without holding a thread: checks the counter every few ms."""
        step = SQLITE_POLL_S if self._thread is None else 0.02
        deadline = time.monotonic() + timeout
        while self.generation == seen:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(step, left))
            if self._thread is None:
                return  # SQLite: no signal; the caller re-reads

    def _listen(self) -> None:
        import psycopg

        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    self.bump()  # anything appended while we were away
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self.bump()
            except Exception as exc:  # the database went away: try again shortly
                self.listening.clear()
                log.warning("change listener lost its connection (%s)", type(exc).__name__)
                self._stop.wait(1.0)
