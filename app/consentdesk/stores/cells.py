"""The embedded ledger's cell projection, kept to the kernel's status rule.

``consent_cells`` holds, per subject × purpose × channel, the entry that
decides the cell. Which one that is comes from ``domain.status.decision_key``:
the SQL ordering below spells the same key (``entries.at`` is the canonical
UTC ISO text of the event time, which sorts as the times do).
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime

from consentdesk.domain.model import ConsentEvent, ConsentState
from consentdesk.domain.status import STATE_RANK, decision_key

_RANK_SQL = " ".join(f"WHEN '{state.value}' THEN {rank}" for state, rank in STATE_RANK.items())

DECISION_ORDER = f"e.at DESC, CASE c.state {_RANK_SQL} ELSE -1 END DESC, c.event_id DESC"
"""ORDER BY over ``consent_index c JOIN entries e``: the deciding event first."""

_HELD = """
    SELECT e.at, c.state, c.event_id FROM consent_cells k
    JOIN consent_index c ON c.subject = k.subject AND c.seq = k.seq
    JOIN entries e ON e.seq = k.seq
    WHERE k.subject = ? AND k.purpose = ? AND k.channel = ?
"""


def decides_over_held(conn: sqlite3.Connection, event: ConsentEvent) -> bool:
    """Whether a new, uncorrected *event* outranks the event deciding its cell now.

    A new event cannot have been corrected yet (a correction names a recorded
    event), so it either takes its cell or leaves it as it is.
    """
    row = conn.execute(_HELD, (event.subject, event.purpose, event.channel.value)).fetchone()
    if row is None:
        return True
    at, state, event_id = row
    held = decision_key(datetime.fromisoformat(at), ConsentState(state), uuid.UUID(event_id))
    return decision_key(event.at, event.state, event.event_id) > held
