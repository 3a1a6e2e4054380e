"""The embedded ledger's verifiable log: tree nodes, signed checkpoints, the keyring anchor.

Each appended entry adds its leaf and the perfect subtrees it completes to
``log_nodes``; each write transaction that appended something signs a
checkpoint (C2SP tlog-checkpoint, Ed25519 key from the OS keyring) into
``log_checkpoints`` before it commits, and after the commit the newest signed
checkpoint is also put in the keyring, outside the file.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from consentdesk.domain import merkle, tlog
from consentdesk.domain.checkpoint import (
    Checkpoint,
    CheckpointError,
    Signature,
    SignedNote,
    Signer,
    Verifier,
    sign_checkpoint,
    verify_note,
)
from consentdesk.platform import ledger_keys
from consentdesk.platform.secrets import KeyringUnavailable

log = logging.getLogger("consentdesk.ledger")

ORIGIN_PREFIX = "consentdesk.desk/"

MIGRATION: tuple[str, ...] = (
    "CREATE TABLE log_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    """CREATE TABLE log_nodes (
        level INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        hash BLOB NOT NULL CHECK (length(hash) = 32),
        PRIMARY KEY (level, idx)
    ) WITHOUT ROWID""",
    """CREATE TABLE log_checkpoints (
        size INTEGER PRIMARY KEY,
        root BLOB NOT NULL CHECK (length(root) = 32),
        signature BLOB NOT NULL
    )""",
    *(
        f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        for table in ("log_meta", "log_nodes", "log_checkpoints")
        for op in ("UPDATE", "DELETE")
    ),
)


def _node_reader(conn: sqlite3.Connection) -> merkle.NodeLookup:
    def node(level: int, index: int) -> bytes:
        row = conn.execute(
            "SELECT hash FROM log_nodes WHERE level = ? AND idx = ?", (level, index)
        ).fetchone()
        if row is None:
            raise merkle.ProofError(f"the ledger's tree lacks node ({level}, {index})")
        return bytes(row[0])

    return node


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM log_meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _has_log(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'log_meta'"
    ).fetchone()
    return row is not None


@dataclass(frozen=True, slots=True)
class Proof:
    """An entry's inclusion proof in a signed checkpoint."""

    seq: int
    kind: str
    recorded_at: str
    body: str
    proof: tuple[bytes, ...]
    note: str


class DeskLog:
    """The log of one ledger file; used by :class:`EmbeddedLedger` under its write lock."""

    def __init__(self, path: Path) -> None:
        self._path = str(Path(path).absolute())
        self._range: merkle.CompactRange | None = None
        self._origin: str | None = None
        self._signer: Signer | None = None
        self._signer_loaded = False
        self._pending: str | None = None
        self._added = False
        self._enabled: bool | None = None  # None: not looked yet

    # -- writing (inside the ledger's write transaction)

    def _start(self, conn: sqlite3.Connection, before: int = 1 << 62) -> str:
        """The ledger's origin, naming it (and adopting older entries) on first use."""
        if self._origin is None:
            origin = _meta(conn, "origin")
            if origin is None:
                origin = ORIGIN_PREFIX + str(uuid.uuid4())
                conn.execute("INSERT INTO log_meta (key, value) VALUES ('origin', ?)", (origin,))
                self._adopt(conn, before)
            self._origin = origin
        return self._origin

    def _adopt(self, conn: sqlite3.Connection, before: int) -> None:
        """Put entries written before the log existed into the tree (once, on upgrade)."""
        compact = merkle.CompactRange()
        rows = conn.execute(
            "SELECT seq, kind, recorded_at, body FROM entries WHERE seq < ? ORDER BY seq", (before,)
        )
        for seq, kind, recorded_at, body in rows.fetchall():
            self._insert(conn, compact.append(tlog.entry_leaf(seq, kind, recorded_at, body)))
        self._range = compact
        if compact.size:
            log.info("adopted %d earlier entries into the ledger's tree", compact.size)

    def _rebuild(self, conn: sqlite3.Connection, before: int) -> merkle.CompactRange:
        """Stored tree nodes are missing (damage or tampering): put back what the entries
        make. The tree is derived data; whether it is signed again is :meth:`seal`'s call."""
        log.warning("the ledger's stored tree is incomplete; rebuilding it from the entries")
        compact = merkle.CompactRange()
        rows = conn.execute(
            "SELECT seq, kind, recorded_at, body FROM entries WHERE seq < ? ORDER BY seq", (before,)
        )
        for seq, kind, recorded_at, body in rows.fetchall():
            conn.executemany(
                "INSERT OR IGNORE INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)",
                compact.append(tlog.entry_leaf(seq, kind, recorded_at, body)),
            )
        return compact

    @staticmethod
    def _insert(conn: sqlite3.Connection, nodes: list[tuple[int, int, bytes]]) -> None:
        conn.executemany("INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)", nodes)

    def add(
        self, conn: sqlite3.Connection, seq: int, kind: str, recorded_at: str, body: str
    ) -> None:
        if self._enabled is None:
            self._enabled = _has_log(conn)  # a file of an older schema has no log
        if not self._enabled:
            return
        self._start(conn, seq)
        if self._range is None or self._range.size != seq - 1:
            try:
                self._range = merkle.CompactRange.from_nodes(seq - 1, _node_reader(conn))
            except merkle.ProofError:
                self._range = self._rebuild(conn, seq)
        self._insert(conn, self._range.append(tlog.entry_leaf(seq, kind, recorded_at, body)))
        self._added = True

    def seal(self, conn: sqlite3.Connection) -> None:
        """Sign a checkpoint of the tree as it stands (the transaction appended something).

        Only a tree that extends the checkpoint kept in the keyring is signed:
        the desk never vouches for a file that was cut short or rewritten.
        """
        if not self._added or self._range is None or self._origin is None:
            return
        self._added = False
        signer = self._load_signer(conn)
        if signer is None:
            return
        cp = Checkpoint(self._origin, self._range.size, self._range.root())
        if not self._extends_held(conn, cp):
            log.error(
                "the ledger file does not extend the checkpoint kept in the keyring; "
                "recorded but not signed: run 'consentdesk ledger verify'"
            )
            return
        note = sign_checkpoint(cp, signer)
        conn.execute(
            "INSERT INTO log_checkpoints (size, root, signature) VALUES (?, ?, ?)",
            (cp.size, cp.root, note.signatures[0].payload),
        )
        self._pending = note.render()

    def _extends_held(self, conn: sqlite3.Connection, cp: Checkpoint) -> bool:
        try:
            text = ledger_keys.get_checkpoint(self._path)
        except KeyringUnavailable:
            return True  # nothing held outside the file to compare with
        if text is None:
            return True
        held = SignedNote.parse(text).checkpoint()
        if held.origin != cp.origin or held.size > cp.size:
            return False
        try:
            proof = merkle.consistency_proof(held.size, cp.size, _node_reader(conn))
            merkle.verify_consistency(held.size, cp.size, held.root, cp.root, proof)
        except merkle.ProofError:
            return False
        return True

    def rolled_back(self) -> None:
        self._added = False
        self._range = None
        self._pending = None

    def committed(self) -> None:
        """Keep the newest checkpoint outside the file too (checked in :meth:`seal`)."""
        note, self._pending = self._pending, None
        if note is None:
            return
        try:
            ledger_keys.set_checkpoint(self._path, note)
        except KeyringUnavailable as exc:
            log.warning("the ledger's checkpoint could not be kept in the keyring: %s", exc)

    def _load_signer(self, conn: sqlite3.Connection) -> Signer | None:
        if self._signer_loaded:
            return self._signer
        self._signer_loaded = True
        origin = self._start(conn)
        try:
            stored = ledger_keys.get_key(origin)
            if stored is None:
                signed = conn.execute("SELECT count(*) FROM log_checkpoints").fetchone()[0]
                if signed:
                    log.warning("the ledger's signing key is not in this keyring; not signing")
                    self._signer_loaded = True
                    return None
                signer = Signer.generate(origin)
                ledger_keys.set_key(origin, signer.text())
                conn.execute(
                    "INSERT INTO log_meta (key, value) VALUES ('public_key', ?)",
                    (signer.verifier().text(),),
                )
            else:
                signer = Signer.parse(stored)
        except KeyringUnavailable as exc:
            log.info("no keyring for the ledger's signing key (%s); not signing", exc)
            return None
        self._signer = signer
        return signer

    # -- reading

    def public_key(self, conn: sqlite3.Connection) -> Verifier | None:
        """The verifier from the keyring's private key (the file's copy is not trusted)."""
        origin = _meta(conn, "origin") if _has_log(conn) else None
        if origin is None:
            return None
        try:
            stored = ledger_keys.get_key(origin)
        except KeyringUnavailable:
            return None
        return None if stored is None else Signer.parse(stored).verifier()

    def signer_for_receipts(self, conn: sqlite3.Connection) -> Signer | None:
        origin = _meta(conn, "origin")
        try:
            stored = None if origin is None else ledger_keys.get_key(origin)
        except KeyringUnavailable:
            return None
        return None if stored is None else Signer.parse(stored)

    def checkpoints(self, conn: sqlite3.Connection, verifier: Verifier) -> Iterator[SignedNote]:
        origin = _meta(conn, "origin") or ""
        rows = conn.execute("SELECT size, root, signature FROM log_checkpoints ORDER BY size")
        for size, root, sig in rows:
            text = Checkpoint(origin, size, bytes(root)).text()
            yield SignedNote(text, (Signature(verifier.name, verifier.hash, bytes(sig)),))

    def newest(self, conn: sqlite3.Connection, verifier: Verifier) -> SignedNote | None:
        origin = _meta(conn, "origin") or ""
        row = conn.execute(
            "SELECT size, root, signature FROM log_checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        text = Checkpoint(origin, row[0], bytes(row[1])).text()
        return SignedNote(text, (Signature(verifier.name, verifier.hash, bytes(row[2])),))

    def prove(self, conn: sqlite3.Connection, event_id: str, note: SignedNote) -> Proof:
        row = conn.execute(
            "SELECT seq, kind, recorded_at, body FROM entries WHERE event_id = ?", (event_id,)
        ).fetchone()
        if row is None:
            raise KeyError(event_id)
        seq, kind, recorded_at, body = row
        size = note.checkpoint().size
        # Point lookups by primary key: SQLite answers each in microseconds.
        path = merkle.inclusion_proof(seq - 1, size, _node_reader(conn))
        return Proof(seq, kind, recorded_at, body, tuple(path), note.render())

    def consistency(self, conn: sqlite3.Connection, old: int, new: int) -> list[bytes]:
        return merkle.consistency_proof(old, new, _node_reader(conn))

    def anchors(self) -> list[tlog.Anchor]:
        """Checkpoints of this path held outside the file (own and server-cosigned)."""
        found = []
        for kind, holder in (("own", "the OS keyring"), ("cosigned", "the team server")):
            try:
                text = ledger_keys.get_checkpoint(self._path, kind)
            except KeyringUnavailable:
                continue
            if text:
                found.append(tlog.Anchor(SignedNote.parse(text).checkpoint(), holder))
        return found


def audit_file(
    conn: sqlite3.Connection, desk_log: DeskLog, key: Verifier | None
) -> tlog.AuditResult:
    """Recompute the ledger's tree from its entries and hold it against every signed head."""
    anchors = desk_log.anchors()
    origin = _meta(conn, "origin") if _has_log(conn) else None
    problems: list[str] = []
    signed: dict[int, bytes] = {}
    for anchor in anchors:
        if origin is not None and anchor.checkpoint.origin != origin:
            problems.append(
                f"{anchor.holder} holds a checkpoint of another ledger "
                f"({anchor.checkpoint.origin}) for this file: the file was replaced"
            )
    signed_count = (
        conn.execute("SELECT count(*) FROM log_checkpoints").fetchone()[0] if origin else 0
    )
    if key is None and signed_count:
        problems.append("the ledger's signing key is not in this keyring; pass --key to check")
    if key is not None and origin is not None:
        for note in desk_log.checkpoints(conn, key):
            try:
                cp = verify_note(note, key)
            except CheckpointError:
                size = note.checkpoint().size
                problems.append(f"the checkpoint of {size} entries in the file is forged")
                continue
            signed[cp.size] = cp.root
    rows = conn.execute("SELECT seq, kind, recorded_at, body FROM entries ORDER BY seq")
    leaves = (tlog.entry_leaf(*row) for row in rows)
    stored = None
    if origin is not None:
        cursor = conn.execute("SELECT level, idx, hash FROM log_nodes ORDER BY level, idx")
        stored = ((lv, i, bytes(h)) for lv, i, h in cursor)
    result = tlog.audit(leaves, signed, anchors, stored)
    for problem in problems:
        result.fail(problem)
    return result
