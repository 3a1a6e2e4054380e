"""Group commit for ledger appends: many records, one locked transaction, one flush.

Each append waits on the ledger lock and a durable commit; done one by one,
that serialises every desk behind one disk flush at a time. Instead, request
threads hand their record to this process's appender thread, which takes
everything waiting (up to :data:`MAX_BATCH`), appends it inside one write
transaction under the ledger lock and commits once. Each record is still
checked, chained and answered on its own: a record that fails its checks is
left out and gets its own error, and the others go ahead.

If the transaction itself fails (connection lost, a bug), it is rolled back
and every record of the batch is tried again in a transaction of its own, so
one bad record cannot sink the rest and nothing is half-written.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Engine,
    String,
    Text,
    bindparam,
    insert,
    text,
)
from sqlalchemy.exc import DBAPIError

from consentdesk.domain.backend import BackendError
from consentdesk.domain.codec import GENESIS, link_hash
from consentdesk.domain.model import DomainError, Receipt, utcnow
from consentdesk.domain.review import Viewer
from consentdesk.server import log_store, problems
from consentdesk.server.changes import notify_appended
from consentdesk.server.db import entries, write_transaction

log = logging.getLogger("consentdesk.server.appender")

T = TypeVar("T")
MAX_BATCH = 256
IDLE_EXIT_S = 30.0  # an idle appender thread ends; the next append starts one

# Errors that belong to one record (bad input, conflicts): answered to its sender.
RECORD_ERRORS = (DomainError, problems.Problem, BackendError)

_HEAD = text("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").columns(
    seq=BigInteger, hash=String
)
_EXISTING = (
    text("SELECT seq, kind, event_id, body, hash, recorded_at FROM entries WHERE event_id IN :ids")
    .bindparams(bindparam("ids", expanding=True))
    .columns(
        seq=BigInteger,
        kind=String,
        event_id=String,
        body=Text,
        hash=String,
        recorded_at=DateTime(timezone=True),
    )
)
_INSERT_ENTRY = insert(entries)
# Every insert names every column, so one compiled statement serves all kinds.
_OPTIONAL_COLUMNS = (
    "request_id",
    "purpose",
    "channel",
    "request_type",
    "status",
    "reference",
    "jurisdiction",
    "script_id",
    "script_version",
    "call_id",
)


@dataclass(frozen=True, slots=True)
class Entry:
    """A ledger entry as the appender wrote or found it."""

    seq: int
    kind: str
    event_id: str
    body: str
    hash: str
    recorded_at: Any

    def receipt(self, *, duplicate: bool) -> Receipt:
        from consentdesk.server.store import as_utc

        return Receipt(
            event_id=uuid.UUID(self.event_id),
            seq=self.seq,
            hash=self.hash,
            recorded_at=as_utc(self.recorded_at),
            duplicate=duplicate,
        )


@dataclass(frozen=True, slots=True)
class Plan(Generic[T]):
    """A checked record: the columns it adds, and its answer once appended.

    ``finish`` may write projections through the connection it is given.
    """

    subject: str
    columns: dict[str, Any]
    finish: Callable[[Connection, Entry], T]
    request_id: uuid.UUID | None = None


@dataclass(eq=False)
class Job(Generic[T]):
    """One record to append.

    ``plan`` checks the record (it may read the database) and raises a record
    error to refuse it; ``on_repeat`` answers a repeat of a stored record.
    ``standalone`` says that neither touches the database (plain consents),
    so rows can be buffered and inserted together.
    """

    viewer: Viewer
    kind: str
    event_id: uuid.UUID
    body: str
    plan: Callable[[Connection], Plan[T]]
    on_repeat: Callable[[Connection, Entry], T]
    standalone: bool = False
    future: Future[T] = field(default_factory=Future)


class Appender:
    """This process's single writer of ledger entries."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._log = log_store.LogWriter(log_store.load_signer())
        self._queue: queue.SimpleQueue[Job[Any]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, job: Job[T]) -> Future[T]:
        """Queue *job*; its future is settled once the record is durable (or refused)."""
        with self._lock:
            self._queue.put(job)
            self._start()
        return job.future

    def append(self, job: Job[T]) -> T:
        """Append *job*'s record (or answer its repeat); blocks until durable."""
        return self.submit(job).result()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="consentdesk-appender", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_EXIT_S)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch: list[Job[Any]]) -> None:
        try:
            outcomes = self._transaction(batch)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0], exc)
                return
            log.warning(
                "a batch of %d appends failed (%s); one by one", len(batch), type(exc).__name__
            )
            for job in batch:
                self._write([job])
            return
        for job, outcome in zip(batch, outcomes, strict=True):
            _settle(job, outcome)

    def _transaction(self, batch: list[Job[Any]]) -> list[Any]:
        """Append the batch in one transaction; per-record errors are returned."""
        for attempt in (1, 2):
            try:
                with write_transaction(self.engine) as conn:
                    outcomes = _append_batch(conn, batch)
                    self._log.extend(conn)  # the tree and a signed head
                    notify_appended(conn)  # change-feed listeners wake on commit
                    return outcomes
            except DBAPIError as exc:
                # A dropped connection: nothing was committed; try once more afresh.
                if attempt == 2 or not exc.connection_invalidated:
                    raise
                log.warning("database connection lost during an append; retrying")
        raise AssertionError("unreachable")


def _settle(job: Job[Any], outcome: Any) -> None:
    if isinstance(outcome, BaseException):
        job.future.set_exception(outcome)
    else:
        job.future.set_result(outcome)


def _append_batch(conn: Connection, batch: list[Job[Any]]) -> list[Any]:
    head_row = conn.execute(_HEAD).first()
    seq, prev = (head_row.seq, head_row.hash) if head_row is not None else (0, GENESIS)
    stored = {
        r.event_id: Entry(r.seq, r.kind, r.event_id, r.body, r.hash, r.recorded_at)
        for r in conn.execute(_EXISTING, {"ids": sorted({str(j.event_id) for j in batch})})
    }
    rows: list[dict[str, Any]] = []

    def flush() -> None:
        if rows:
            conn.execute(_INSERT_ENTRY, rows)
            rows.clear()

    outcomes: list[Any] = []
    for job in batch:
        key = str(job.event_id)
        try:
            prior = stored.get(key)
            if prior is not None:
                if prior.kind != job.kind or prior.body != job.body:
                    raise problems.conflict(
                        "this event id is already recorded with different content",
                        problems.DUPLICATE_CONFLICT,
                    )
                if not job.standalone:
                    flush()
                outcomes.append(job.on_repeat(conn, prior))
                continue
            if not job.standalone:
                flush()  # the checks may read what this batch wrote so far
            plan = job.plan(conn)
        except RECORD_ERRORS as exc:
            outcomes.append(exc)
            continue
        seq += 1
        recorded_at = utcnow()
        digest = link_hash(prev, job.body)
        row: dict[str, Any] = dict.fromkeys(_OPTIONAL_COLUMNS)
        row.update(plan.columns)
        row.update(
            seq=seq,
            kind=job.kind,
            event_id=key,
            subject=plan.subject,
            request_id=str(plan.request_id) if plan.request_id else None,
            agent=job.viewer.name,
            team=job.viewer.team,
            recorded_at=recorded_at,
            body=job.body,
            prev_hash=prev,
            hash=digest,
        )
        rows.append(row)
        prev = digest
        entry = Entry(seq, job.kind, key, job.body, digest, recorded_at)
        stored[key] = entry
        if not job.standalone:
            flush()
        # From here a failure is not the record's fault: it aborts the batch.
        outcomes.append(plan.finish(conn, entry))
    flush()
    return outcomes
