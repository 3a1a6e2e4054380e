"""The embedded ledger's change feed: the same changes the team server offers,
for a single site that integrates locally (``consentdesk changes``).

Changes are derived by the kernel (:mod:`consentdesk.domain.changes`) from the
ledger's entries in ``seq`` order, read through the ledger's read-only
snapshot connection, so following the feed never holds up a capture.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.changes import FEED_KINDS, Change, ChangeDeriver, LedgerRow
from consentdesk.domain.codec import KIND_CONSENT, KIND_REQUEST, KIND_REQUEST_CHANGE
from consentdesk.domain.review_records import KIND_INCIDENT
from consentdesk.stores.ledger import EmbeddedLedger

PAGE_LIMIT = 500
KEY_FILE = "feed-pseudonym.key"
_Row = tuple[int, str, str | None, str | None, str, str]


def read_changes(
    ledger: EmbeddedLedger, catalogue: Catalogue, after: int, limit: int = PAGE_LIMIT
) -> tuple[list[Change], int]:
    """Changes of the entries after *after* (up to *limit* entries) and the next cursor."""
    with ledger.read() as conn:
        page: list[_Row] = conn.execute(
            "SELECT seq, kind, subject, ref, recorded_at, body FROM entries"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        if not page:
            return [], after
        context = _context(conn, page, after)
    deriver = ChangeDeriver(tuple(catalogue.purposes))
    deriver.learn(context)
    return deriver.derive(_row(r) for r in page if r[1] in FEED_KINDS), int(page[-1][0])


def _context(conn: sqlite3.Connection, page: Sequence[_Row], after: int) -> list[LedgerRow]:
    subjects = sorted({r[2] for r in page if r[1] == KIND_CONSENT and r[2]})
    refs = sorted({r[3] for r in page if r[1] == KIND_REQUEST_CHANGE and r[3]})
    found: list[_Row] = []
    cols = "SELECT seq, kind, subject, ref, recorded_at, body FROM entries"
    for subject in subjects:
        found += conn.execute(
            f"{cols} WHERE subject = ? AND kind = ? AND seq <= ?",
            (subject, KIND_CONSENT, after),
        ).fetchall()
    for ref in refs:
        found += conn.execute(
            f"{cols} WHERE kind IN (?, ?) AND ref = ? AND seq <= ?",
            (KIND_REQUEST, KIND_REQUEST_CHANGE, ref, after),
        ).fetchall()
    if any(r[1] == KIND_INCIDENT for r in page):
        found += conn.execute(
            f"{cols} WHERE kind = ? AND seq <= ?",
            (KIND_INCIDENT, after),
        ).fetchall()
    return [_row(r) for r in sorted(found)]


def _row(r: _Row) -> LedgerRow:
    return LedgerRow(int(r[0]), r[1], datetime.fromisoformat(r[4]), r[5])


def follow(
    ledger: EmbeddedLedger,
    catalogue: Catalogue,
    after: int,
    *,
    poll: float = 0.5,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[tuple[list[Change], int]]:
    """Pages of changes as they are appended (by any process), until *stop*."""
    while not stop():
        changes, nxt = read_changes(ledger, catalogue, after)
        if nxt != after:
            yield changes, nxt
            after = nxt
        else:
            time.sleep(poll)


def pseudonym_key(data_dir: Path) -> bytes:
    """This site's key for subjects' pseudonymous ids: made once, readable only by its owner."""
    path = data_dir / KEY_FILE
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return pseudonym_key(data_dir)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_hex(32))
        f.flush()
        os.fsync(f.fileno())
    return pseudonym_key(data_dir)
