"""The change feed: what changed, derived from ledger entries in ledger order.

Both ledgers number their entries with a strictly increasing ``seq``; that
number is the feed's cursor. A consent entry yields one ``consent.changed``
change for every purpose × channel cell whose status (as
:func:`~consentdesk.domain.status.current_status` decides it) differs before
and after the entry; a request entry yields ``request.changed`` with the
request's new state; an incident record yields ``incident.changed``. Other
entries (flags, call tags) yield nothing but still advance the cursor.

Status that changes by the clock alone (a consent passing its end of
validity) is not an entry and is not in the feed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from consentdesk.domain.codec import KIND_CONSENT, KIND_REQUEST, KIND_REQUEST_CHANGE
from consentdesk.domain.incident import Incident, IncidentNote, fold_incidents, note_from_json
from consentdesk.domain.model import (
    CellStatus,
    Channel,
    ConsentEvent,
    DomainError,
    NewRequest,
    Purpose,
    RequestChange,
    event_from_json,
    new_request_from_json,
    request_change_from_json,
    to_jsonable,
)
from consentdesk.domain.requests import fold_request
from consentdesk.domain.review_records import KIND_INCIDENT
from consentdesk.domain.status import current_status

CONSENT_CHANGED = "consent.changed"
REQUEST_CHANGED = "request.changed"
INCIDENT_CHANGED = "incident.changed"
EVENT_TYPES = (CONSENT_CHANGED, REQUEST_CHANGED, INCIDENT_CHANGED)
FEED_KINDS = (KIND_CONSENT, KIND_REQUEST, KIND_REQUEST_CHANGE, KIND_INCIDENT)
MAX_CURSOR = 2**63 - 1


def parse_cursor(text: str | None) -> int:
    """The entry number a cursor stands for; empty or absent is the start (0)."""
    if text is None or text.strip() == "":
        return 0
    text = text.strip()
    if not text.isdigit() or int(text) > MAX_CURSOR:
        raise DomainError("a cursor is the `next` of an earlier answer: a whole number ≥ 0")
    return int(text)


def check_event_types(types: Iterable[str]) -> tuple[str, ...]:
    """Known event types, deduplicated in the given order; an unknown one is an error."""
    chosen: list[str] = []
    for t in types:
        t = t.strip()
        if t not in EVENT_TYPES:
            raise DomainError(f"unknown event type {t!r}; choose from {', '.join(EVENT_TYPES)}")
        if t not in chosen:
            chosen.append(t)
    if not chosen:
        raise DomainError(f"name at least one event type: {', '.join(EVENT_TYPES)}")
    return tuple(chosen)


def subject_pseudonym(key: bytes, number: str) -> str:
    """A stable id for a subject that does not reveal the number (HMAC-SHA256 with *key*)."""
    digest = hmac.new(key, number.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"sub_{digest[:32]}"


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One ledger entry as both ledgers store it."""

    seq: int
    kind: str
    recorded_at: datetime
    body: str


@dataclass(frozen=True, slots=True)
class Change:
    """One change of the feed. ``subject`` is the number (None for incidents);
    ``order_key`` names the queue it must stay in order within."""

    seq: int
    type: str
    at: datetime
    subject: str | None
    order_key: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self, *, subject_id: str | None, include_number: bool) -> dict[str, Any]:
        """The wire form (Standard Webhooks' ``type`` / ``timestamp`` / ``data``)."""
        data: dict[str, Any] = {"cursor": str(self.seq)}
        if self.subject is not None:
            data["subject_id"] = subject_id
            if include_number:
                data["subject"] = self.subject
        data.update(self.data)
        return {"type": self.type, "timestamp": _iso(self.at), "data": data}


def _iso(at: datetime) -> str:
    return str(to_jsonable(at))


@dataclass(slots=True)
class ChangeDeriver:
    """Walks entries in ledger order and says what each one changed.

    Feed it the earlier entries it needs first (:meth:`learn`: the consents of
    the subjects, the records of the requests and all incident records before
    the page), then the page itself (:meth:`derive`).
    """

    purposes: Sequence[Purpose]
    _consents: dict[str, list[ConsentEvent]] = field(default_factory=dict)
    _requests: dict[str, tuple[NewRequest, list[RequestChange]]] = field(default_factory=dict)
    _incidents: list[IncidentNote] = field(default_factory=list)

    def learn(self, rows: Iterable[LedgerRow]) -> None:
        for row in rows:
            if row.kind == KIND_CONSENT:  # history only: no fold needed
                event = event_from_json(_loads(row))
                self._consents.setdefault(event.subject, []).append(event)
            else:
                self._apply(row)

    def derive(self, rows: Iterable[LedgerRow]) -> list[Change]:
        out: list[Change] = []
        for row in rows:
            out.extend(self._apply(row))
        return out

    def _apply(self, row: LedgerRow) -> list[Change]:
        raw = _loads(row)
        if row.kind == KIND_CONSENT:
            return self._consent(row, event_from_json(raw))
        if row.kind == KIND_REQUEST:
            new = new_request_from_json(raw)
            self._requests[str(new.request_id)] = (new, [])
            return [self._request(row, new, [], None)]
        if row.kind == KIND_REQUEST_CHANGE:
            change = request_change_from_json(raw)
            known = self._requests.get(str(change.request_id))
            if known is None:
                return []  # its request was not given: nothing to compare with
            new, changes = known
            before = fold_request(new, changes).status.value
            changes.append(change)
            return [self._request(row, new, changes, before)]
        if row.kind == KIND_INCIDENT:
            return self._incident(row, note_from_json(raw))
        return []

    def _consent(self, row: LedgerRow, event: ConsentEvent) -> list[Change]:
        history = self._consents.setdefault(event.subject, [])
        before = _cells(current_status(history, self.purposes, row.recorded_at))
        history.append(event)
        after = _cells(current_status(history, self.purposes, row.recorded_at))
        out = []
        for key, cell in after.items():
            old = before.get(key)
            if old is not None and (old.state, old.expires) == (cell.state, cell.expires):
                continue
            out.append(
                Change(
                    row.seq,
                    CONSENT_CHANGED,
                    row.recorded_at,
                    event.subject,
                    f"subject:{event.subject}",
                    {
                        "purpose": cell.purpose,
                        "channel": cell.channel.value,
                        "state": cell.state.value,
                        "previous_state": old.state.value if old else None,
                        "valid_until": _iso(cell.expires) if cell.expires else None,
                        "event_id": str(event.event_id),
                        "jurisdiction": event.jurisdiction.value,
                        "at": _iso(event.at),
                    },
                )
            )
        return out

    def _request(
        self,
        row: LedgerRow,
        new: NewRequest,
        changes: list[RequestChange],
        before: str | None,
    ) -> Change:
        state = fold_request(new, changes)
        return Change(
            row.seq,
            REQUEST_CHANGED,
            row.recorded_at,
            new.subject,
            f"subject:{new.subject}",
            {
                "request_id": str(state.request_id),
                "reference": state.reference,
                "request_type": state.type.value,
                "status": state.status.value,
                "previous_status": before,
                "due": state.due.isoformat(),
                "jurisdiction": state.jurisdiction.value,
            },
        )

    def _incident(self, row: LedgerRow, note: IncidentNote) -> list[Change]:
        self._incidents.append(note)
        found = {i.incident_id: i for i in fold_incidents(self._incidents)}
        incident = found.get(note.incident_id)
        if incident is None:
            return []
        return [
            Change(
                row.seq,
                INCIDENT_CHANGED,
                row.recorded_at,
                None,
                f"incident:{incident.incident_id}",
                _incident_data(incident),
            )
        ]


def _loads(row: LedgerRow) -> Any:
    try:
        return json.loads(row.body)
    except ValueError as exc:
        raise DomainError(f"ledger entry {row.seq} is not JSON") from exc


def _cells(cells: Iterable[CellStatus]) -> dict[tuple[str, Channel], CellStatus]:
    return {(c.purpose, c.channel): c for c in cells}


def _incident_data(incident: Incident) -> dict[str, Any]:
    stage = "closed" if incident.closed else "notified" if incident.notified else "open"
    return {
        "incident_id": str(incident.incident_id),
        "title": incident.opened.title,
        "stage": stage,
        "purposes": list(incident.opened.purposes),
        "regions": list(incident.opened.regions),
        "notify_by": _iso(incident.deadline),
    }
