"""Incident changes, pushed to the desks: this process's view of "the incident version".

The version is the sequence number of the newest incident record in the ledger
(notes are append-only, so it only grows; an index on (kind, seq) makes it one
lookup). Server processes share nothing in memory, so each keeps a watcher
thread: on PostgreSQL it LISTENs on :data:`CHANNEL` (the store NOTIFYs in the
transaction that appends an incident note, so every process hears of it on
commit) and re-reads the version on each notification, and every few seconds
anyway in case a notification was lost; on SQLite it re-reads every half second.
Requests wait on the in-memory version, never on the database. The thread
runs while desks wait and ends after :data:`IDLE_STOP_S` without one.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import Connection, Engine, func, select, text

from consentdesk.domain.review_records import KIND_INCIDENT
from consentdesk.server.db import entries, is_sqlite

log = logging.getLogger("consentdesk.server.incidents")

CHANNEL = "consentdesk_incidents"
SQLITE_POLL_S = 0.5
LISTEN_RECHECK_S = 5.0
RETRY_S = 2.0
WAIT_STEP_S = 0.1
DISCONNECT_CHECK_S = 1.0
IDLE_STOP_S = 120.0  # no desk waited this long: the thread (and its connection) goes


def server_exiting() -> bool:
    """True once uvicorn was asked to stop (SIGTERM/SIGINT): held requests answer
    at once instead of delaying the graceful shutdown until their hold ends.

    uvicorn's handler is its ``Server.handle_exit``; its server says whether it
    is exiting. Anywhere else (tests' in-thread servers) this is just False.
    """
    handler = signal.getsignal(signal.SIGTERM)
    server = getattr(handler, "__self__", None)
    return bool(getattr(server, "should_exit", False))


def incident_version(conn: Connection) -> int:
    """Sequence number of the newest incident record (0: none yet)."""
    newest = conn.execute(
        select(func.max(entries.c.seq)).where(entries.c.kind == KIND_INCIDENT)
    ).scalar()
    return int(newest or 0)


def notify_incident_change(conn: Connection) -> None:
    """Inside the transaction that appends an incident note: tell every server
    process once it commits (PostgreSQL; SQLite processes poll)."""
    if not is_sqlite(conn):
        conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


class IncidentWatch:
    """The incident version as this process last saw it, kept fresh by a thread
    started on first use."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._version: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_used = time.monotonic()

    def _ensure_started(self) -> None:
        self._last_used = time.monotonic()
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="incident-watch", daemon=True)
            self._thread.start()

    def _idle(self) -> bool:
        """True (and the thread forgotten) once nobody waited for IDLE_STOP_S."""
        with self._lock:
            if time.monotonic() - self._last_used < IDLE_STOP_S:
                return False
            self._thread = None
            self._version = None  # unwatched: read afresh when next asked
            return True

    def stop(self) -> None:
        """Stop watching; a thread waiting on PostgreSQL is a daemon and is not waited for."""
        self._stop.set()

    def read_now(self) -> int:
        """Read the version from the database (on a worker thread)."""
        with self.engine.connect() as conn:
            version = incident_version(conn)
        self._version = version
        return version

    async def wait_beyond(
        self,
        after: int | None,
        timeout: float,
        *,
        gone: Callable[[], Awaitable[bool]] | None = None,
    ) -> int:
        """The version once it differs from *after*, or the same after *timeout*
        (or as soon as ``gone()`` says the desk hung up)."""
        self._ensure_started()
        if self._version is None:
            await asyncio.to_thread(self.read_now)
        start = time.monotonic()
        checked = start
        while True:
            self._last_used = now = time.monotonic()
            version = self._version
            if version is None:  # the thread went idle meanwhile: read it here
                version = await asyncio.to_thread(self.read_now)
            if version != after or now - start >= timeout or self._stop.is_set():
                return version
            if server_exiting():
                return version
            if gone is not None and now - checked >= DISCONNECT_CHECK_S:
                checked = now
                if await gone():
                    return version
            await asyncio.sleep(WAIT_STEP_S)

    # --- the watcher thread ------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set() and not self._idle():
            try:
                if is_sqlite(self.engine):
                    self._poll()
                else:
                    self._listen()
            except Exception as exc:  # the database went away: try again shortly
                log.warning("incident watch interrupted (%s); retrying", type(exc).__name__)
                self._stop.wait(RETRY_S)

    def _poll(self) -> None:
        while not self._stop.is_set() and not self._idle():
            self.read_now()
            self._stop.wait(SQLITE_POLL_S)

    def _listen(self) -> None:
        import psycopg

        url = self.engine.url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True, application_name="consentdesk-watch") as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            while not self._stop.is_set() and not self._idle():
                self.read_now()  # after LISTEN: no change between the two is missed
                for _note in conn.notifies(timeout=LISTEN_RECHECK_S, stop_after=1):
                    pass
