"""This shift's recent calls, so the agent can get back to the last caller.

A small SQLite file in the data folder, separate from the consent ledger:
it is a convenience list, not a record, and it forgets. Calls are kept for
``calls.retention_hours`` (0: until the end of the local day) and purged when
the store opens and before every read, so nothing older is ever shown.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from consentdesk.domain.model import utcnow
from consentdesk.platform.config import Config
from consentdesk.telephony.events import CallEvent, CallPhase

FILE_NAME = "recent-calls.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    number TEXT,
    raw_number TEXT NOT NULL DEFAULT '',
    display_name TEXT NOT NULL DEFAULT '',
    incoming_at TEXT NOT NULL,
    answered_at TEXT,
    ended_at TEXT,
    last_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_last_at ON calls (last_at);
CREATE TABLE IF NOT EXISTS call_captures (
    call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    PRIMARY KEY (call_id, event_id)
);
"""


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One recent call with the ids of the captures made during it."""

    call_id: str
    source: str
    number: str | None
    raw_number: str
    display_name: str
    incoming_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    captures: tuple[uuid.UUID, ...] = ()


def _ts(value: datetime) -> str:
    # Fixed-width UTC text sorts and compares correctly in SQL.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def retention_cutoff(now: datetime, retention_hours: int) -> datetime:
    """Calls whose last activity is before this instant are purged.

    ``retention_hours == 0`` keeps calls until the end of the local day, i.e.
    purges everything from before local midnight today.
    """
    if retention_hours > 0:
        return now - timedelta(hours=retention_hours)
    local = now.astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


_PHASE_COLUMNS = {
    CallPhase.INCOMING: "incoming_at",
    CallPhase.ANSWERED: "answered_at",
    CallPhase.ENDED: "ended_at",
}


# First time of each phase wins; the row's first event set incoming_at.
_UPSERT = """
INSERT INTO calls (call_id, source, number, raw_number, display_name,
                   incoming_at, answered_at, ended_at, last_at)
VALUES (:call_id, :source, :number, :raw_number, :display_name,
        :incoming_at, :answered_at, :ended_at, :last_at)
ON CONFLICT (call_id) DO UPDATE SET
    answered_at = COALESCE(calls.answered_at, excluded.answered_at),
    ended_at = COALESCE(calls.ended_at, excluded.ended_at),
    last_at = MAX(calls.last_at, excluded.last_at)
"""


class RecentCalls:
    """Store of recent calls; every operation uses its own short connection.

    Holding no connection means nothing to close: the sidebar's worker, the
    ``consentdesk calls`` command and tests can all use it at once, and a
    quitting sidebar leaves no work behind.
    """

    def __init__(
        self,
        path: Path,
        *,
        retention_hours: int = 0,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.path = path
        self.retention_hours = retention_hours
        self._now = now
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # private from the start
        os.close(fd)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
        self.purge()

    @classmethod
    def open(cls, data_dir: Path, config: Config) -> RecentCalls:
        return cls(data_dir / FILE_NAME, retention_hours=int(config.get("calls.retention_hours")))

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One transaction on a fresh connection, closed afterwards."""
        db = sqlite3.connect(self.path, timeout=5.0)
        try:
            db.execute("PRAGMA foreign_keys=ON")
            with db:
                yield db
        finally:
            db.close()

    def purge(self) -> int:
        """Delete calls past retention; returns how many went."""
        cutoff = _ts(retention_cutoff(self._now(), self.retention_hours))
        with self._connect() as db:
            return db.execute("DELETE FROM calls WHERE last_at < ?", (cutoff,)).rowcount

    def record(self, event: CallEvent) -> None:
        """Fold one call event into its call's row (first time of each phase wins)."""
        self.record_many([event])

    def record_many(self, events: Sequence[CallEvent]) -> None:
        """Fold *events*, in order, in one transaction: one upsert per call, so a
        burst costs one commit and one statement per call, not two per event."""
        rows: dict[str, dict[str, str | None]] = {}
        for event in events:
            at = _ts(event.at)
            row = rows.get(event.call_id)
            if row is None:
                row = rows[event.call_id] = {
                    "call_id": event.call_id,
                    "source": event.source.value,
                    "number": event.number,
                    "raw_number": event.raw_number,
                    "display_name": event.display_name,
                    "incoming_at": at,
                    "answered_at": None,
                    "ended_at": None,
                    "last_at": at,
                }
            column = _PHASE_COLUMNS[event.phase]
            if column != "incoming_at" and row[column] is None:
                row[column] = at
            row["last_at"] = max(row["last_at"] or at, at)
        if not rows:
            return
        with self._connect() as db:
            db.executemany(_UPSERT, list(rows.values()))

    def add_capture(self, call_id: str, event_id: uuid.UUID) -> bool:
        """Note a capture made during *call_id*; False if that call is not kept."""
        with self._connect() as db:
            db.execute(
                "INSERT OR IGNORE INTO call_captures (call_id, event_id)"
                " SELECT call_id, ? FROM calls WHERE call_id = ?",
                (str(event_id), call_id),
            )
            row = db.execute("SELECT 1 FROM calls WHERE call_id = ?", (call_id,)).fetchone()
            return row is not None

    def recent(self, *, limit: int = 50) -> list[CallRecord]:
        """Calls still within retention, newest first."""
        self.purge()
        with self._connect() as db:
            rows = db.execute(
                "SELECT call_id, source, number, raw_number, display_name, incoming_at,"
                " answered_at, ended_at FROM calls ORDER BY incoming_at DESC, call_id LIMIT ?",
                (limit,),
            ).fetchall()
            captures: dict[str, list[uuid.UUID]] = {}
            ids = [r[0] for r in rows]
            if ids:
                marks = ",".join("?" * len(ids))
                for call_id, event_id in db.execute(
                    f"SELECT call_id, event_id FROM call_captures"  # noqa: S608
                    f" WHERE call_id IN ({marks}) ORDER BY rowid",
                    ids,
                ):
                    captures.setdefault(call_id, []).append(uuid.UUID(event_id))
        return [
            CallRecord(
                call_id=r[0],
                source=r[1],
                number=r[2],
                raw_number=r[3],
                display_name=r[4],
                incoming_at=datetime.fromisoformat(r[5]),
                answered_at=_dt(r[6]),
                ended_at=_dt(r[7]),
                captures=tuple(captures.get(r[0], ())),
            )
            for r in rows
        ]
