"""The review store on the embedded SQLite ledger.

Reads query the ledger's ``entries`` table through :meth:`EmbeddedLedger.read`
(a read-only snapshot per worker thread), helped by the ledger's review
indexes; each query names the index that keeps its first page quick on a
million actions. Flags, incident records, call tags and reads are appended to
the same hash chain as consents through :meth:`EmbeddedLedger.append_record`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, tzinfo
from typing import Any

from consentdesk.domain import phone
from consentdesk.domain.admission import check_number
from consentdesk.domain.backend import NotFound
from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.codec import KIND_CONSENT, KIND_REQUEST, KIND_REQUEST_CHANGE
from consentdesk.domain.figures import FigureRecord, check_edges, compute_figures
from consentdesk.domain.incident import (
    CallTag,
    Incident,
    IncidentNote,
    check_incident_note,
    fold_incidents,
    require_incident_manager,
)
from consentdesk.domain.model import (
    Channel,
    ConsentEvent,
    DomainError,
    Jurisdiction,
    PrivacyRequest,
    RequestChange,
    RequestStatus,
    RequestType,
    event_from_json,
    new_request_from_json,
    request_change_from_json,
    to_jsonable,
    utcnow,
)
from consentdesk.domain.review import (
    ActionDetail,
    ActionKind,
    ActionRow,
    Cursor,
    Figures,
    Flag,
    FlagNote,
    Forbidden,
    IntegrityReport,
    Page,
    PageResult,
    QueueItem,
    ReadAccess,
    ReadKind,
    ReadLogEntry,
    ReadLogFilter,
    ReviewFilter,
    Role,
    SearchKind,
    SortKey,
    Viewer,
    check_flag_note,
    check_notice,
    day_bounds,
    fold_flags,
    from_jsonable,
    request_queue,
)
from consentdesk.domain.review_records import (
    KIND_CALL_TAG,
    KIND_FLAG,
    KIND_INCIDENT,
    KIND_READ,
    RECORD_KINDS,
)
from consentdesk.domain.scripts import Script
from consentdesk.stores.ledger import (
    ACTION_X,
    AGENT_X,
    CALL_X,
    PURPOSE_X,
    TAIL_X,
    EmbeddedLedger,
)

log = logging.getLogger("consentdesk.review")

# SQL texts are built only from constants such as these and the ledger's indexed
# *_X expressions (spelt exactly, or SQLite ignores their indexes); S608 is
# silenced for that reason. Values always travel as parameters.
_ACTIONS_SQL = "kind IN ('consent', 'request', 'request-change')"
ACTION_VALUES: Mapping[ActionKind, str] = {
    ActionKind.CONSENT: "given",
    ActionKind.REFUSAL: "refused",
    ActionKind.WITHDRAWAL: "withdrawn",
    ActionKind.CORRECTION: "correction",
    ActionKind.REQUEST: KIND_REQUEST,
    ActionKind.REQUEST_CHANGE: KIND_REQUEST_CHANGE,
}
_KIND_FROM_STATE = {"given": ActionKind.CONSENT, "refused": ActionKind.REFUSAL}

_SORT_EXPR: Mapping[SortKey, str] = {
    SortKey.AGENT: AGENT_X,
    SortKey.PURPOSE: PURPOSE_X,
    SortKey.KIND: ACTION_X,
}
_SORT_INDEX: Mapping[SortKey, str] = {
    SortKey.TIME: "review_at",
    SortKey.AGENT: "review_agent",
    SortKey.PURPOSE: "review_purpose",
    SortKey.KIND: "review_action",
}
_EXPORT_BATCH = 1000


# --- review records ---------------------------------------------------------


def _kind_records(conn: sqlite3.Connection, kind: str, ref: str | None = None) -> list[Any]:
    if ref is None:
        rows = conn.execute(
            "SELECT body FROM entries WHERE kind = ? ORDER BY seq", (kind,)
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT body FROM entries WHERE kind = ? AND ref = ? ORDER BY seq", (kind, ref)
        ).fetchall()
    parse = RECORD_KINDS[kind].parse
    return [parse(json.loads(body)) for (body,) in rows]


def incidents(ledger: EmbeddedLedger, *, open_only: bool = False) -> tuple[Incident, ...]:
    """Incidents on this ledger, newest first (the sidebar banner asks for open ones)."""
    with ledger.read() as conn:
        found = fold_incidents(_kind_records(conn, KIND_INCIDENT))
    return tuple(i for i in found if i.is_open) if open_only else found


def record_incident(ledger: EmbeddedLedger, note: IncidentNote, viewer: Viewer) -> Incident:
    """Append an open/notify/close record for a lead or admin."""
    require_incident_manager(viewer)
    if note.by != viewer.name:
        raise Forbidden("incident records are made in the signed-in user's name")

    def check(conn: sqlite3.Connection) -> None:
        check_incident_note(note, fold_incidents(_kind_records(conn, KIND_INCIDENT)))

    ledger.append_record(note, check=check)
    for inc in incidents(ledger):
        if inc.incident_id == note.incident_id:
            log.info("incident record %s appended", note.action)
            return inc
    raise NotFound(f"no incident {note.incident_id}")


def tag_call(ledger: EmbeddedLedger, tag: CallTag) -> CallTag:
    """Record that a call was about an open incident; a second tag of the call is a no-op."""
    with ledger.read() as conn:
        row = conn.execute(
            "SELECT body FROM entries WHERE event_id = ?", (str(tag.record_id),)
        ).fetchone()
    if row is not None:
        existing: CallTag = from_jsonable(CallTag, json.loads(row[0]))
        return existing

    def check(conn: sqlite3.Connection) -> None:
        known = {i.incident_id: i for i in fold_incidents(_kind_records(conn, KIND_INCIDENT))}
        inc = known.get(tag.incident_id)
        if inc is None:
            raise DomainError("there is no such incident")
        if not inc.is_open:
            raise DomainError("this incident is closed; calls can no longer be tagged")

    ledger.append_record(tag, check=check)
    return tag


def call_tags(ledger: EmbeddedLedger, incident_id: uuid.UUID) -> tuple[CallTag, ...]:
    with ledger.read() as conn:
        return tuple(_kind_records(conn, KIND_CALL_TAG, str(incident_id)))


def log_read(ledger: EmbeddedLedger, read: ReadAccess) -> None:
    """Append one read to the read-access log (who looked at whom, when, from which call)."""
    if read.subject is not None:
        check_number(read.subject)
    ledger.append_record(read)


# --- the review source -----------------------------------------------------------


def _iso(at: datetime) -> str:
    return str(to_jsonable(at))


class SqlReviewSource:
    """:class:`~consentdesk.domain.review.ReviewSource` and incident store on an
    :class:`EmbeddedLedger`.

    *teams* maps agent ids to team names (the embedded ledger has no user
    table); a lead sees only the agents of their team. With *close_ledger* the
    source owns the ledger and closes it in :meth:`close`.
    """

    def __init__(
        self,
        ledger: EmbeddedLedger,
        viewer: Viewer,
        *,
        teams: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = utcnow,
        close_ledger: bool = False,
    ) -> None:
        viewer.require_reviewer()
        self._ledger = ledger
        self._close_ledger = close_ledger
        self._viewer = viewer
        self._teams = dict(teams or {})
        self._clock = clock
        self._closed = False

    # -- plumbing

    @property
    def viewer(self) -> Viewer:
        return self._viewer

    def catalogue(self) -> Catalogue:
        return self._ledger.catalogue()

    def scripts(self) -> Sequence[Script]:
        return self._ledger.scripts()

    def close(self) -> None:
        self._closed = True
        if self._close_ledger:
            self._ledger.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise DomainError("the review is closed")
        with self._ledger.read() as conn:
            yield conn

    def _team_agents(self, team: str) -> list[str]:
        return sorted(a for a, t in self._teams.items() if t == team)

    def _in_scope(self, agent: str) -> bool:
        if self._viewer.role == Role.ADMIN:
            return True
        return self._teams.get(agent) == self._viewer.team

    def _require_scope(self, agent: str) -> None:
        if not self._in_scope(agent):
            raise Forbidden("this action was captured outside your team")

    def _log(self, read: ReadAccess) -> None:
        self._ledger.append_record(read)

    # -- the table

    def _where(self, flt: ReviewFilter, conn: sqlite3.Connection) -> tuple[list[str], list[Any]]:
        clauses = [_ACTIONS_SQL]
        params: list[Any] = []
        if flt.agent is not None:
            clauses.append(f"{AGENT_X} = ?")
            params.append(flt.agent)
        if flt.team is not None:
            clauses.append(f"{AGENT_X} IN (SELECT value FROM json_each(?))")  # noqa: S608
            params.append(json.dumps(self._team_agents(flt.team)))
        if flt.since is not None:
            clauses.append("at >= ?")
            params.append(_iso(flt.since))
        if flt.until is not None:
            clauses.append("at < ?")
            params.append(_iso(flt.until))
        if flt.kinds:
            clauses.append(f"{ACTION_X} IN ({', '.join('?' for _ in flt.kinds)})")
            params.extend(ACTION_VALUES[k] for k in flt.kinds)
        if flt.purpose is not None:
            clauses.append(f"kind = 'consent' AND {PURPOSE_X} = ?")
            params.append(flt.purpose)
        if flt.channel is not None:
            clauses.append("json_extract(body, '$.channel') = ?")
            params.append(flt.channel.value)
        if flt.jurisdiction is not None:
            clauses.append(
                "coalesce(json_extract(body, '$.jurisdiction'), (SELECT json_extract(r.body,"
                " '$.jurisdiction') FROM entries r WHERE r.kind = 'request'"
                " AND r.ref = entries.ref)) = ?"
            )
            params.append(flt.jurisdiction.value)
        if flt.flagged is not None:
            targets = json.dumps(sorted(self._open_flag_targets(conn)))
            if flt.flagged:
                # Row ids of the few flagged actions: lookups, not a scan.
                clauses.append(
                    "rowid IN (SELECT seq FROM entries WHERE event_id IN"
                    " (SELECT value FROM json_each(?)))"
                )
            else:
                clauses.append("event_id NOT IN (SELECT value FROM json_each(?))")
            params.append(targets)
        if flt.search is not None:
            kind, value = flt.search.kind, flt.search.value
            if kind == SearchKind.NUMBER:
                clauses.append("subject = ?")
                params.append(value)
            elif kind == SearchKind.DIGITS:
                # The matching numbers first (one range of the tail index), then
                # their records by subject-index lookups.
                numbers = [
                    n
                    for (n,) in conn.execute(
                        f"SELECT DISTINCT subject FROM entries INDEXED BY review_tail"  # noqa: S608
                        f" WHERE {TAIL_X} = ? AND subject LIKE ?",
                        (value[-3:], "%" + value),
                    )
                ]
                clauses.append("subject IN (SELECT value FROM json_each(?))")
                params.append(json.dumps(numbers))
            elif kind == SearchKind.CALL:
                clauses.append(f"{CALL_X} = ?")
                params.append(value)
            else:  # a reference or its start: one range of the reference key
                ids = [
                    i
                    for (i,) in conn.execute(
                        "SELECT request_id FROM request_index WHERE reference >= ?"
                        " AND reference < ?",
                        (value, value + "\uffff"),
                    )
                ]
                clauses.append(
                    "kind IN ('request', 'request-change')"
                    " AND ref IN (SELECT value FROM json_each(?))"
                )
                params.append(json.dumps(ids))
        return clauses, params

    @staticmethod
    def _index_for(flt: ReviewFilter, page: Page) -> str | None:
        """The index that yields this view's first rows in order without a sort."""
        if flt.search is not None or flt.flagged:
            return None  # few rows: SQLite picks the subject/ref/call/event-id index
        if page.sort == SortKey.TIME:
            if flt.agent is not None or flt.team is not None:
                # One agent is one index range; a team a few ranges merged by a
                # small sort, far cheaper than filtering the whole time index.
                return "review_agent"
            if flt.purpose is not None:
                return "review_purpose"
            if len(flt.kinds) == 1:
                return "review_action"
        return _SORT_INDEX[page.sort]

    def _query_rows(
        self, conn: sqlite3.Connection, flt: ReviewFilter, page: Page
    ) -> list[tuple[Any, ...]]:
        clauses, params = self._where(flt, conn)
        direction = "DESC" if page.descending else "ASC"
        sort_expr = _SORT_EXPR.get(page.sort)
        keys = ([sort_expr] if sort_expr else []) + ["at", "seq"]
        if page.after is not None:
            op = "<" if page.descending else ">"
            values: list[Any] = [page.after.key or ""] if sort_expr else []
            values += [_iso(page.after.at), page.after.seq]
            clauses.append(f"({', '.join(keys)}) {op} ({', '.join('?' for _ in keys)})")
            params.extend(values)
        index = self._index_for(flt, page)
        hint = f" INDEXED BY {index}" if index else ""
        order = ", ".join(f"{k} {direction}" for k in keys)
        sql = (
            f"SELECT seq, kind, event_id, subject, ref, at, body, {sort_expr or 'NULL'}"  # noqa: S608
            f" FROM entries{hint} WHERE {' AND '.join(clauses)} ORDER BY {order}"
            " LIMIT ? OFFSET ?"
        )
        return conn.execute(sql, [*params, page.limit, page.offset]).fetchall()

    @staticmethod
    def _next(raw: Sequence[tuple[Any, ...]], page: Page) -> Cursor | None:
        """The cursor after a full page: the last row's sort value as SQLite sorted it."""
        if len(raw) < page.limit:
            return None
        last = raw[-1]
        key = None if last[7] is None else str(last[7])
        return Cursor(key, datetime.fromisoformat(last[5]), last[0])

    def actions(self, flt: ReviewFilter, page: Page) -> PageResult:
        flt = flt.scoped(self._viewer)
        with self._read() as conn:
            raw = self._query_rows(conn, flt, page)
            rows = self._to_rows(conn, raw, masked=True)
        return PageResult(tuple(rows), self._next(raw, page))

    def _open_flag_targets(self, conn: sqlite3.Connection) -> set[str]:
        notes = _kind_records(conn, KIND_FLAG)
        return {str(f.event_id) for f in fold_flags(notes) if not f.resolved}

    def _to_rows(
        self, conn: sqlite3.Connection, raw: Sequence[tuple[Any, ...]], *, masked: bool
    ) -> list[ActionRow]:
        bodies = [json.loads(r[6]) for r in raw]
        change_refs = sorted({r[4] for r in raw if r[1] == KIND_REQUEST_CHANGE})
        requests: dict[str, dict[str, Any]] = {}
        if change_refs:
            for ref, body in conn.execute(
                "SELECT ref, body FROM entries WHERE kind = 'request'"
                " AND ref IN (SELECT value FROM json_each(?))",
                (json.dumps(change_refs),),
            ):
                requests[ref] = json.loads(body)
        flagged: set[str] = set()
        if raw:
            ids = json.dumps([r[2] for r in raw])
            notes = [
                from_jsonable(FlagNote, json.loads(body))
                for (body,) in conn.execute(
                    "SELECT body FROM entries WHERE kind = 'flag'"
                    " AND ref IN (SELECT value FROM json_each(?)) ORDER BY seq",
                    (ids,),
                )
            ]
            flagged = {str(f.event_id) for f in fold_flags(notes) if not f.resolved}
        out: list[ActionRow] = []
        for (seq, kind, event_id, subject, ref, at, *_rest), body in zip(raw, bodies, strict=True):
            row = self._row(seq, kind, event_id, subject, at, body, requests.get(ref))
            out.append(
                replace(
                    row,
                    subject=phone.mask(row.subject) if masked else row.subject,
                    team=self._teams.get(row.agent),
                    flagged=event_id in flagged,
                )
            )
        return out

    @staticmethod
    def _row(
        seq: int,
        kind: str,
        event_id: str,
        subject: str,
        at: str,
        body: Mapping[str, Any],
        request: Mapping[str, Any] | None,
    ) -> ActionRow:
        common: dict[str, Any] = {
            "seq": seq,
            "event_id": uuid.UUID(event_id),
            "at": datetime.fromisoformat(at),
            "agent": str(body.get("agent", "")),
            "subject": subject or "",
            "call_id": body.get("call_id"),
        }
        notice = body.get("notice") or {}
        script: dict[str, Any] = {
            "script_id": notice.get("script_id"),
            "script_version": notice.get("version"),
        }
        if kind == KIND_CONSENT:
            if body.get("corrects"):
                action = ActionKind.CORRECTION
            else:
                action = _KIND_FROM_STATE.get(str(body["state"]), ActionKind.WITHDRAWAL)
            return ActionRow(
                kind=action,
                purpose=str(body["purpose"]),
                channel=Channel(body["channel"]),
                jurisdiction=Jurisdiction(body["jurisdiction"]),
                **script,
                **common,
            )
        if kind == KIND_REQUEST:
            return ActionRow(
                kind=ActionKind.REQUEST,
                request_type=RequestType(body["type"]),
                status=RequestStatus.RECEIVED,
                reference=str(body["reference"]),
                jurisdiction=Jurisdiction(body["jurisdiction"]),
                **script,
                **common,
            )
        req = request or {}
        status = body.get("status")
        return ActionRow(
            kind=ActionKind.REQUEST_CHANGE,
            request_type=RequestType(req["type"]) if "type" in req else None,
            status=RequestStatus(status) if status else None,
            reference=req.get("reference"),
            jurisdiction=Jurisdiction(req["jurisdiction"]) if "jurisdiction" in req else None,
            **common,
        )

    def _entry(self, conn: sqlite3.Connection, event_id: uuid.UUID) -> tuple[Any, ...]:
        row = conn.execute(
            "SELECT seq, kind, event_id, subject, ref, at, body, hash FROM entries"  # noqa: S608
            f" WHERE event_id = ? AND {_ACTIONS_SQL}",
            (str(event_id),),
        ).fetchone()
        if row is None:
            raise NotFound(f"no captured action {event_id}")
        self._require_scope(str(json.loads(row[6]).get("agent", "")))
        return tuple(row)

    def reveal_number(self, event_id: uuid.UUID, *, call_id: str | None = None) -> str:
        with self._read() as conn:
            entry = self._entry(conn, event_id)
        number = str(entry[3])
        self._log(
            ReadAccess(self._viewer.name, number, ReadKind.NUMBER, call_id=call_id, about=event_id)
        )
        return number

    def action(self, event_id: uuid.UUID) -> ActionDetail:
        with self._read() as conn:
            entry = self._entry(conn, event_id)
            _seq, kind, _eid, subject, ref, _at, body, digest = entry
            row = self._to_rows(conn, [entry[:7]], masked=False)[0]
            call_raw: list[tuple[Any, ...]] = []
            if row.call_id:
                call_raw = conn.execute(
                    "SELECT seq, kind, event_id, subject, ref, at, body FROM entries"  # noqa: S608
                    f" INDEXED BY review_call WHERE {CALL_X} = ? AND {_ACTIONS_SQL}"
                    " ORDER BY at, seq",
                    (row.call_id,),
                ).fetchall()
            history_raw = conn.execute(
                "SELECT seq, kind, event_id, subject, ref, at, body FROM entries"  # noqa: S608
                f" WHERE subject = ? AND {_ACTIONS_SQL} ORDER BY seq",
                (subject,),
            ).fetchall()
            call_rows = [
                r for r in self._to_rows(conn, call_raw, masked=False) if self._in_scope(r.agent)
            ]
            history = self._to_rows(conn, history_raw, masked=False)
            flags = fold_flags(_kind_records(conn, KIND_FLAG, str(event_id)))
        raw = json.loads(body)
        record: ConsentEvent | Any
        if kind == KIND_CONSENT:
            record = event_from_json(raw)
        elif kind == KIND_REQUEST:
            record = new_request_from_json(raw)
        else:
            record = request_change_from_json(raw)
        notice = getattr(record, "notice", None)
        request: PrivacyRequest | None = None
        if kind != KIND_CONSENT:
            request = self._ledger.request(uuid.UUID(ref))
        self._log(ReadAccess(self._viewer.name, subject, ReadKind.DETAIL, about=event_id))
        return ActionDetail(
            row=row,
            record=record,
            notice=notice,
            script_check=check_notice(notice, self._ledger.scripts()),
            ledger_hash=str(digest),
            call_actions=tuple(call_rows),
            history=tuple(history),
            flags=flags,
            request=request,
        )

    def export_actions(self, flt: ReviewFilter) -> Iterator[ActionRow]:
        flt = flt.scoped(self._viewer)
        self._log(
            ReadAccess(
                self._viewer.name, None, ReadKind.EXPORT, detail=f"actions: {flt.describe()}"
            )
        )
        page = Page(limit=_EXPORT_BATCH, descending=False)
        while True:
            with self._read() as conn:
                raw = self._query_rows(conn, flt, page)
                rows = self._to_rows(conn, raw, masked=False)
            yield from rows
            cursor = self._next(raw, page)
            if cursor is None:
                return
            page = Page(limit=_EXPORT_BATCH, descending=False, after=cursor)

    def export_events(self, flt: ReviewFilter) -> Iterator[ConsentEvent]:
        consent_kinds = {
            ActionKind.CONSENT,
            ActionKind.REFUSAL,
            ActionKind.WITHDRAWAL,
            ActionKind.CORRECTION,
        }
        kinds = tuple(k for k in flt.kinds if k in consent_kinds) or tuple(consent_kinds)
        flt = replace(flt, kinds=kinds).scoped(self._viewer)
        self._log(
            ReadAccess(
                self._viewer.name, None, ReadKind.EXPORT, detail=f"consents: {flt.describe()}"
            )
        )
        page = Page(limit=_EXPORT_BATCH, descending=False)
        while True:
            with self._read() as conn:
                raw = self._query_rows(conn, flt, page)
            for r in raw:
                yield event_from_json(json.loads(r[6]))
            cursor = self._next(raw, page)
            if cursor is None:
                return
            page = Page(limit=_EXPORT_BATCH, descending=False, after=cursor)

    def customer_history(self, number: str) -> Sequence[ConsentEvent]:
        check_number(number)
        history = [e for e in self._ledger.history(number) if self._in_scope(e.agent)]
        self._log(ReadAccess(self._viewer.name, number, ReadKind.EXPORT, detail="history"))
        return tuple(history)

    def agents(self) -> Sequence[str]:
        if self._viewer.role == Role.LEAD and self._viewer.team is not None:
            return self._team_agents(self._viewer.team)
        found: list[str] = []
        with self._read() as conn:
            # Walk the agent index one distinct value at a time: a seek each.
            last = ""
            while True:
                row = conn.execute(
                    f"SELECT {AGENT_X} FROM entries INDEXED BY review_agent"  # noqa: S608
                    f" WHERE {AGENT_X} > ? ORDER BY {AGENT_X} LIMIT 1",
                    (last,),
                ).fetchone()
                if row is None:
                    break
                last = str(row[0])
                found.append(last)
        return found

    def teams(self) -> Sequence[str]:
        if self._viewer.role == Role.LEAD:
            return [self._viewer.team] if self._viewer.team else []
        return sorted(set(self._teams.values()))

    # -- flags

    def record_flag(self, note: FlagNote) -> Flag:
        if note.by != self._viewer.name:
            raise Forbidden("flags are recorded in the signed-in user's name")
        with self._read() as conn:
            self._entry(conn, note.event_id)

        def check(conn: sqlite3.Connection) -> None:
            check_flag_note(note, _kind_records(conn, KIND_FLAG, str(note.event_id)))

        self._ledger.append_record(note, check=check)
        with self._read() as conn:
            flags = fold_flags(_kind_records(conn, KIND_FLAG, str(note.event_id)))
        log.info("flag %s recorded", note.action)
        return next(f for f in flags if f.flag_id == note.flag_id)

    def flags(self, *, open_only: bool = True) -> Sequence[Flag]:
        with self._read() as conn:
            found = fold_flags(_kind_records(conn, KIND_FLAG))
            agents: dict[str, str] = {}
            targets = json.dumps([str(f.event_id) for f in found])
            for event_id, agent in conn.execute(
                f"SELECT event_id, {AGENT_X} FROM entries"  # noqa: S608
                " WHERE event_id IN (SELECT value FROM json_each(?))",
                (targets,),
            ):
                agents[event_id] = str(agent)
        visible = [
            f
            for f in found
            if self._in_scope(agents.get(str(f.event_id), "")) and not (open_only and f.resolved)
        ]
        return sorted(visible, key=lambda f: f.raised_at, reverse=True)

    # -- privacy requests

    def _scoped_requests(self) -> list[PrivacyRequest]:
        return [r for r in self._ledger.requests(open_only=True) if self._in_scope(r.agent)]

    def request_queue(self, today: date) -> Sequence[QueueItem]:
        return request_queue(self._scoped_requests(), today)

    def move_request(self, change: RequestChange) -> PrivacyRequest:
        if change.agent != self._viewer.name:
            raise Forbidden("status moves are recorded in the signed-in user's name")
        self._require_scope(self._ledger.request(change.request_id).agent)
        return self._ledger.update_request(change)

    # -- figures

    def _scope_sql(self, column: str = AGENT_X) -> tuple[str, list[Any]]:
        if self._viewer.role == Role.ADMIN:
            return "", []
        agents = json.dumps(self._team_agents(self._viewer.team or ""))
        return f" AND {column} IN (SELECT value FROM json_each(?))", [agents]  # noqa: S608

    def figures(self, first_day: date, last_day: date, *, tz: tzinfo) -> Figures:
        days = day_bounds(first_day, last_day, tz)
        edges = [start for _day, start, _end in days] + [days[-1][2]]
        check_edges(edges)
        scope, scope_params = self._scope_sql()
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT kind, at, {AGENT_X}, event_id, {PURPOSE_X},"  # noqa: S608
                " coalesce(json_extract(body, '$.state'), ''),"
                " json_extract(body, '$.corrects'),"
                " coalesce(json_extract(body, '$.status'), '')"
                " FROM entries INDEXED BY review_at"
                f" WHERE at >= ? AND at < ? AND {_ACTIONS_SQL}{scope}",
                [_iso(edges[0]), _iso(edges[-1]), *scope_params],
            ).fetchall()
            corrected = {
                str(c)
                for (c,) in conn.execute(
                    "SELECT corrects FROM consent_index WHERE corrects IS NOT NULL"
                )
            }
        records = (
            FigureRecord(
                kind=kind,
                at=datetime.fromisoformat(at),
                agent=str(agent),
                event_id=event_id,
                purpose=purpose,
                state=state,
                corrects=corrects,
                status=status,
            )
            for kind, at, agent, event_id, purpose, state, corrects, status in rows
        )
        return compute_figures(
            first_day,
            edges,
            records,
            corrected=corrected,
            open_requests=self._scoped_requests(),
            today=self._clock().astimezone(tz).date(),
        )

    # -- read log and integrity

    def log_read(self, read: ReadAccess) -> None:
        if read.reader != self._viewer.name:
            raise Forbidden("reads are logged in the signed-in user's name")
        log_read(self._ledger, read)

    def read_log(self, flt: ReadLogFilter) -> Sequence[ReadLogEntry]:
        clauses = ["kind = ?"]
        params: list[Any] = [KIND_READ]
        if flt.subject is not None:
            clauses.append("subject = ?")
            params.append(check_number(flt.subject))
        if flt.reader is not None:
            clauses.append("ref = ?")
            params.append(flt.reader)
        if self._viewer.role != Role.ADMIN:
            readers = [*self._team_agents(self._viewer.team or ""), self._viewer.name]
            clauses.append("ref IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(readers))
        if flt.since is not None:
            clauses.append("at >= ?")
            params.append(_iso(flt.since))
        if flt.until is not None:
            clauses.append("at < ?")
            params.append(_iso(flt.until))
        if flt.before_seq is not None:
            clauses.append("seq < ?")
            params.append(flt.before_seq)
        limit = max(1, min(flt.limit, 1000))
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT seq, body FROM entries WHERE {' AND '.join(clauses)}"  # noqa: S608
                " ORDER BY seq DESC LIMIT ?",
                [*params, limit],
            ).fetchall()
        return [ReadLogEntry(seq, from_jsonable(ReadAccess, json.loads(b))) for seq, b in rows]

    def verify(self) -> IntegrityReport:
        result = self._ledger.verify()
        if result.ok:
            return IntegrityReport(
                True, result.count, f"{result.count} records checked; the hash chain is intact"
            )
        where = f" at record {result.first_bad_seq}" if result.first_bad_seq else ""
        return IntegrityReport(
            False,
            result.count,
            f"Integrity check failed{where}: {result.reason}",
            result.first_bad_seq,
        )

    # -- incidents

    def incidents(self, *, open_only: bool = False) -> Sequence[Incident]:
        return incidents(self._ledger, open_only=open_only)

    def record_incident(self, note: IncidentNote) -> Incident:
        return record_incident(self._ledger, note, self._viewer)

    def tag_call(self, tag: CallTag) -> CallTag:
        return tag_call(self._ledger, tag)

    def call_tags(self, incident_id: uuid.UUID) -> Sequence[CallTag]:
        return call_tags(self._ledger, incident_id)


class LedgerIncidents:
    """:class:`~consentdesk.domain.incident.IncidentSource` on the embedded ledger for
    any signed-in user: agents read open incidents and tag calls; leads and admins
    also open, notify and close."""

    def __init__(self, ledger: EmbeddedLedger, viewer: Viewer) -> None:
        self._ledger = ledger
        self._viewer = viewer

    def incidents(self, *, open_only: bool = False) -> Sequence[Incident]:
        return incidents(self._ledger, open_only=open_only)

    def record_incident(self, note: IncidentNote) -> Incident:
        return record_incident(self._ledger, note, self._viewer)

    def tag_call(self, tag: CallTag) -> CallTag:
        if tag.agent != self._viewer.name:
            raise Forbidden("calls are tagged in the signed-in user's name")
        return tag_call(self._ledger, tag)

    def call_tags(self, incident_id: uuid.UUID) -> Sequence[CallTag]:
        return call_tags(self._ledger, incident_id)
