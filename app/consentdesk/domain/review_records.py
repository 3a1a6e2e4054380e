"""Ledger record kinds of the review side: QA flags, incidents, call tags and reads.

Each kind says how its canonical-JSON body is read back and which ledger
columns (event id, subject, ref, at) the body implies, so the ledger's
``verify()`` checks these records exactly like consent events. This module
imports nothing from the ledger, so the ledger can import it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from consentdesk.domain.incident import (
    AuthorityNotified,
    CallTag,
    IncidentClosed,
    IncidentOpened,
    note_from_json,
)
from consentdesk.domain.model import to_jsonable
from consentdesk.domain.review import FlagNote, ReadAccess, from_jsonable

KIND_FLAG = "flag"
KIND_INCIDENT = "incident"
KIND_CALL_TAG = "call-tag"
KIND_READ = "read-log"

Columns = tuple[str, str | None, str | None, str]
"""(event_id, subject, ref, at) as the ledger stores them."""


@dataclass(frozen=True, slots=True)
class RecordKind:
    parse: Callable[[Mapping[str, Any]], object]
    columns: Callable[[Any], Columns]


def _at(record: Any) -> str:
    return str(to_jsonable(record.at))


def _flag_columns(note: FlagNote) -> Columns:
    # ref: the flagged action, so an action's flags are one index range.
    return (str(note.record_id), None, str(note.event_id), _at(note))


def _incident_columns(note: IncidentOpened | AuthorityNotified | IncidentClosed) -> Columns:
    return (str(note.record_id), None, str(note.incident_id), _at(note))


def _call_tag_columns(tag: CallTag) -> Columns:
    return (str(tag.record_id), None, str(tag.incident_id), _at(tag))


def _read_columns(read: ReadAccess) -> Columns:
    # subject: whose data was read; ref: who read it. Both are index ranges.
    return (str(read.record_id), read.subject, read.reader, _at(read))


RECORD_KINDS: Mapping[str, RecordKind] = {
    KIND_FLAG: RecordKind(lambda raw: from_jsonable(FlagNote, raw), _flag_columns),
    KIND_INCIDENT: RecordKind(note_from_json, _incident_columns),
    KIND_CALL_TAG: RecordKind(lambda raw: from_jsonable(CallTag, raw), _call_tag_columns),
    KIND_READ: RecordKind(lambda raw: from_jsonable(ReadAccess, raw), _read_columns),
}


def kind_of(record: object) -> str:
    """The ledger kind a review record is stored under."""
    if isinstance(record, FlagNote):
        return KIND_FLAG
    if isinstance(record, IncidentOpened | AuthorityNotified | IncidentClosed):
        return KIND_INCIDENT
    if isinstance(record, CallTag):
        return KIND_CALL_TAG
    if isinstance(record, ReadAccess):
        return KIND_READ
    raise TypeError(f"not a review record: {type(record).__name__}")
