"""The embedded ledger on read-only media: read, show and verify, never write.

A ledger copied to a DVD, a read-only share or an archive mount cannot take the
write lock, the write-ahead log or a schema upgrade that the normal opening
needs. :func:`open_ledger_for_reading` falls back to this read-only opening
when (and only when) the ledger exists but cannot be written; any write then
fails with :class:`~consentdesk.stores.ledger.LedgerReadOnly`.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from consentdesk.domain.backend import BackendError
from consentdesk.domain.calendars import DEFAULT_CALENDAR, Calendar
from consentdesk.stores.ledger import (
    APPLICATION_ID,
    BUSY_TIMEOUT_S,
    FILE_NAME,
    EmbeddedLedger,
    LedgerCorrupt,
    LedgerReadOnly,
    LedgerTooNew,
    _check_header,
    _left_alone,
    open_ledger,
    schema_version,
)

log = logging.getLogger("consentdesk.ledger")


def _wal_pending(path: Path) -> bool:
    wal = path.with_name(path.name + "-wal")
    return wal.exists() and wal.stat().st_size > 0


class ReadOnlyLedger(EmbeddedLedger):
    """An existing ledger opened for reading only (``mode=ro``, ``query_only``)."""

    def _create(self) -> None:
        raise BackendError(f"no ledger at {self.path}; check --data-dir")

    def reader_uri(self) -> str:
        path = self.path
        uri = path.absolute().as_uri() + "?mode=ro"
        # Read-only media cannot hold the shared-memory index SQLite wants beside a
        # WAL-mode file. Without a pending write-ahead log (a ledger closed
        # cleanly, as copies are) the main file is all there is: immutable reads
        # it without locks or the index. A pending log must be read, not skipped.
        if not _wal_pending(path) and not path.with_name(path.name + "-shm").exists():
            uri += "&immutable=1"
        return uri

    def _connect(self) -> sqlite3.Connection:
        path = self.path
        _check_header(path)
        if _wal_pending(path) and not path.with_name(path.name + "-shm").exists():
            raise LedgerReadOnly(
                f"ledger {path} is read-only and has unsaved write-ahead log pages "
                f"({path.name}-wal) but no index ({path.name}-shm); copy the folder to "
                "writable storage and open it there"
            )
        try:
            conn = sqlite3.connect(
                self.reader_uri(),
                uri=True,
                timeout=BUSY_TIMEOUT_S,
                check_same_thread=False,
                isolation_level=None,
            )
        except sqlite3.Error as exc:
            raise self._translate(exc) from None
        try:
            self._check(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _check(self, conn: sqlite3.Connection) -> None:
        path = self.path
        try:
            conn.execute("PRAGMA query_only = 1")
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise self._translate(exc) from None
        if app_id != APPLICATION_ID:
            raise LedgerCorrupt(f"{path} is not a Consent Desk ledger; {_left_alone(path)}")
        latest = schema_version()
        if version > latest:
            raise LedgerTooNew(
                f"ledger {path} was written by a newer Consent Desk (schema {version}, "
                f"this one knows {latest}); update Consent Desk. {_left_alone(path)}"
            )
        if version < latest:
            raise LedgerReadOnly(
                f"ledger {path} has an older schema ({version}, this Consent Desk uses "
                f"{latest}) and is read-only, so it cannot be upgraded; copy the folder "
                "to writable storage and open it there"
            )
        log.info("ledger opened read-only")


def open_ledger_for_reading(
    data_dir: Path, *, calendar: Calendar = DEFAULT_CALENDAR
) -> EmbeddedLedger:
    """The ledger in *data_dir*, read-only if it exists but cannot be written.

    For commands that only read (status, history, request list, verify, export):
    a writable ledger opens as usual (created and upgraded as needed).
    """
    try:
        return open_ledger(data_dir, calendar=calendar)
    except LedgerReadOnly:
        if not (data_dir / FILE_NAME).is_file():
            raise
    return ReadOnlyLedger(data_dir / FILE_NAME, calendar=calendar)
