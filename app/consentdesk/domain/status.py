"""Current consent status: a pure function of the event history."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from consentdesk.domain.model import (
    CellStatus,
    Channel,
    ConsentEvent,
    ConsentState,
    Purpose,
)


def effective_events(events: Iterable[ConsentEvent]) -> list[ConsentEvent]:
    """Events that still count: corrected events drop out, void corrections too."""
    events = list(events)
    corrected = {e.corrects for e in events if e.corrects is not None}
    return [e for e in events if e.event_id not in corrected and e.state != ConsentState.VOID]


def current_status(
    events: Iterable[ConsentEvent],
    purposes: Iterable[Purpose],
    now: datetime,
) -> tuple[CellStatus, ...]:
    """Status of every purpose × channel of the catalogue at *now*.

    Events are taken in the order given (ledger order); the latest effective
    event for a cell wins. A given consent past its ``valid_until`` is expired;
    a cell never asked is unknown.
    """
    latest: dict[tuple[str, Channel], ConsentEvent] = {}
    for e in effective_events(events):
        latest[(e.purpose, e.channel)] = e
    cells: list[CellStatus] = []
    for p in purposes:
        for ch in p.channels:
            ev = latest.get((p.id, ch))
            if ev is None:
                cells.append(CellStatus(p.id, ch, ConsentState.UNKNOWN))
            elif ev.state == ConsentState.GIVEN and ev.valid_until is not None:
                state = ConsentState.EXPIRED if now >= ev.valid_until else ConsentState.GIVEN
                cells.append(CellStatus(p.id, ch, state, ev, ev.valid_until))
            else:
                cells.append(CellStatus(p.id, ch, ev.state, ev))
    return tuple(cells)
