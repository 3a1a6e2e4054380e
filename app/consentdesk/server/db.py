"""Database: tables, engines for PostgreSQL and SQLite, and Alembic migrations.

The same SQLAlchemy Core code runs on both. ``entries`` is the append-only
ledger (hash-chained); ``requests`` and ``subjects`` are projections and
reference data beside it; ``read_log`` records who read whose data.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from consentdesk.domain.backend import BackendError

log = logging.getLogger("consentdesk.server.db")

metadata = MetaData()

# Column sizes: E.164 is at most 16 characters; ids and names are short.
entries = Table(
    "entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("subject", String(16), nullable=False),
    Column("request_id", String(36), nullable=True),
    Column("agent", String(200), nullable=False),
    Column("team", String(200), nullable=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("body", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # Copied out of the body for the review's filters and sorting (never edited).
    Column("action", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("purpose", String(200), nullable=True),
    Column("channel", String(16), nullable=True),
    Column("request_type", String(32), nullable=True),
    Column("status", String(16), nullable=True),
    Column("reference", String(32), nullable=True),
    Column("jurisdiction", String(8), nullable=True),
    Column("script_id", String(200), nullable=True),
    Column("script_version", String(200), nullable=True),
    Column("call_id", String(200), nullable=True),
    Index("ix_entries_subject_seq", "subject", "seq"),
    Index("ix_entries_request_seq", "request_id", "seq"),
    Index("ix_entries_team_seq", "team", "seq"),
    Index("ix_entries_agent_seq", "agent", "seq"),
    Index("ix_entries_call_id", "call_id"),
    Index("ix_entries_reference", "reference"),
    Index("ix_entries_kind_seq", "kind", "seq"),  # review records by kind (0002)
)

requests = Table(
    "requests",
    metadata,
    Column("request_id", String(36), primary_key=True),
    Column("reference", String(32), nullable=False, unique=True),
    Column("subject", String(16), nullable=False, index=True),
    Column("due", Date, nullable=False),
    Column("is_open", Boolean, nullable=False),
    Column("state", Text, nullable=False),
    Column("updated_seq", BigInteger, nullable=False),
    Index("ix_requests_open_due", "is_open", "due"),
)

subjects = Table(
    "subjects",
    metadata,
    Column("number", String(16), primary_key=True),
    Column("customer_ref", String(200), nullable=True),
    Column("display_name", String(200), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(200), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("team", String(200), nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_name", String(200), ForeignKey("users.name"), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Token lifecycle (0005): what the token is for, when it stops working, when
    # it was last seen (updated at most once a minute), and when it was revoked.
    Column("label", String(200), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# One-time enrollment codes (0005): a lead hands an agent a short code, the desk
# trades it for its own token. Only the code's SHA-256 is stored.
enrollment_codes = Table(
    "enrollment_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("user_name", String(200), ForeignKey("users.name"), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("token_days", Integer, nullable=True),  # the token's lifetime; NULL: no expiry
    Column("used_at", DateTime(timezone=True), nullable=True),
)

# Failed enrollment attempts, shared by every server process: the rate limit
# counts them over a sliding window.
enroll_failures = Table(
    "enroll_failures",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
)

read_log = Table(
    "read_log",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("record_id", String(36), nullable=False, unique=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("reader", String(200), nullable=False),
    Column("reader_team", String(200), nullable=True),
    Column("subject", String(16), nullable=False),
    Column("what", String(16), nullable=False),
    Column("call_id", String(200), nullable=True),
    Column("about", String(36), nullable=True),
    Index("ix_read_log_team_seq", "reader_team", "seq"),
    Index("ix_read_log_subject_seq", "subject", "seq"),
)

# The verifiable log (server/log_store.py, server/witness.py; migration 0003).
log_nodes = Table(
    "log_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)
log_checkpoints = Table(
    "log_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
)
log_witnessed = Table(
    "log_witnessed",
    metadata,
    Column("origin", String(200), primary_key=True),
    Column("public_key", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("agent", String(200), nullable=False),
    Column("cosigned_at", DateTime(timezone=True), nullable=False),
)

# Transaction-scoped PostgreSQL advisory lock that serialises ledger appends
# across every server process (an arbitrary constant: "CDSK").
LEDGER_LOCK_KEY = 0x4344534B

MIGRATIONS = Path(__file__).with_name("migrations")
UNREACHABLE = "cannot reach the database"
WAIT_ENV = "CONSENTDESK_DB_WAIT"
DEFAULT_WAIT_SECONDS = 60.0


class DatabaseError(BackendError):
    """The database URL or the database itself is unusable; message safe to show."""


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` / ``postgres://`` and pin the psycopg 3 driver."""
    try:
        parsed = make_url(url.strip())
    except ArgumentError:
        raise DatabaseError(
            "not a database URL; use postgresql://user@host/db or sqlite:///path"
        ) from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise DatabaseError(f"unsupported database {backend!r}; use PostgreSQL or SQLite")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for *url*; SQLite gets WAL, full sync and explicit transactions."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(
        url,
        connect_args={"application_name": "consentdesk-server"},
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        # No pre-ping round trip per request: a dropped connection fails its
        # statement, SQLAlchemy discards the pool, and the store retries once.
        pool_recycle=3600,
    )


def _sqlite_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is deferred
    # and late), so writers can take the lock up front with BEGIN IMMEDIATE.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    if options.get("isolation_level") == "AUTOCOMMIT":
        return  # each statement commits by itself
    # Every explicit transaction is a write here (reads run in autocommit): taking
    # the lock up front means a transaction never has to upgrade a read lock while
    # another process writes, which SQLite answers with "database is locked" at
    # once instead of waiting out the busy timeout.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction holding the ledger lock from its first statement.

    PostgreSQL: a transaction-scoped advisory lock; SQLite: BEGIN IMMEDIATE.
    Either way the read of the chain head and the append are atomic across
    every server process.
    """
    with engine.connect() as conn:
        conn = conn.execution_options(ledger_write=True)
        with conn.begin():
            if not is_sqlite(conn):
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LEDGER_LOCK_KEY})
            yield conn


def _alembic_config(conn: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def upgrade(engine: Engine) -> str:
    """Bring the schema to the newest revision; returns that revision."""
    from alembic import command

    with write_transaction(engine) as conn:
        command.upgrade(_alembic_config(conn), "head")
    return head_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    cfg = _alembic_config()
    head = ScriptDirectory.from_config(cfg).get_current_head()
    if head is None:
        raise DatabaseError("no migrations found")
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema revision stored in the database (None: never upgraded)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_schema(engine: Engine) -> None:
    """Raise DatabaseError unless the database is reachable and at the newest schema."""
    try:
        current = current_revision(engine)
    except OperationalError as exc:
        raise DatabaseError(f"{UNREACHABLE}: {_first_line(exc)}") from None
    head = head_revision()
    if current != head:
        raise DatabaseError(
            f"the database schema is at {current or 'nothing'}, this server needs {head}; "
            "run: consentdesk db upgrade --database URL"
        )


def wait_for_database(engine: Engine, *, seconds: float | None = None) -> None:
    """:func:`check_schema`, retrying an unreachable database for up to *seconds*
    (``CONSENTDESK_DB_WAIT``, default 60): a server started with, or just before,
    its database waits for it instead of exiting. A wrong schema fails at once."""
    if seconds is None:
        seconds = _wait_seconds()
    deadline = time.monotonic() + seconds
    delay = 0.25
    while True:
        try:
            check_schema(engine)
            return
        except DatabaseError as exc:
            if not str(exc).startswith(UNREACHABLE) or time.monotonic() + delay > deadline:
                raise
            log.warning("%s; retrying for up to %.0fs", exc, deadline - time.monotonic())
        engine.dispose()
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def _wait_seconds() -> float:
    text = os.environ.get(WAIT_ENV, "").strip()
    try:
        value = float(text) if text else DEFAULT_WAIT_SECONDS
    except ValueError:
        raise DatabaseError(f"{WAIT_ENV} must be a number of seconds, not {text!r}") from None
    if value < 0:
        raise DatabaseError(f"{WAIT_ENV} must be 0 or more seconds")
    return value


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
