"""The team ledger's verifiable log: tree nodes and signed checkpoints in the database.

After each append batch (inside its transaction) the new entries become
leaves of the RFC 9162 tree and, when the server has a log key, a checkpoint
of the new size is signed. The key is the admin's: ``CONSENTDESK_LOG_KEY``
(the ``PRIVATE+KEY+...`` text) or ``CONSENTDESK_LOG_KEY_FILE`` (a file with
it); ``consentdesk db log-key --origin NAME`` makes one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, select, text

from consentdesk.domain import merkle, tlog
from consentdesk.domain.backend import BackendError
from consentdesk.domain.checkpoint import (
    Checkpoint,
    CheckpointError,
    SignedNote,
    Signer,
    Verifier,
    sign_checkpoint,
    verify_note,
)
from consentdesk.server.db import entries as entries_table

T = TypeVar("T")

KEY_ENV = "CONSENTDESK_LOG_KEY"
# Through the table, so recorded_at comes back as a datetime on every database.
_ENTRY_LEAVES = select(
    entries_table.c.seq, entries_table.c.kind, entries_table.c.recorded_at, entries_table.c.body
).order_by(entries_table.c.seq)
KEY_FILE_ENV = "CONSENTDESK_LOG_KEY_FILE"
PUBLIC_KEYS_ENV = "CONSENTDESK_LOG_PUBLIC_KEYS"


def load_signer() -> Signer | None:
    """The server's log key from the environment, or None when the admin set none."""
    value = os.environ.get(KEY_ENV, "").strip()
    path = os.environ.get(KEY_FILE_ENV, "").strip()
    if not value and path:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise BackendError(f"cannot read the log key file {path}: {exc.strerror}") from None
    if not value:
        return None
    try:
        return Signer.parse(value)
    except CheckpointError as exc:
        raise BackendError(f"the log key is not usable: {exc}") from None


def reader(conn: Connection) -> merkle.NodeLookup:
    query = text("SELECT hash FROM log_nodes WHERE level = :l AND idx = :i")

    def node(level: int, index: int) -> bytes:
        row = conn.execute(query, {"l": level, "i": index}).first()
        if row is None:
            raise merkle.ProofError(f"the ledger's tree lacks node ({level}, {index})")
        return bytes(row[0])

    return node


def prefetched(conn: Connection, build: Callable[[merkle.NodeLookup], T]) -> T:
    """Run *build* (a proof) on the stored tree with one query for all the nodes it reads."""
    wanted = sorted(set(merkle.nodes_needed(build)))
    found: dict[tuple[int, int], bytes] = {}
    for start in range(0, len(wanted), 500):
        # Literal integers we computed ourselves: one plain statement, no per-pair binds.
        pairs = ", ".join(f"({int(lv)}, {int(i)})" for lv, i in wanted[start : start + 500])
        query = text(f"SELECT level, idx, hash FROM log_nodes WHERE (level, idx) IN ({pairs})")  # noqa: S608
        found.update({(int(lv), int(i)): bytes(h) for lv, i, h in conn.execute(query)})

    def node(level: int, index: int) -> bytes:
        try:
            return found[(level, index)]
        except KeyError:
            raise merkle.ProofError(f"the ledger's tree lacks node ({level}, {index})") from None

    return build(node)


def _leaf(seq: int, kind: str, recorded_at: object, body: str) -> bytes:
    from consentdesk.server.store import as_utc

    return tlog.entry_leaf(seq, kind, as_utc(recorded_at).isoformat(), body)  # type: ignore[arg-type]


def tree_size(conn: Connection) -> int:
    row = conn.execute(text("SELECT max(idx) FROM log_nodes WHERE level = 0")).first()
    return 0 if row is None or row[0] is None else int(row[0]) + 1


class LogWriter:
    """Extends the tree after each append batch, keeping its right edge between batches.

    Several server processes append to one database, so the kept edge is used
    only while the stored tree still ends where it did (same size, same last
    leaf); otherwise it is read again from the stored nodes.
    """

    def __init__(self, signer: Signer | None) -> None:
        self.signer = signer
        self._edge: merkle.CompactRange | None = None
        self._last: bytes | None = None

    def _current(self, conn: Connection, size: int) -> merkle.CompactRange:
        edge = self._edge
        if edge is not None and edge.size == size > 0 and reader(conn)(0, size - 1) == self._last:
            return edge
        return merkle.CompactRange.from_nodes(size, reader(conn))

    def extend(self, conn: Connection) -> None:
        """Add the entries appended since the tree's size and sign the new head (in the
        transaction)."""
        self._edge = None  # until this transaction's outcome is known to be ours
        size = tree_size(conn)
        rows = conn.execute(_ENTRY_LEAVES.where(entries_table.c.seq > size)).all()
        if not rows:
            return
        compact = self._current(conn, size)
        nodes = []
        for seq, kind, recorded_at, body in rows:
            nodes += compact.append(_leaf(seq, kind, recorded_at, body))
        conn.execute(
            text("INSERT INTO log_nodes (level, idx, hash) VALUES (:l, :i, :h)"),
            [{"l": lv, "i": i, "h": h} for lv, i, h in nodes],
        )
        if self.signer is not None:
            root = compact.root()
            note = sign_checkpoint(Checkpoint(self.signer.name, compact.size, root), self.signer)
            conn.execute(
                text("INSERT INTO log_checkpoints (size, root, note) VALUES (:s, :r, :n)"),
                {"s": compact.size, "r": root, "n": note.render()},
            )
        # Checked against the stored tree before the next use (a rollback, another process).
        self._edge = compact
        self._last = next(h for lv, _i, h in reversed(nodes) if lv == 0)


def extend(conn: Connection, signer: Signer | None) -> None:
    """Extend the stored tree once (an admin step, or a test's insider)."""
    LogWriter(signer).extend(conn)


def newest(conn: Connection) -> SignedNote | None:
    row = conn.execute(text("SELECT note FROM log_checkpoints ORDER BY size DESC LIMIT 1")).first()
    return None if row is None else SignedNote.parse(row[0])


def public_keys() -> list[Verifier]:
    """Earlier log keys, still trusted for old checkpoints (``CONSENTDESK_LOG_PUBLIC_KEYS``)."""
    try:
        return [Verifier.parse(k) for k in os.environ.get(PUBLIC_KEYS_ENV, "").split()]
    except CheckpointError as exc:
        raise BackendError(f"{PUBLIC_KEYS_ENV} holds a key that cannot be read: {exc}") from None


def _verified(note: SignedNote, keys: list[Verifier]) -> Checkpoint | None:
    for key in keys:
        try:
            return verify_note(note, key)
        except CheckpointError:
            continue
    return None


def audit(engine: Engine, keys: list[Verifier], anchors: list[tlog.Anchor]) -> tlog.AuditResult:
    """Recompute the tree from the entries and hold it against every signed checkpoint.

    A checkpoint counts if any of *keys* signed it (the current key and the
    ones it replaced).
    """
    problems: list[str] = []
    signed: dict[int, bytes] = {}
    with engine.connect() as conn:
        notes = [r[0] for r in conn.execute(text("SELECT note FROM log_checkpoints ORDER BY size"))]
        if not keys and notes:
            problems.append("no log key to check the checkpoints with; pass --key")
        for raw in notes if keys else []:
            note = SignedNote.parse(raw)
            cp = _verified(note, keys)
            if cp is None:
                size = note.checkpoint().size
                problems.append(f"the checkpoint of {size} entries in the database is forged")
                continue
            signed[cp.size] = cp.root
        entries = conn.execution_options(yield_per=5000).execute(_ENTRY_LEAVES)
        leaves = (_leaf(*r) for r in entries)

        def stored() -> Iterator[tuple[int, int, bytes]]:
            nodes = conn.execution_options(yield_per=5000).execute(
                text("SELECT level, idx, hash FROM log_nodes ORDER BY level, idx")
            )
            for lv, i, h in nodes:
                yield int(lv), int(i), bytes(h)

        result = tlog.audit(leaves, signed, anchors, stored())
    for problem in problems:
        result.fail(problem)
    return result
