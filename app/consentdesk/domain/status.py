"""Current consent status: a pure function of the event history.

Status is a fold by event time, not by arrival: a desk that was offline may
sync a consent captured at 10:00 after another desk recorded a withdrawal at
11:00, and the withdrawal must still stand. Both ledgers decide cells with
:func:`decision_key` (the embedded ledger mirrors it in SQL, and a test holds
the two together).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from consentdesk.domain.model import (
    CellStatus,
    Channel,
    ConsentEvent,
    ConsentState,
    PrivacyRequest,
    Purpose,
    RequestStatus,
    RequestType,
)

# At equal event time a withdrawal or refusal beats a given consent: when in
# doubt, the caller has not agreed. Refusal and withdrawal are ordered too, so
# the result never depends on arrival order.
STATE_RANK = {ConsentState.GIVEN: 0, ConsentState.REFUSED: 1, ConsentState.WITHDRAWN: 2}


def decision_key(at: datetime, state: ConsentState, event_id: uuid.UUID) -> tuple[object, ...]:
    """Sort key of the events of one cell: the greatest key decides the cell.

    Latest event time first, then withdrawal > refusal > given, then the event
    id (a stable tie-break independent of arrival order).
    """
    return (at, STATE_RANK.get(state, -1), str(event_id))


def effective_events(events: Iterable[ConsentEvent]) -> list[ConsentEvent]:
    """Events that still count: corrected events drop out, void corrections too."""
    events = list(events)
    corrected = {e.corrects for e in events if e.corrects is not None}
    return [e for e in events if e.event_id not in corrected and e.state != ConsentState.VOID]


def deciding_events(events: Iterable[ConsentEvent]) -> dict[tuple[str, Channel], ConsentEvent]:
    """The event that decides each cell: the effective event with the greatest key."""
    latest: dict[tuple[str, Channel], ConsentEvent] = {}
    for e in effective_events(events):
        cell = (e.purpose, e.channel)
        held = latest.get(cell)
        if held is None or decision_key(e.at, e.state, e.event_id) > decision_key(
            held.at, held.state, held.event_id
        ):
            latest[cell] = e
    return latest


def stops(request: PrivacyRequest, purpose: Purpose) -> bool:
    """Whether a CCPA request stops *purpose* for its caller.

    An opt-out of sale/sharing (Cal. Civ. Code §1798.120) stops the purposes
    that sell or share; a request to limit sensitive personal information
    (§1798.121) stops those that use it. Both take effect when received: the
    15 business days are a ceiling for complying, not a delay. A request
    rejected or withdrawn stops nothing.
    """
    if request.status in (RequestStatus.REJECTED, RequestStatus.WITHDRAWN):
        return False
    if request.type == RequestType.OPT_OUT_SALE:
        return purpose.sale_or_sharing
    if request.type == RequestType.LIMIT_SENSITIVE:
        return purpose.sensitive
    return False


def _stopping(
    requests: Iterable[PrivacyRequest], purposes: Iterable[Purpose]
) -> dict[str, PrivacyRequest]:
    """The latest request that stops each purpose (by the time it was received)."""
    found: dict[str, PrivacyRequest] = {}
    requests = list(requests)
    for p in purposes:
        mine = [r for r in requests if stops(r, p)]
        if mine:
            found[p.id] = max(mine, key=lambda r: (r.created_at, str(r.request_id)))
    return found


def current_status(
    events: Iterable[ConsentEvent],
    purposes: Iterable[Purpose],
    now: datetime,
    requests: Iterable[PrivacyRequest] = (),
) -> tuple[CellStatus, ...]:
    """Status of every purpose × channel of the catalogue at *now*.

    The effective event with the latest event time decides a cell, whatever
    the order *events* come in (see :func:`decision_key`). A CCPA request
    among *requests* that stops the purpose (see :func:`stops`) decides the
    cell as ``opted-out`` unless a later event decides it (a consent given
    after the opt-out, an opt-in); at equal time the request wins, as a
    withdrawal would. A given consent past its ``valid_until`` is expired; a
    cell never asked is unknown.
    """
    purposes = tuple(purposes)
    latest = deciding_events(events)
    stopped = _stopping(requests, purposes)
    withdrawn = STATE_RANK[ConsentState.WITHDRAWN]
    cells: list[CellStatus] = []
    for p in purposes:
        request = stopped.get(p.id)
        for ch in p.channels:
            ev = latest.get((p.id, ch))
            if request is not None and (
                ev is None or (request.created_at, withdrawn) >= (ev.at, STATE_RANK[ev.state])
            ):
                cells.append(CellStatus(p.id, ch, ConsentState.OPTED_OUT, request=request))
            elif ev is None:
                cells.append(CellStatus(p.id, ch, ConsentState.UNKNOWN))
            elif ev.state == ConsentState.GIVEN and ev.valid_until is not None:
                state = ConsentState.EXPIRED if now >= ev.valid_until else ConsentState.GIVEN
                cells.append(CellStatus(p.id, ch, state, ev, ev.valid_until))
            else:
                cells.append(CellStatus(p.id, ch, ev.state, ev))
    return tuple(cells)
