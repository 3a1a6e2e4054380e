"""The ledger codec: one byte-exact form of a record and the chain link over it.

Both ledgers (the desk's SQLite file and the team server's database) hash the
same canonical JSON, so a record verifies wherever it was written.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from consentdesk.domain.model import to_jsonable

GENESIS = "0" * 64
"""The link before the first entry."""

KIND_CONSENT = "consent"
KIND_REQUEST = "request"
KIND_REQUEST_CHANGE = "request-change"

RECENT_CLOSED = timedelta(days=30)
"""Closed requests stay in a caller's status this long."""


def canonical_json(obj: Any) -> str:
    """The one byte-exact JSON form of a record, as hashed into the chain."""
    return json.dumps(to_jsonable(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def link_hash(prev_hash: str, body: str) -> str:
    """The chain link of an entry: SHA-256 over the previous link and the canonical body."""
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()
