"""The embedded ledger: an append-only, hash-chained SQLite file in the data folder.

Every record (consent event, privacy request, request change) is one row of
``entries``, written once in canonical JSON and linked to the row before it by
``hash = sha256(prev_hash + body)``. Current state is always derived from those
rows; the small ``*_index`` tables are projections written in the same
transaction so that a lookup does not have to parse a subject's whole history.
A file that is not ours (or is damaged) is refused and never written to.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from consentdesk.domain.admission import check_consent, check_new_request, check_number
from consentdesk.domain.backend import (
    BackendError,
    IntegrityError,
    NotFound,
    Unavailable,
)
from consentdesk.domain.calendars import DEFAULT_CALENDAR, Calendar
from consentdesk.domain.catalogue import Catalogue, load_catalogue
from consentdesk.domain.codec import (
    GENESIS,
    KIND_CONSENT,
    KIND_REQUEST,
    KIND_REQUEST_CHANGE,
    RECENT_CLOSED,
    canonical_json,
    link_hash,
)
from consentdesk.domain.incident import CallTag, IncidentNote
from consentdesk.domain.model import (
    ConsentEvent,
    ConsentState,
    DomainError,
    NewRequest,
    PrivacyRequest,
    Receipt,
    RequestChange,
    Subject,
    SubjectStatus,
    event_from_json,
    new_request_from_json,
    request_change_from_json,
    require_utc,
    to_jsonable,
    utcnow,
)
from consentdesk.domain.references import normalize_reference
from consentdesk.domain.requests import check_change, fold_request
from consentdesk.domain.review import FlagNote, ReadAccess
from consentdesk.domain.review_records import RECORD_KINDS, RecordKind, kind_of
from consentdesk.domain.scripts import Script, load_scripts
from consentdesk.domain.status import current_status
from consentdesk.stores.cells import DECISION_ORDER, decides_over_held
from consentdesk.stores.ledger_log import MIGRATION as LOG_MIGRATION
from consentdesk.stores.ledger_log import DeskLog

log = logging.getLogger("consentdesk.ledger")

FILE_NAME = "ledger.sqlite3"
APPLICATION_ID = 0x43444C47  # "CDLG": marks the file as a Consent Desk ledger
BUSY_TIMEOUT_S = 5.0

_REQUEST_KINDS = (KIND_REQUEST, KIND_REQUEST_CHANGE)

_SQLITE_MAGIC = b"SQLite format 3\x00"

# SQLite primary result codes (sqlite3.Error.sqlite_errorcode & 0xFF).
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26


class LedgerCorrupt(IntegrityError):
    """The ledger file is damaged or belongs to another program; it is left as it is."""


class LedgerTooNew(LedgerCorrupt):
    """The ledger was written by a newer Consent Desk with a schema this one does not know."""


class LedgerReadOnly(BackendError):
    """The ledger file or its folder cannot be written."""


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of walking the hash chain: OK with the count, or the first bad entry."""

    ok: bool
    count: int
    first_bad_seq: int | None = None
    reason: str | None = None


# --- schema --------------------------------------------------------------------
# Ordered migration steps: MIGRATIONS[i] takes the file from version i to i + 1.
# Only ever append a step; a released step must never change.


def _append_only(table: str) -> tuple[str, ...]:
    return tuple(
        f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        for op in ("UPDATE", "DELETE")
    )


_APPEND_ONLY_TABLES = ("entries", "consent_index", "request_index")

# Expressions of the review indexes (step 2). SQLite uses an expression index
# only for a query that spells the expression exactly, so the review queries
# import these texts; being part of a released step, they never change.
AGENT_X = "json_extract(body, '$.agent')"
PURPOSE_X = "coalesce(json_extract(body, '$.purpose'), json_extract(body, '$.type'), '')"
ACTION_X = (
    "CASE WHEN kind = 'consent' THEN CASE WHEN json_extract(body, '$.corrects') IS NULL"
    " THEN json_extract(body, '$.state') ELSE 'correction' END ELSE kind END"
)
CALL_X = "json_extract(body, '$.call_id')"
TAIL_X = "substr(subject, -3)"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE entries (
            seq INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            event_id TEXT NOT NULL UNIQUE,
            subject TEXT,
            ref TEXT,
            at TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            prev_hash TEXT NOT NULL CHECK (length(prev_hash) = 64),
            hash TEXT NOT NULL CHECK (length(hash) = 64),
            body TEXT NOT NULL
        )""",
        # kind is in the subject index so one subject's consents and requests
        # are separate contiguous ranges.
        "CREATE INDEX entries_subject ON entries (subject, kind, seq)",
        "CREATE INDEX entries_ref ON entries (kind, ref)",
        # Projection of consent events: just enough to pick the event that
        # decides each cell without parsing the subject's whole history.
        """CREATE TABLE consent_index (
            subject TEXT NOT NULL,
            seq INTEGER NOT NULL,
            purpose TEXT NOT NULL,
            channel TEXT NOT NULL,
            state TEXT NOT NULL,
            event_id TEXT NOT NULL,
            corrects TEXT,
            PRIMARY KEY (subject, seq)
        ) WITHOUT ROWID""",
        # The event that decides each of a subject's cells, kept current on
        # every capture so a status lookup reads one row per cell. Derived and
        # mutable (a correction can hand a cell back to an older event);
        # verify() recomputes it from consent_index.
        """CREATE TABLE consent_cells (
            subject TEXT NOT NULL,
            purpose TEXT NOT NULL,
            channel TEXT NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (subject, purpose, channel)
        ) WITHOUT ROWID""",
        """CREATE TABLE request_index (
            reference TEXT PRIMARY KEY,
            request_id TEXT NOT NULL UNIQUE,
            seq INTEGER NOT NULL
        ) WITHOUT ROWID""",
        # Profiles are reference data, not ledger: they may change.
        """CREATE TABLE subjects (
            number TEXT PRIMARY KEY,
            customer_ref TEXT,
            display_name TEXT,
            updated_at TEXT NOT NULL
        ) WITHOUT ROWID""",
        *(stmt for table in _APPEND_ONLY_TABLES for stmt in _append_only(table)),
    ),
    # The team-lead review's indexes. IF NOT EXISTS: the review used to add
    # them itself to ledgers of schema 1.
    (
        "CREATE INDEX IF NOT EXISTS review_at ON entries (at, seq)",
        "CREATE INDEX IF NOT EXISTS review_kind ON entries (kind, seq)",
        f"CREATE INDEX IF NOT EXISTS review_agent ON entries ({AGENT_X}, at, seq)",
        f"CREATE INDEX IF NOT EXISTS review_purpose ON entries ({PURPOSE_X}, at, seq)",
        f"CREATE INDEX IF NOT EXISTS review_action ON entries ({ACTION_X}, at, seq)",
        f"CREATE INDEX IF NOT EXISTS review_call ON entries ({CALL_X})",
        # Searching by the last digits of a number: the last three pick the range.
        f"CREATE INDEX IF NOT EXISTS review_tail ON entries ({TAIL_X}, subject)",
    ),
    # The verifiable log (Merkle tree nodes, signed checkpoints): stores/ledger_log.py.
    LOG_MIGRATION,
    # Status by event time (kernel): re-decide every cell by the latest event
    # time, withdrawal/refusal over given at equal time, then event id.
    (
        "DELETE FROM consent_cells",
        """INSERT INTO consent_cells (subject, purpose, channel, seq)
        SELECT subject, purpose, channel, seq FROM (
            SELECT c.subject, c.purpose, c.channel, c.seq, row_number() OVER (
                PARTITION BY c.subject, c.purpose, c.channel
                ORDER BY e.at DESC,
                    CASE c.state WHEN 'given' THEN 0 WHEN 'refused' THEN 1
                        WHEN 'withdrawn' THEN 2 ELSE -1 END DESC,
                    c.event_id DESC
            ) AS pick
            FROM consent_index c JOIN entries e ON e.seq = c.seq
            WHERE c.state <> 'void'
              AND c.event_id NOT IN (SELECT corrects FROM consent_index WHERE corrects IS NOT NULL)
        ) WHERE pick = 1""",
    ),
)


def schema_version() -> int:
    return len(MIGRATIONS)


def _guard_triggers() -> frozenset[str]:
    return frozenset(f"{t}_no_{op}" for t in _APPEND_ONLY_TABLES for op in ("update", "delete"))


# --- opening the file ------------------------------------------------------------


def _left_alone(path: Path) -> str:
    return f"{path} was left untouched"


def _check_header(path: Path) -> None:
    """Recognise our file from its header before SQLite touches it at all."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(100)
    except IsADirectoryError:
        raise LedgerCorrupt(f"ledger {path} is a folder, not a ledger file") from None
    except PermissionError:
        raise LedgerReadOnly(f"cannot read ledger {path}: permission denied") from None
    except OSError as exc:
        raise BackendError(f"cannot read ledger {path}: {exc.strerror}") from None
    if size == 0:
        raise LedgerCorrupt(f"ledger {path} is an empty file, not a ledger; {_left_alone(path)}")
    if not head.startswith(_SQLITE_MAGIC):
        raise LedgerCorrupt(
            f"{path} is not a Consent Desk ledger (not an SQLite database); {_left_alone(path)}"
        )
    if len(head) < 100:
        raise LedgerCorrupt(f"ledger {path} is truncated; {_left_alone(path)}")
    if int.from_bytes(head[68:72], "big", signed=True) != APPLICATION_ID:
        raise LedgerCorrupt(
            f"{path} is not a Consent Desk ledger (another program's SQLite database); "
            f"{_left_alone(path)}"
        )
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise LedgerCorrupt(f"ledger {path} has a damaged header; {_left_alone(path)}")
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 32:
        return  # pages may legitimately live in the write-ahead log until a checkpoint
    pages = int.from_bytes(head[28:32], "big")
    header_size_valid = pages > 0 and head[24:28] == head[92:96]
    if size % page_size or (header_size_valid and size < pages * page_size):
        raise LedgerCorrupt(f"ledger {path} is truncated; {_left_alone(path)}")


def _is_readonly_errno(exc: OSError) -> bool:
    return exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS)


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    if directory and os.name != "posix":
        return  # directories cannot be opened for fsync on Windows
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink(missing_ok=True)
        except OSError:
            log.warning("could not remove temporary file %s", p)


def _code(exc: sqlite3.Error) -> int:
    return int(getattr(exc, "sqlite_errorcode", -1)) & 0xFF


# --- record kinds ----------------------------------------------------------------
# Each kind says how to parse its body and which columns the body implies, so
# verify() can re-derive every column. A new kind adds an entry here and, if it
# needs one, a projection table via a migration.


@dataclass(frozen=True, slots=True)
class _Columns:
    event_id: str
    subject: str | None
    ref: str | None
    at: str


def _consent_columns(obj: ConsentEvent, body: Mapping[str, Any], _: Mapping[str, str]) -> _Columns:
    return _Columns(str(obj.event_id), obj.subject, None, str(body["at"]))


def _request_columns(obj: NewRequest, body: Mapping[str, Any], _: Mapping[str, str]) -> _Columns:
    return _Columns(str(obj.event_id), obj.subject, str(obj.request_id), str(body["at"]))


def _change_columns(
    obj: RequestChange, body: Mapping[str, Any], request_subjects: Mapping[str, str]
) -> _Columns:
    ref = str(obj.request_id)
    if ref not in request_subjects:
        raise DomainError("change to a request that is not recorded before it")
    return _Columns(str(obj.event_id), request_subjects[ref], ref, str(body["at"]))


@dataclass(frozen=True, slots=True)
class _Kind:
    parse: Callable[[Mapping[str, Any]], object]
    columns: Callable[[Any, Mapping[str, Any], Mapping[str, str]], _Columns]


def _review_kind(spec: RecordKind) -> _Kind:
    def columns(record: Any, _body: Mapping[str, Any], _requests: Mapping[str, str]) -> _Columns:
        return _Columns(*spec.columns(record))

    return _Kind(spec.parse, columns)


_KINDS: dict[str, _Kind] = {
    KIND_CONSENT: _Kind(event_from_json, _consent_columns),
    KIND_REQUEST: _Kind(new_request_from_json, _request_columns),
    KIND_REQUEST_CHANGE: _Kind(request_change_from_json, _change_columns),
    # QA flags, incidents, call tags and the read log, appended by the review side.
    **{kind: _review_kind(spec) for kind, spec in RECORD_KINDS.items()},
}


def _consent_projection(event: ConsentEvent) -> tuple[str, str, str, str, str | None]:
    return (
        event.purpose,
        event.channel.value,
        event.state.value,
        str(event.event_id),
        str(event.corrects) if event.corrects else None,
    )


# Which event decides a cell follows status.deciding_events: corrected events
# and void corrections drop out, then the greatest status.decision_key (latest
# event time, then withdrawal > refusal > given, then event id) wins. Only the
# deciding events reach current_status, which then gives the same grid as the
# full history would (a property test holds the two together). Event ids are
# unique, so "corrected" can be taken ledger-wide.
_CELL_DECIDER = f"""
    SELECT c.seq FROM consent_index c JOIN entries e ON e.seq = c.seq
    WHERE c.subject = :subject AND c.purpose = :purpose AND c.channel = :channel
      AND c.state <> :void
      AND c.event_id NOT IN (
          SELECT corrects FROM consent_index WHERE subject = :subject AND corrects IS NOT NULL
      )
    ORDER BY {DECISION_ORDER} LIMIT 1
"""  # noqa: S608 (DECISION_ORDER is a constant)
_CELL_MISMATCHES = f"""
    WITH ranked AS (
        SELECT c.subject, c.purpose, c.channel, c.seq,
               row_number() OVER (
                   PARTITION BY c.subject, c.purpose, c.channel ORDER BY {DECISION_ORDER}
               ) AS pick
        FROM consent_index c JOIN entries e ON e.seq = c.seq
        WHERE c.state <> :void
          AND c.event_id NOT IN (SELECT corrects FROM consent_index WHERE corrects IS NOT NULL)
    ),
    expected AS (SELECT subject, purpose, channel, seq FROM ranked WHERE pick = 1),
    stored AS (SELECT subject, purpose, channel, seq FROM consent_cells),
    mismatch AS (
        SELECT * FROM (SELECT * FROM stored EXCEPT SELECT * FROM expected)
        UNION ALL
        SELECT * FROM (SELECT * FROM expected EXCEPT SELECT * FROM stored)
    )
    SELECT count(*) FROM mismatch
"""  # noqa: S608
_SET_CELL = """
    INSERT INTO consent_cells (subject, purpose, channel, seq)
    VALUES (:subject, :purpose, :channel, :seq)
    ON CONFLICT (subject, purpose, channel) DO UPDATE SET seq = excluded.seq
"""


# --- the ledger --------------------------------------------------------------------


def open_ledger(data_dir: Path, *, calendar: Calendar = DEFAULT_CALENDAR) -> EmbeddedLedger:
    """Open (creating if needed) the ledger in *data_dir*; request dates on *calendar*."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if _is_readonly_errno(exc):
            raise LedgerReadOnly(
                f"cannot create data folder {data_dir}: {exc.strerror}; "
                "choose a writable folder with --data-dir"
            ) from None
        raise BackendError(f"cannot create data folder {data_dir}: {exc.strerror}") from None
    if not data_dir.is_dir():
        raise BackendError(f"data folder {data_dir} is not a folder")
    return EmbeddedLedger(data_dir / FILE_NAME, calendar=calendar)


class EmbeddedLedger:
    """The SQLite ledger behind :class:`~consentdesk.domain.backend.Backend`.

    One connection, used by one thread at a time (a lock serialises callers);
    other processes may share the file, writers taking turns via SQLite locks.
    The review side reads through :meth:`read` (a read-only connection per
    thread, so its long queries hold up nobody) and appends its own record
    kinds through :meth:`append_record`.
    """

    def __init__(
        self,
        path: Path,
        *,
        catalogue: Catalogue | None = None,
        scripts: Sequence[Script] | None = None,
        clock: Callable[[], datetime] = utcnow,
        calendar: Calendar = DEFAULT_CALENDAR,
    ) -> None:
        self._path = Path(path)
        self._calendar = calendar
        self._catalogue = catalogue
        self._scripts = tuple(scripts) if scripts is not None else None
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._readers: dict[threading.Thread, sqlite3.Connection] = {}
        self._readers_lock = threading.Lock()
        self._log = DeskLog(self._path)
        if not self._path.exists():
            self._create()
        self._conn = self._connect()
        log.info("ledger opened (schema %d)", schema_version())

    # -- lifecycle

    @property
    def path(self) -> Path:
        return self._path

    @property
    def desk_log(self) -> DeskLog:
        """The verifiable log over the entries; read it through :meth:`read`."""
        return self._log

    def __enter__(self) -> EmbeddedLedger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        with self._readers_lock:
            for reader in self._readers.values():
                reader.close()
            self._readers.clear()

    def _create(self) -> None:
        """Build a fresh ledger beside the final name, then link it into place.

        A crash part-way leaves only a temporary file, never a half-made ledger
        that the next start would have to refuse as foreign.
        """
        parent = self._path.parent
        if not parent.is_dir():
            raise BackendError(f"data folder {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise LedgerReadOnly(f"cannot create ledger {self._path}: the data folder is read-only")
        try:
            fd, name = tempfile.mkstemp(prefix=f".{self._path.name}.", suffix=".new", dir=parent)
        except OSError as exc:
            if _is_readonly_errno(exc):
                raise LedgerReadOnly(f"cannot create ledger {self._path}: {exc.strerror}") from None
            raise BackendError(f"cannot create ledger {self._path}: {exc.strerror}") from None
        os.close(fd)
        tmp = Path(name)
        try:
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                self._apply_migrations(conn, 0)
                conn.execute("COMMIT")
            finally:
                conn.close()
            _fsync_path(tmp)
            try:
                os.link(tmp, self._path)
            except FileExistsError:
                log.info("another process created the ledger first; using it")
            except OSError:
                # No hard links on this file system: rename, which on POSIX would
                # replace a file that appeared meanwhile, so look first.
                if not self._path.exists():
                    os.rename(tmp, self._path)
            _fsync_path(parent, directory=True)
            log.info("ledger created")
        except sqlite3.Error as exc:
            raise BackendError(f"cannot create ledger {self._path}: {exc}") from None
        except OSError as exc:
            if _is_readonly_errno(exc):
                raise LedgerReadOnly(f"cannot create ledger {self._path}: {exc.strerror}") from None
            raise BackendError(f"cannot create ledger {self._path}: {exc.strerror}") from None
        finally:
            _unlink_quietly(tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm"))

    def _connect(self) -> sqlite3.Connection:
        path = self._path
        _check_header(path)
        if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
            raise LedgerReadOnly(
                f"ledger {path} is read-only (the file or its folder cannot be written); "
                "choose a writable folder with --data-dir"
            )
        try:
            conn = sqlite3.connect(
                path.absolute().as_uri() + "?mode=rw",
                uri=True,
                timeout=BUSY_TIMEOUT_S,
                check_same_thread=False,
                isolation_level=None,
            )
        except sqlite3.Error as exc:
            raise self._translate(exc) from None
        try:
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        path = self._path
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise BackendError(f"ledger {path} cannot use write-ahead logging ({mode})")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA cache_size=-32768")
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
        if version < 1:
            # Every ledger we create is migrated before it gets its name.
            raise LedgerCorrupt(f"ledger {path} has no schema; {_left_alone(path)}")
        try:
            if version < latest:
                self._migrate(conn)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            conn.execute("SELECT seq FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have upgraded the file while we waited.
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if current < schema_version():
                log.info("upgrading ledger schema %d -> %d", current, schema_version())
                self._apply_migrations(conn, current)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise BackendError(
                f"cannot upgrade ledger {self._path} ({exc}); it was left as it was"
            ) from None

    @staticmethod
    def _apply_migrations(conn: sqlite3.Connection, current: int) -> None:
        for version in range(current, len(MIGRATIONS)):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    # -- plumbing

    def _translate(self, exc: sqlite3.Error) -> BackendError:
        path, code = self._path, _code(exc)
        if code in (_BUSY, _LOCKED):
            return Unavailable(f"ledger {path} is busy (another program is writing); try again")
        if code == _READONLY:
            return LedgerReadOnly(f"ledger {path} is read-only")
        if code in (_CORRUPT, _NOTADB):
            return LedgerCorrupt(f"ledger {path} is damaged ({exc}); {_left_alone(path)}")
        if code == _FULL:
            return BackendError(f"ledger {path}: the disk is full")
        if code == _CANTOPEN:
            return LedgerReadOnly(f"cannot open ledger {path} for writing")
        if code == _IOERR:
            return BackendError(f"ledger {path}: disk input/output error")
        if isinstance(exc, sqlite3.IntegrityError):
            return LedgerCorrupt(f"ledger {path} is inconsistent ({exc})")
        return BackendError(f"ledger {path}: {exc}")

    @contextmanager
    def _session(self) -> Iterator[sqlite3.Connection]:
        """The connection, held by this thread, with SQLite errors made readable."""
        with self._lock:
            if self._conn is None:
                raise BackendError(f"ledger {self._path} is closed")
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise self._translate(exc) from None

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for a multi-query read."""
        with self._session() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One durable write transaction; IMMEDIATE so the chain head cannot move under us."""
        with self._session() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                self._log.rolled_back()
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            try:
                self._log.seal(conn)
                conn.execute("COMMIT")
            except BaseException:
                self._log.rolled_back()
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self._log.committed()

    def _entry_error(self, seq: int, exc: Exception) -> LedgerCorrupt:
        return LedgerCorrupt(
            f"ledger {self._path}: entry {seq} cannot be read ({exc}); "
            "run 'consentdesk ledger verify'"
        )

    def _parse(self, seq: int, kind: str, body: str) -> Any:
        try:
            return _KINDS[kind].parse(json.loads(body))
        except (KeyError, ValueError, TypeError) as exc:  # DomainError is a ValueError
            raise self._entry_error(seq, exc) from None

    def _append(
        self,
        conn: sqlite3.Connection,
        kind: str,
        event_id: uuid.UUID,
        subject: str | None,
        ref: str | None,
        at: datetime,
        body: str,
    ) -> Receipt:
        """Insert one entry at the head of the chain (inside a write transaction)."""
        head = conn.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
        digest = link_hash(prev, body)
        recorded = require_utc(self._clock(), "recorded time")
        conn.execute(
            "INSERT INTO entries (seq, kind, event_id, subject, ref, at, recorded_at,"
            " prev_hash, hash, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                seq,
                kind,
                str(event_id),
                subject,
                ref,
                to_jsonable(at),  # the same text as the body's "at"
                recorded.isoformat(),
                prev,
                digest,
                body,
            ),
        )
        self._log.add(conn, seq, kind, recorded.isoformat(), body)
        return Receipt(event_id=event_id, seq=seq, hash=digest, recorded_at=recorded)

    def _existing(
        self, conn: sqlite3.Connection, event_id: uuid.UUID, kind: str, body: str
    ) -> Receipt | None:
        """The receipt of an already-recorded identical entry, or None if new."""
        row = conn.execute(
            "SELECT seq, kind, hash, recorded_at, body FROM entries WHERE event_id = ?",
            (str(event_id),),
        ).fetchone()
        if row is None:
            return None
        seq, old_kind, digest, recorded_at, old_body = row
        if old_kind != kind or old_body != body:
            raise DomainError(f"event id {event_id} is already recorded with different content")
        return Receipt(
            event_id=event_id,
            seq=seq,
            hash=digest,
            recorded_at=datetime.fromisoformat(recorded_at),
            duplicate=True,
        )

    # -- for the review side

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """One consistent, read-only snapshot of the ledger for queries of its tables.

        The snapshot is on the calling thread's own read-only connection, so a
        long query neither waits for nor holds up captures and other readers;
        it sees everything committed before its first query. SQLite errors
        come out as the ledger's :class:`BackendError` subclasses.
        """
        conn = self._reader()
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    def reader_uri(self) -> str:
        """The URI of the review side's read-only connections."""
        return self._path.absolute().as_uri() + "?mode=ro"

    def _reader(self) -> sqlite3.Connection:
        me = threading.current_thread()
        with self._readers_lock:
            if self._conn is None:
                raise BackendError(f"ledger {self._path} is closed")
            conn = self._readers.get(me)
            if conn is not None:
                return conn
            for gone in [t for t in self._readers if not t.is_alive()]:
                self._readers.pop(gone).close()
            try:
                conn = sqlite3.connect(
                    self.reader_uri(),
                    uri=True,
                    timeout=BUSY_TIMEOUT_S,
                    isolation_level=None,
                    check_same_thread=False,  # closed by close(), perhaps on another thread
                )
                conn.execute("PRAGMA query_only = 1")
                conn.execute("PRAGMA cache_size = -65536")
            except sqlite3.Error as exc:
                raise self._translate(exc) from None
            self._readers[me] = conn
            return conn

    def append_record(
        self,
        record: FlagNote | IncidentNote | CallTag | ReadAccess,
        *,
        check: Callable[[sqlite3.Connection], None] | None = None,
    ) -> Receipt:
        """Append one review record (QA flag, incident note, call tag, read) durably.

        Kind and columns come from the record's entry in ``RECORD_KINDS``, the
        same one :meth:`verify` checks them with. Idempotent by the record id
        like :meth:`capture`: the same record again returns the first receipt
        with ``duplicate=True``; the same id with other content is a
        :class:`DomainError`. *check* runs on the write connection inside the
        write transaction, before the append, so a rule such as "a flag is
        resolved once" holds against concurrent desks; whatever it raises
        rolls the transaction back and reaches the caller.
        """
        kind = kind_of(record)
        event_id, subject, ref, _at = RECORD_KINDS[kind].columns(record)
        record_id = uuid.UUID(event_id)
        body = canonical_json(record)
        with self._write() as conn:
            existing = self._existing(conn, record_id, kind, body)
            if existing is not None:
                return existing
            if check is not None:
                check(conn)
            return self._append(conn, kind, record_id, subject, ref, record.at, body)

    # -- reference data

    def catalogue(self) -> Catalogue:
        if self._catalogue is None:
            self._catalogue = load_catalogue()
        return self._catalogue

    def scripts(self) -> Sequence[Script]:
        if self._scripts is None:
            self._scripts = tuple(load_scripts())
        return self._scripts

    # -- consent

    def _check_event(self, conn: sqlite3.Connection, event: ConsentEvent) -> None:
        check_consent(event, self.catalogue(), self.scripts(), self._clock())
        if event.corrects is not None:
            row = conn.execute(
                "SELECT kind, subject FROM entries WHERE event_id = ?", (str(event.corrects),)
            ).fetchone()
            if row is None or row[0] != KIND_CONSENT or row[1] != event.subject:
                raise DomainError(
                    f"the corrected event {event.corrects} is not a consent event of this subject"
                )

    def _capture(self, conn: sqlite3.Connection, event: ConsentEvent) -> Receipt:
        body = canonical_json(event)
        existing = self._existing(conn, event.event_id, KIND_CONSENT, body)
        if existing is not None:
            return existing
        self._check_event(conn, event)
        receipt = self._append(
            conn, KIND_CONSENT, event.event_id, event.subject, None, event.at, body
        )
        conn.execute(
            "INSERT INTO consent_index (subject, seq, purpose, channel, state, event_id, corrects)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (event.subject, receipt.seq, *_consent_projection(event)),
        )
        cell = {"subject": event.subject, "purpose": event.purpose, "channel": event.channel.value}
        if event.corrects is None:
            # Nothing can have corrected it yet: it takes its cell if it is later.
            if decides_over_held(conn, event):
                conn.execute(_SET_CELL, {**cell, "seq": receipt.seq})
            return receipt
        corrected_cell = conn.execute(
            "SELECT c.purpose, c.channel FROM entries e JOIN consent_index c"
            " ON c.subject = e.subject AND c.seq = e.seq WHERE e.event_id = ?",
            (str(event.corrects),),
        ).fetchone()
        self._refresh_cell(conn, cell)
        if tuple(corrected_cell) != (cell["purpose"], cell["channel"]):
            purpose, channel = corrected_cell
            self._refresh_cell(conn, {**cell, "purpose": purpose, "channel": channel})
        return receipt

    @staticmethod
    def _refresh_cell(conn: sqlite3.Connection, cell: dict[str, str]) -> None:
        params = {**cell, "void": ConsentState.VOID.value}
        row = conn.execute(_CELL_DECIDER, params).fetchone()
        if row is None:
            conn.execute(
                "DELETE FROM consent_cells"
                " WHERE subject = :subject AND purpose = :purpose AND channel = :channel",
                cell,
            )
        else:
            conn.execute(_SET_CELL, {**cell, "seq": row[0]})

    def capture(self, event: ConsentEvent) -> Receipt:
        with self._write() as conn:
            receipt = self._capture(conn, event)
        if not receipt.duplicate:
            log.info("consent event recorded at seq %d", receipt.seq)
        return receipt

    def import_events(self, events: Iterable[ConsentEvent], *, batch_size: int = 5000) -> int:
        """Append many consent events, *batch_size* per durable transaction.

        For bulk loads (seeding, restoring an export): the same checks and
        idempotency as :meth:`capture`. A bad event rolls back its batch and
        raises; earlier batches stay recorded. Returns how many were new.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        added = 0
        iterator = iter(events)
        while True:
            with self._write() as conn:
                taken = 0
                for event in iterator:
                    added += not self._capture(conn, event).duplicate
                    taken += 1
                    if taken == batch_size:
                        break
            if taken < batch_size:
                return added

    def history(self, number: str) -> Sequence[ConsentEvent]:
        check_number(number)
        with self._read() as conn:
            rows = conn.execute(
                "SELECT seq, body FROM entries WHERE subject = ? AND kind = ? ORDER BY seq",
                (number, KIND_CONSENT),
            ).fetchall()
        return tuple(self._parse(seq, KIND_CONSENT, body) for seq, body in rows)

    def status(self, number: str) -> SubjectStatus:
        check_number(number)
        now = require_utc(self._clock(), "current time")
        with self._read() as conn:
            profile = conn.execute(
                "SELECT customer_ref, display_name FROM subjects WHERE number = ?", (number,)
            ).fetchone()
            bodies = conn.execute(
                "SELECT e.seq, e.body FROM consent_cells c JOIN entries e ON e.seq = c.seq"
                " WHERE c.subject = ? ORDER BY e.seq",
                (number,),
            ).fetchall()
            requests = self._fold_requests(self._subject_request_rows(conn, number))
        events = [self._parse(seq, KIND_CONSENT, body) for seq, body in bodies]
        subject = Subject(number, *profile) if profile else Subject(number)
        recent = [r for r in requests if r.is_open or now - r.updated_at <= RECENT_CLOSED]
        return SubjectStatus(
            subject=subject,
            cells=current_status(events, self.catalogue(), now, requests),
            requests=tuple(sorted(recent, key=_due_order)),
        )

    # -- privacy requests

    @staticmethod
    def _subject_request_rows(
        conn: sqlite3.Connection, number: str
    ) -> list[tuple[int, str, str, str]]:
        return conn.execute(
            "SELECT seq, kind, ref, body FROM entries WHERE subject = ? AND kind IN (?, ?)"
            " ORDER BY seq",
            (number, *_REQUEST_KINDS),
        ).fetchall()

    @staticmethod
    def _request_rows(conn: sqlite3.Connection, request_id: str) -> list[tuple[int, str, str, str]]:
        return conn.execute(
            "SELECT seq, kind, ref, body FROM entries WHERE kind IN (?, ?) AND ref = ?"
            " ORDER BY seq",
            (*_REQUEST_KINDS, request_id),
        ).fetchall()

    def _request_records(
        self, rows: Iterable[tuple[int, str, str, str]]
    ) -> dict[str, tuple[NewRequest, list[RequestChange]]]:
        """Each request's creation and changes, in ledger order, keyed by request id."""
        records: dict[str, tuple[NewRequest, list[RequestChange]]] = {}
        for seq, kind, ref, body in rows:
            record = self._parse(seq, kind, body)
            if isinstance(record, NewRequest):
                records[ref] = (record, [])
            elif ref in records:
                records[ref][1].append(record)
            else:
                raise self._entry_error(seq, DomainError("change to an unknown request"))
        return records

    def _fold_requests(self, rows: Iterable[tuple[int, str, str, str]]) -> list[PrivacyRequest]:
        return [
            fold_request(created, changes, self._calendar)
            for created, changes in self._request_records(rows).values()
        ]

    def _one_request(self, conn: sqlite3.Connection, request_id: uuid.UUID) -> PrivacyRequest:
        folded = self._fold_requests(self._request_rows(conn, str(request_id)))
        if not folded:
            raise NotFound(f"no privacy request {request_id}")
        return folded[0]

    def create_request(self, request: NewRequest) -> PrivacyRequest:
        body = canonical_json(request)
        with self._write() as conn:
            if self._existing(conn, request.event_id, KIND_REQUEST, body) is not None:
                return self._one_request(conn, request.request_id)
            check_new_request(request, self.scripts(), self._clock())
            if self._request_rows(conn, str(request.request_id)):
                raise DomainError(f"privacy request {request.request_id} is already recorded")
            taken = conn.execute(
                "SELECT 1 FROM request_index WHERE reference = ?", (request.reference,)
            ).fetchone()
            if taken:
                raise DomainError(f"reference {request.reference} is already in use")
            folded = fold_request(request, (), self._calendar)
            receipt = self._append(
                conn,
                KIND_REQUEST,
                request.event_id,
                request.subject,
                str(request.request_id),
                request.at,
                body,
            )
            conn.execute(
                "INSERT INTO request_index (reference, request_id, seq) VALUES (?, ?, ?)",
                (request.reference, str(request.request_id), receipt.seq),
            )
        log.info("privacy request recorded at seq %d", receipt.seq)
        return folded

    def update_request(self, change: RequestChange) -> PrivacyRequest:
        body = canonical_json(change)
        with self._write() as conn:
            if self._existing(conn, change.event_id, KIND_REQUEST_CHANGE, body) is not None:
                return self._one_request(conn, change.request_id)
            ref = str(change.request_id)
            found = self._request_records(self._request_rows(conn, ref)).get(ref)
            if found is None:
                raise NotFound(f"no privacy request {change.request_id}")
            created, changes = found
            check_change(fold_request(created, changes, self._calendar), change, self._calendar)
            receipt = self._append(
                conn, KIND_REQUEST_CHANGE, change.event_id, created.subject, ref, change.at, body
            )
        log.info("privacy request change recorded at seq %d", receipt.seq)
        return fold_request(created, [*changes, change], self._calendar)

    def requests(
        self, *, number: str | None = None, open_only: bool = False
    ) -> Sequence[PrivacyRequest]:
        with self._read() as conn:
            if number is not None:
                rows = self._subject_request_rows(conn, check_number(number))
            else:
                rows = conn.execute(
                    "SELECT seq, kind, ref, body FROM entries WHERE kind IN (?, ?) ORDER BY seq",
                    _REQUEST_KINDS,
                ).fetchall()
            folded = self._fold_requests(rows)
        if open_only:
            folded = [r for r in folded if r.is_open]
        return tuple(sorted(folded, key=_due_order))

    def request(self, request_id: uuid.UUID) -> PrivacyRequest:
        with self._read() as conn:
            return self._one_request(conn, request_id)

    def find_request(self, reference: str) -> PrivacyRequest:
        wanted = normalize_reference(reference)
        with self._read() as conn:
            row = conn.execute(
                "SELECT request_id FROM request_index WHERE reference = ?", (wanted,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no privacy request with reference {wanted}")
            return self._one_request(conn, uuid.UUID(row[0]))

    # -- subjects

    def save_subject(self, subject: Subject) -> None:
        check_number(subject.number)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO subjects (number, customer_ref, display_name, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (number) DO UPDATE SET"
                " customer_ref = excluded.customer_ref, display_name = excluded.display_name,"
                " updated_at = excluded.updated_at",
                (
                    subject.number,
                    subject.customer_ref,
                    subject.display_name,
                    require_utc(self._clock(), "current time").isoformat(),
                ),
            )

    # -- integrity

    def count(self) -> int:
        with self._session() as conn:
            return int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])

    def verify(self) -> VerifyResult:
        """Walk the whole chain: links, hashes, bodies and the projections derived from them."""
        with self._read() as conn:
            return self._verify(conn)

    def _verify(self, conn: sqlite3.Connection) -> VerifyResult:
        prev, done, consents = GENESIS, 0, 0
        request_subjects: dict[str, str] = {}
        rows = conn.execute(
            "SELECT seq, kind, event_id, subject, ref, at, prev_hash, hash, body"
            " FROM entries ORDER BY seq"
        )
        try:
            for seq, kind, event_id, subject, ref, at, prev_hash, digest, body in rows:
                if seq != done + 1:
                    return VerifyResult(False, done, done + 1, f"entry {done + 1} is missing")
                if prev_hash != prev:
                    problem: str | None = "link to the previous entry is broken"
                elif link_hash(prev_hash, body) != digest:
                    problem = "hash does not match the stored record (record altered)"
                else:
                    columns = (event_id, subject, ref, at)
                    problem = self._check_entry(conn, seq, kind, columns, body, request_subjects)
                if problem:
                    return VerifyResult(False, done, seq, problem)
                consents += kind == KIND_CONSENT
                prev, done = digest, seq
        except sqlite3.DatabaseError as exc:
            # A damaged page: say where the walk stopped rather than fail.
            return VerifyResult(False, done, done + 1, f"the file is damaged ({exc})")
        stray = conn.execute("SELECT count(*) FROM consent_index").fetchone()[0] != consents
        if stray:
            return VerifyResult(False, done, None, "consent index holds rows not in the ledger")
        mismatches = conn.execute(_CELL_MISMATCHES, {"void": ConsentState.VOID.value}).fetchone()[0]
        if mismatches:
            reason = f"{mismatches} consent cells do not match the ledger"
            return VerifyResult(False, done, None, reason)
        requests = conn.execute("SELECT count(*) FROM request_index").fetchone()[0]
        if requests != len(request_subjects):
            return VerifyResult(False, done, None, "request index holds rows not in the ledger")
        triggers = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        }
        missing = _guard_triggers() - triggers
        if missing:
            reason = f"append-only guards were removed: {', '.join(sorted(missing))}"
            return VerifyResult(False, done, None, reason)
        return VerifyResult(True, done)

    @staticmethod
    def _check_entry(
        conn: sqlite3.Connection,
        seq: int,
        kind: str,
        columns: tuple[str, str | None, str | None, str],
        body: str,
        request_subjects: dict[str, str],
    ) -> str | None:
        """Why entry *seq* is inconsistent with its own body, or None if it is sound."""
        spec = _KINDS.get(kind)
        if spec is None:
            return f"unknown record kind {kind!r}"
        try:
            raw = json.loads(body)
            record = spec.parse(raw)
            if canonical_json(record) != body:
                return "record is not in canonical form"
            derived = spec.columns(record, raw, request_subjects)
        except (KeyError, ValueError, TypeError) as exc:
            return f"record cannot be read ({exc})"
        if (derived.event_id, derived.subject, derived.ref, derived.at) != columns:
            return "columns do not match the stored record"
        if isinstance(record, ConsentEvent):
            row = conn.execute(
                "SELECT purpose, channel, state, event_id, corrects FROM consent_index"
                " WHERE subject = ? AND seq = ?",
                (record.subject, seq),
            ).fetchone()
            if row is None or tuple(row) != _consent_projection(record):
                return "consent index does not match the record"
        elif isinstance(record, NewRequest):
            row = conn.execute(
                "SELECT request_id, seq FROM request_index WHERE reference = ?",
                (record.reference,),
            ).fetchone()
            if row is None or tuple(row) != (str(record.request_id), seq):
                return "request index does not match the record"
            request_subjects[str(record.request_id)] = record.subject
        return None


def _due_order(request: PrivacyRequest) -> tuple[Any, ...]:
    return (request.due, request.received, request.reference)
