"""Which tokens this server process may accept without asking the database.

Looking a token up on every request costs a round trip per request (about a
fifth of the status lookups a worker can answer). So each process remembers
the users of tokens it has seen, but only while it is listening on PostgreSQL
for ``NOTIFY consentdesk_auth``: every revocation and every disabled or
enabled user sends that notification in its own transaction, and the listener
forgets everything when it arrives. A revoked token therefore fails at the
desk's next request in every process. Whenever the listening connection is
down the cache is off and every request asks the database; an entry is also
never kept longer than :data:`TTL_SECONDS`, nor past its token's expiry.

SQLite servers (one machine, usually one process) look every token up.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from consentdesk.domain.review import Viewer
from consentdesk.server.tokens import CHANNEL, hash_secret

log = logging.getLogger("consentdesk.server.auth")

TTL_SECONDS = 60.0
MAX_ENTRIES = 10_000
_RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True)
class _Entry:
    viewer: Viewer
    expires_at: datetime | None
    stale_at: float  # monotonic


class AuthCache:
    """Token hash → user, valid only while this process hears every change."""

    def __init__(self, conninfo: str | None) -> None:
        self._conninfo = conninfo
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._listening = False
        self._epoch = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_engine(cls, engine: Engine) -> AuthCache:
        if engine.dialect.name != "postgresql":
            return cls(None)
        url = engine.url.set(drivername="postgresql")
        return cls(url.render_as_string(hide_password=False))

    @property
    def listening(self) -> bool:
        """Whether the cache is on (this process hears every change)."""
        return self._listening

    @property
    def epoch(self) -> int:
        """Changes whenever the cache is cleared; pass it back to :meth:`put`."""
        return self._epoch

    def get(self, token: str) -> Viewer | None:
        if not self._listening:
            self._start()
            return None
        with self._lock:
            entry = self._entries.get(hash_secret(token))
        if entry is None or entry.stale_at < time.monotonic():
            return None
        if entry.expires_at is not None and entry.expires_at <= datetime.now(UTC):
            return None
        return entry.viewer

    def put(self, token: str, viewer: Viewer, expires_at: datetime | None, epoch: int) -> None:
        """Remember *viewer* if nothing changed since the lookup began at *epoch*."""
        with self._lock:
            if not self._listening or epoch != self._epoch:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            stale = time.monotonic() + TTL_SECONDS
            self._entries[hash_secret(token)] = _Entry(viewer, expires_at, stale)

    def clear(self, *, listening: bool | None = None) -> None:
        with self._lock:
            self._entries.clear()
            self._epoch += 1
            if listening is not None:
                self._listening = listening

    def stop(self) -> None:
        self._stop.set()
        self.clear(listening=False)

    # --- the listener -------------------------------------------------------------

    def _start(self) -> None:
        if self._conninfo is None or self._stop.is_set():
            return
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._listen, name="auth-listener", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        import psycopg

        failures = 0
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    str(self._conninfo),
                    autocommit=True,
                    application_name="consentdesk-server-auth",
                    keepalives=1,
                    keepalives_idle=10,
                    keepalives_interval=5,
                    keepalives_count=3,
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.clear(listening=True)  # changes missed while away are forgotten
                    failures = 0
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self.clear()
                        conn.execute("SELECT 1")  # notices a dead connection
            except psycopg.Error as exc:
                self.clear(listening=False)
                level = logging.WARNING if failures == 0 else logging.DEBUG
                log.log(level, "token cache off: not listening (%s)", type(exc).__name__)
                self._stop.wait(_RETRY_SECONDS[min(failures, len(_RETRY_SECONDS) - 1)])
                failures += 1
        self.clear(listening=False)
