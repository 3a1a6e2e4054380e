"""The server's store: hash-chained appends, status folds, requests, reads, users.

Framework-free and synchronous (called from FastAPI's worker threads). Every
write is one transaction; ledger appends hold the ledger lock
(:func:`db.write_transaction`) from the read of the chain head to the insert,
so any number of server processes build one unbroken chain.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    String,
    Text,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from consentdesk.domain import phone
from consentdesk.domain.admission import check_consent, check_new_request, check_subject
from consentdesk.domain.backend import NotFound
from consentdesk.domain.calendars import DEFAULT_CALENDAR, Calendar
from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.codec import (
    GENESIS,
    KIND_CONSENT,
    KIND_REQUEST,
    RECENT_CLOSED,
    canonical_json,
    link_hash,
)
from consentdesk.domain.codec import KIND_REQUEST_CHANGE as KIND_CHANGE
from consentdesk.domain.figures import FigureRecord, check_edges, compute_figures
from consentdesk.domain.incident import (
    CallTag,
    Incident,
    IncidentNote,
    check_incident_note,
    fold_incidents,
    note_from_json,
    require_incident_manager,
)
from consentdesk.domain.model import (
    Channel,
    ConsentEvent,
    DomainError,
    Jurisdiction,
    NewRequest,
    PrivacyRequest,
    Receipt,
    RequestChange,
    RequestStatus,
    RequestType,
    Subject,
    SubjectStatus,
    event_from_json,
    new_request_from_json,
    privacy_request_from_json,
    request_change_from_json,
    subject_status_from_json,
    to_jsonable,
    utcnow,
)
from consentdesk.domain.references import normalize_reference
from consentdesk.domain.requests import check_change, fold_request
from consentdesk.domain.review import (
    ActionKind,
    ActionRow,
    Figures,
    Flag,
    FlagNote,
    IntegrityReport,
    Page,
    PageResult,
    ReadAccess,
    ReadKind,
    ReadLogEntry,
    ReadLogFilter,
    ReviewFilter,
    Role,
    SearchKind,
    SortKey,
    Viewer,
    action_kind,
    check_flag_note,
    fold_flags,
    from_jsonable,
    next_cursor,
)
from consentdesk.domain.review_records import KIND_CALL_TAG, KIND_FLAG, KIND_INCIDENT
from consentdesk.domain.scripts import Script
from consentdesk.domain.status import current_status
from consentdesk.server import problems
from consentdesk.server import tokens as server_tokens
from consentdesk.server.appender import Appender, Entry, Job, Plan
from consentdesk.server.auth_cache import AuthCache
from consentdesk.server.db import (
    entries,
    is_sqlite,
    read_log,
    requests,
    subjects,
    users,
)
from consentdesk.server.incident_watch import notify_incident_change

log = logging.getLogger("consentdesk.server.store")

T = TypeVar("T")
AnyRecord = ConsentEvent | NewRequest | RequestChange
ReviewRecord = FlagNote | IncidentNote | CallTag
# Ledger kinds the review lists as captured actions; review records (flags,
# incidents, call tags) share the chain but are not actions.
ACTION_KINDS = (KIND_CONSENT, KIND_REQUEST, KIND_CHANGE)
_ACTION_STATES = {
    ActionKind.CONSENT: "given",
    ActionKind.REFUSAL: "refused",
    ActionKind.WITHDRAWAL: "withdrawn",
}
NO_SUBJECT = ""  # the subject column of records about no one customer
ALL_SUBJECTS = "*"  # read-log subject of a list that spans customers


def as_utc(value: datetime) -> datetime:
    # SQLite hands timestamps back naive; they were written as UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _Pending(Generic[T]):
    """A record's appender job, and whether it was new (set once appended)."""

    job: Job[T]
    created: bool = False


class Store:
    """Everything the API does to the database."""

    def __init__(
        self,
        engine: Engine,
        *,
        catalogue: Catalogue,
        scripts: Sequence[Script],
        calendar: Calendar = DEFAULT_CALENDAR,
    ) -> None:
        self.engine = engine
        self.calendar = calendar
        self.catalogue = catalogue
        self.scripts = tuple(scripts)
        self._appender = Appender(engine)
        self._auth = AuthCache.for_engine(engine)

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection in autocommit: each statement its own transaction, no
        BEGIN/ROLLBACK round trips. A read-log insert through it commits at once."""
        with self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    # --- identity ---------------------------------------------------------------

    def stop_listening(self) -> None:
        """Stop this process's token-change listener (at shutdown)."""
        self._auth.stop()

    def cached_viewer(self, token: str) -> Viewer | None:
        """The token's user if this process may trust what it knows (no database)."""
        return self._auth.get(token)

    def authenticate(self, token: str) -> Viewer:
        """The token's user; a revocation or a disabled user takes effect at the
        next request in every process (see :mod:`.auth_cache`)."""
        known = self._auth.get(token)
        if known is not None:
            return known
        epoch = self._auth.epoch

        def attempt() -> tuple[Viewer, datetime | None]:
            with self._reading() as conn:
                return server_tokens.lookup_with_expiry(conn, token, utcnow())

        viewer, expires_at = _retry_on_disconnect(attempt)
        self._auth.put(token, viewer, expires_at, epoch)
        return viewer

    def add_user(self, name: str, role: Role, *, team: str | None = None) -> None:
        name = name.strip()
        if not name or len(name) > 200:
            raise DomainError("a user name is 1 to 200 characters")
        if role == Role.LEAD and not team:
            raise DomainError("a lead needs --team")
        with self.engine.begin() as conn:
            if conn.execute(select(users.c.name).where(users.c.name == name)).first():
                raise DomainError(f"user {name!r} already exists")
            conn.execute(
                insert(users).values(
                    name=name, role=role.value, team=team, disabled=False, created_at=utcnow()
                )
            )

    def set_disabled(self, name: str, disabled: bool) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(users).where(users.c.name == name).values(disabled=disabled)
            ).rowcount
            server_tokens.notify_auth_change(conn)
        if not done:
            raise NotFound(f"no user {name!r}")

    def create_token(self, name: str, *, days: int | None = None, label: str | None = None) -> str:
        """A new token for *name*; only its SHA-256 is stored, so show it once."""
        return server_tokens.create_token(self.engine, name, days=days, label=label)[0]

    def users(self) -> list[Viewer]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).all()
        return [Viewer(r.name, Role(r.role), r.team) for r in rows]

    # --- ledger appends ---------------------------------------------------------

    def _job(
        self,
        viewer: Viewer,
        kind: str,
        event_id: uuid.UUID,
        body: str,
        on_repeat: Callable[[Connection, Entry], T],
        plan: Callable[[Connection], Plan[T]],
        *,
        standalone: bool = False,
    ) -> _Pending[T]:
        """A record for this process's group-commit appender.

        A repeat is answered from what is stored before any other check, so a
        resend of a record made under an older catalogue still gets its answer.
        """
        pending: _Pending[T] = _Pending()

        def planned(conn: Connection) -> Plan[T]:
            step = plan(conn)
            pending.created = True
            return step

        pending.job = Job(viewer, kind, event_id, body, planned, on_repeat, standalone=standalone)
        return pending

    def _append(self, pending: _Pending[T]) -> tuple[T, bool]:
        return self._appender.append(pending.job), pending.created

    def capture(self, viewer: Viewer, event: ConsentEvent) -> tuple[Receipt, bool]:
        """Append a consent event; ``(receipt, created)``. A repeat gives the first receipt."""
        return self._append(self._consent_job(viewer, event))

    def create_request(self, viewer: Viewer, new: NewRequest) -> tuple[PrivacyRequest, bool]:
        return self._append(self._request_job(viewer, new))

    def change_request(self, viewer: Viewer, change: RequestChange) -> tuple[PrivacyRequest, bool]:
        return self._append(self._change_job(viewer, change))

    def submit(
        self, viewer: Viewer, record: AnyRecord | ReviewRecord
    ) -> tuple[Future[Any], _Pending[Any]]:
        """Queue *record* without waiting (for async callers): its future, and the
        pending job whose ``created`` tells, once settled, whether it was new."""
        if isinstance(record, ConsentEvent):
            pending: _Pending[Any] = self._consent_job(viewer, record)
        elif isinstance(record, NewRequest):
            pending = self._request_job(viewer, record)
        elif isinstance(record, RequestChange):
            pending = self._change_job(viewer, record)
        elif isinstance(record, FlagNote):
            pending = self._flag_job(viewer, record)
        elif isinstance(record, CallTag):
            pending = self._tag_job(viewer, record)
        else:
            pending = self._incident_job(viewer, record)
        return self._appender.submit(pending.job), pending

    def _consent_job(self, viewer: Viewer, event: ConsentEvent) -> _Pending[Receipt]:
        _check_agent(viewer, event.agent)

        def plan(conn: Connection) -> Plan[Receipt]:
            check_consent(event, self.catalogue, self.scripts, utcnow())
            if event.corrects is not None:
                corrected = conn.execute(
                    _CONSENT_SUBJECT, {"event_id": str(event.corrects)}
                ).first()
                if corrected is None or corrected.subject != event.subject:
                    raise DomainError("the correction names no consent event of this subject")
            return Plan(
                subject=event.subject,
                columns={
                    "action": action_kind(event).value,
                    "at": event.at,
                    "purpose": event.purpose,
                    "channel": event.channel.value,
                    "jurisdiction": event.jurisdiction.value,
                    "script_id": event.notice.script_id,
                    "script_version": event.notice.version,
                    "call_id": event.call_id,
                },
                finish=lambda conn, entry: entry.receipt(duplicate=False),
            )

        return self._job(
            viewer,
            KIND_CONSENT,
            event.event_id,
            canonical_json(event),
            lambda conn, entry: entry.receipt(duplicate=True),
            plan,
            standalone=event.corrects is None,
        )

    def _request_job(self, viewer: Viewer, new: NewRequest) -> _Pending[PrivacyRequest]:
        _check_agent(viewer, new.agent)

        def plan(conn: Connection) -> Plan[PrivacyRequest]:
            check_new_request(new, self.scripts, utcnow())
            clash = conn.execute(
                _REQUEST_CLASH, {"request_id": str(new.request_id), "reference": new.reference}
            ).first()
            if clash is not None:
                raise problems.conflict("a request with this id or reference already exists")
            state = fold_request(new, [], self.calendar)

            def finish(conn: Connection, entry: Entry) -> PrivacyRequest:
                conn.execute(
                    _INSERT_REQUEST,
                    {
                        "request_id": str(new.request_id),
                        "reference": new.reference,
                        "subject": new.subject,
                        "due": state.due,
                        "is_open": state.is_open,
                        "state": canonical_json(state),
                        "updated_seq": entry.seq,
                    },
                )
                return state

            return Plan(
                subject=new.subject,
                request_id=new.request_id,
                columns={
                    "action": ActionKind.REQUEST.value,
                    "at": new.at,
                    "request_type": new.type.value,
                    "status": state.status.value,
                    "reference": new.reference,
                    "jurisdiction": new.jurisdiction.value,
                    "script_id": new.notice.script_id if new.notice else None,
                    "script_version": new.notice.version if new.notice else None,
                    "call_id": new.call_id,
                },
                finish=finish,
            )

        return self._job(
            viewer,
            KIND_REQUEST,
            new.event_id,
            canonical_json(new),
            lambda conn, entry: _request_state(conn, new.request_id),
            plan,
        )

    def _change_job(self, viewer: Viewer, change: RequestChange) -> _Pending[PrivacyRequest]:
        _check_agent(viewer, change.agent)

        def plan(conn: Connection) -> Plan[PrivacyRequest]:
            created, changes = _request_events(conn, change.request_id)
            check_change(fold_request(created, changes, self.calendar), change, self.calendar)
            state = fold_request(created, [*changes, change], self.calendar)

            def finish(conn: Connection, entry: Entry) -> PrivacyRequest:
                conn.execute(
                    _UPDATE_REQUEST,
                    {
                        "rid": str(change.request_id),
                        "due": state.due,
                        "is_open": state.is_open,
                        "state": canonical_json(state),
                        "updated_seq": entry.seq,
                    },
                )
                return state

            return Plan(
                subject=created.subject,
                request_id=change.request_id,
                columns={
                    "action": ActionKind.REQUEST_CHANGE.value,
                    "at": change.at,
                    "request_type": created.type.value,
                    "status": change.status.value if change.status else None,
                    "reference": created.reference,
                    "jurisdiction": created.jurisdiction.value,
                    # A change is made on no call (its record has none): it is not
                    # found by the request's call id.
                    "call_id": None,
                },
                finish=finish,
            )

        return self._job(
            viewer,
            KIND_CHANGE,
            change.event_id,
            canonical_json(change),
            lambda conn, entry: _request_state(conn, change.request_id),
            plan,
        )

    # --- review records: flags, incidents, call tags ------------------------------

    def _flag_job(self, viewer: Viewer, note: FlagNote) -> _Pending[Flag]:
        viewer.require_reviewer()
        _check_agent(viewer, note.by)

        def plan(conn: Connection) -> Plan[Flag]:
            target = conn.execute(_ACTION_TEAM, {"event_id": str(note.event_id)}).first()
            if target is None or not _in_scope(viewer, target.team):
                raise NotFound("no such action in your team")
            check_flag_note(note, _flag_notes(conn))
            return Plan(
                subject=NO_SUBJECT,
                columns={"action": KIND_FLAG, "at": note.at},
                finish=lambda conn, entry: _flag_state(conn, note.flag_id),
            )

        return self._job(
            viewer,
            KIND_FLAG,
            note.record_id,
            canonical_json(note),
            lambda conn, entry: _flag_state(conn, note.flag_id),
            plan,
        )

    def _incident_job(self, viewer: Viewer, note: IncidentNote) -> _Pending[Incident]:
        require_incident_manager(viewer)
        _check_agent(viewer, note.by)

        def finish(conn: Connection, _entry: Entry) -> Incident:
            notify_incident_change(conn)  # every server process pushes it to its desks
            return _incident_state(conn, note.incident_id)

        def plan(conn: Connection) -> Plan[Incident]:
            check_incident_note(note, fold_incidents(_incident_notes(conn)))
            return Plan(
                subject=NO_SUBJECT,
                columns={"action": KIND_INCIDENT, "at": note.at},
                finish=finish,
            )

        return self._job(
            viewer,
            KIND_INCIDENT,
            note.record_id,
            canonical_json(note),
            lambda conn, entry: _incident_state(conn, note.incident_id),
            plan,
        )

    def _tag_job(self, viewer: Viewer, tag: CallTag) -> _Pending[CallTag]:
        _check_agent(viewer, tag.agent)

        def plan(conn: Connection) -> Plan[CallTag]:
            current = {i.incident_id: i for i in fold_incidents(_incident_notes(conn))}
            incident = current.get(tag.incident_id)
            if incident is None:
                raise NotFound("no such incident")
            if not incident.is_open:
                raise DomainError(f"incident {incident.opened.title!r} is closed")
            return Plan(
                subject=NO_SUBJECT,
                columns={"action": KIND_CALL_TAG, "at": tag.at, "call_id": tag.call_id},
                finish=lambda conn, entry: tag,
            )

        return self._job(
            viewer,
            KIND_CALL_TAG,
            tag.record_id,
            canonical_json(tag),
            lambda conn, entry: _tag_from(entry.body),
            plan,
        )

    def stored_call_tag(self, viewer: Viewer, tag: CallTag) -> CallTag | None:
        """The tag already recorded for *tag*'s incident and call, if any: tagging
        a call twice (another click, another time) answers the first record."""
        _check_agent(viewer, tag.agent)

        def read() -> CallTag | None:
            with self._reading() as conn:
                row = conn.execute(
                    select(entries.c.body).where(
                        entries.c.event_id == str(tag.record_id),
                        entries.c.kind == KIND_CALL_TAG,
                    )
                ).first()
            return _tag_from(row.body) if row is not None else None

        return _retry_on_disconnect(read)

    def flags(self, viewer: Viewer, *, open_only: bool) -> list[Flag]:
        """Flags on actions in the viewer's scope, newest first."""
        viewer.require_reviewer()

        def read() -> list[Flag]:
            with self._reading() as conn:
                found = fold_flags(_flag_notes(conn))
                if viewer.role == Role.LEAD and found:
                    ids = sorted({str(f.event_id) for f in found})
                    teams = {
                        r.event_id: r.team
                        for r in conn.execute(
                            select(entries.c.event_id, entries.c.team).where(
                                entries.c.event_id.in_(ids)
                            )
                        )
                    }
                    found = tuple(f for f in found if teams.get(str(f.event_id)) == viewer.team)
            return [f for f in found if not (open_only and f.resolved)]

        out = _retry_on_disconnect(read)
        out.sort(key=lambda f: f.raised_at, reverse=True)
        return out

    def incidents(self, viewer: Viewer, *, open_only: bool) -> list[Incident]:
        """Incidents, newest first. Every signed-in user reads them: while one is
        open, every desk shows its script."""

        def read() -> tuple[Incident, ...]:
            with self._reading() as conn:
                return fold_incidents(_incident_notes(conn))

        found = _retry_on_disconnect(read)
        return [i for i in found if i.is_open or not open_only]

    def call_tags(self, viewer: Viewer, incident_id: uuid.UUID) -> list[CallTag]:
        """Calls tagged for an incident, oldest first: a lead's team's, an admin's all."""
        require_incident_manager(viewer)
        query = select(entries.c.body).where(entries.c.kind == KIND_CALL_TAG)
        if viewer.role == Role.LEAD:
            query = query.where(entries.c.team == viewer.team)

        def read() -> list[CallTag]:
            with self._reading() as conn:
                known = any(
                    i.incident_id == incident_id for i in fold_incidents(_incident_notes(conn))
                )
                if not known:
                    raise NotFound("no such incident")
                tags = [_tag_from(r.body) for r in conn.execute(query.order_by(entries.c.seq))]
            return [t for t in tags if t.incident_id == incident_id]

        return _retry_on_disconnect(read)

    def reveal_number(self, viewer: Viewer, event_id: uuid.UUID, *, call_id: str | None) -> str:
        """The full number of one action's customer (a logged read)."""
        viewer.require_reviewer()

        def read() -> str:
            with self._reading() as conn:
                row = conn.execute(_ACTION_TEAM, {"event_id": str(event_id)}).first()
                if row is None or not _in_scope(viewer, row.team):
                    raise NotFound("no such action in your team")
                _log_read(conn, viewer, row.subject, ReadKind.NUMBER, call_id, about=event_id)
            return str(row.subject)

        return _retry_on_disconnect(read)

    # --- reads (each logged) ----------------------------------------------------

    def status(self, viewer: Viewer, number: str, *, call_id: str | None) -> SubjectStatus:
        return subject_status_from_json(self.status_document(viewer, number, call_id=call_id))

    def status_document(
        self, viewer: Viewer, number: str, *, call_id: str | None
    ) -> dict[str, Any]:
        """A subject's status in its JSON form (a logged read).

        Built from the stored canonical bodies, which already are the wire form
        of each event, so the hot path does not encode every event again.
        """
        check_subject(number)

        def read() -> list[Any]:
            with self._reading() as conn:
                params = {
                    "subject": number,
                    **_read_values(viewer, number, ReadKind.STATUS, call_id),
                }
                if is_sqlite(conn):
                    conn.execute(_INSERT_READ, params)
                    return list(conn.execute(_STATUS_ROWS, params))
                # PostgreSQL: the read-log entry and every read in one round trip.
                return list(conn.execute(_LOGGED_STATUS_ROWS, params))

        rows = _retry_on_disconnect(read)
        bodies = [r.text for r in sorted((r for r in rows if r.part == "e"), key=lambda r: r.seq)]
        reqs = sorted(
            (privacy_request_from_json(json.loads(r.text)) for r in rows if r.part == "r"),
            key=lambda r: (r.due, r.received, r.reference),
        )
        profile = next((json.loads(r.text) for r in rows if r.part == "p"), None)
        documents = [json.loads(b) for b in bodies]
        events = [event_from_json(d) for d in documents]
        by_id = {e.event_id: d for e, d in zip(events, documents, strict=True)}
        subject = Subject(number, *profile) if profile is not None else Subject(number)
        now = utcnow()
        cells = current_status(events, self.catalogue, now, reqs)
        recent = [r for r in reqs if r.is_open or now - r.updated_at <= RECENT_CLOSED]
        return {
            "subject": to_jsonable(subject),
            "cells": [
                {
                    "purpose": c.purpose,
                    "channel": c.channel.value,
                    "state": c.state.value,
                    "event": by_id[c.event.event_id] if c.event is not None else None,
                    "expires": as_utc(c.expires).isoformat() if c.expires else None,
                    "request": to_jsonable(c.request) if c.request else None,
                }
                for c in cells
            ],
            "requests": [to_jsonable(r) for r in recent],
        }

    def history(self, viewer: Viewer, number: str, *, call_id: str | None) -> list[ConsentEvent]:
        return [
            event_from_json(d)
            for d in json.loads(self.history_json(viewer, number, call_id=call_id))
        ]

    def history_json(self, viewer: Viewer, number: str, *, call_id: str | None) -> str:
        """A subject's consent events as a JSON array of their stored canonical bodies."""
        check_subject(number)

        def read() -> list[str]:
            with self._reading() as conn:
                _log_read(conn, viewer, number, ReadKind.DETAIL, call_id)
                return [r.body for r in conn.execute(_SUBJECT_CONSENTS, {"subject": number})]

        return "[" + ",".join(_retry_on_disconnect(read)) + "]"

    def requests(
        self, viewer: Viewer, *, number: str | None, open_only: bool, call_id: str | None
    ) -> list[PrivacyRequest]:
        conditions = []
        if number is not None:
            conditions.append(requests.c.subject == check_subject(number))
        if open_only:
            conditions.append(requests.c.is_open.is_(True))

        def read() -> list[PrivacyRequest]:
            with self._reading() as conn:
                _log_read(conn, viewer, number or ALL_SUBJECTS, ReadKind.STATUS, call_id)
                return _requests_where(conn, and_(true(), *conditions))

        return _retry_on_disconnect(read)

    def request(
        self,
        viewer: Viewer,
        *,
        request_id: uuid.UUID | None = None,
        reference: str | None = None,
        call_id: str | None,
    ) -> PrivacyRequest:
        if reference is not None:
            condition = requests.c.reference == normalize_reference(reference)
        else:
            condition = requests.c.request_id == str(request_id)

        def read() -> Any:
            with self._reading() as conn:
                row = conn.execute(
                    select(requests.c.subject, requests.c.state).where(condition)
                ).first()
                if row is None:
                    raise NotFound("no such privacy request")
                _log_read(conn, viewer, row.subject, ReadKind.STATUS, call_id)
            return row

        row = _retry_on_disconnect(read)
        return privacy_request_from_json(json.loads(row.state))

    def request_events(
        self, viewer: Viewer, request_id: uuid.UUID, *, call_id: str | None
    ) -> tuple[NewRequest, list[RequestChange]]:
        """A request's creation and changes in ledger order (a logged read)."""

        def read() -> tuple[NewRequest, list[RequestChange]]:
            with self._reading() as conn:
                created, changes = _request_events(conn, request_id)
                _log_read(conn, viewer, created.subject, ReadKind.STATUS, call_id)
            return created, changes

        return _retry_on_disconnect(read)

    # --- reference data ---------------------------------------------------------

    def save_profile(self, viewer: Viewer, subject: Subject) -> Subject:
        check_subject(subject.number)
        values = {
            "customer_ref": subject.customer_ref,
            "display_name": subject.display_name,
            "updated_at": utcnow(),
            "updated_by": viewer.name,
        }
        dialect_insert = sqlite.insert if is_sqlite(self.engine) else postgresql.insert
        stmt = dialect_insert(subjects).values(number=subject.number, **values)
        stmt = stmt.on_conflict_do_update(index_elements=[subjects.c.number], set_=values)

        def write() -> None:
            with self._reading() as conn:  # one statement: its own transaction
                conn.execute(stmt)

        _retry_on_disconnect(write)
        return subject

    # --- review -----------------------------------------------------------------

    def actions(self, viewer: Viewer, flt: ReviewFilter, page: Page) -> PageResult:
        """One page of captured actions in the viewer's scope (subjects masked)."""
        rows, _ = self._action_page(viewer, flt, page, bodies=False)
        return PageResult(rows=tuple(_masked(r) for r in rows), next=next_cursor(rows, page))

    def export_page(
        self, viewer: Viewer, flt: ReviewFilter, page: Page, *, call_id: str | None
    ) -> tuple[PageResult, list[dict[str, Any]]]:
        """One page of an export: full numbers and each action's record.

        The first page of an export (no cursor, no offset) is logged as one
        export read naming the view, not each customer in it.
        """
        rows, bodies = self._action_page(viewer, flt, page, bodies=True)
        if page.after is None and not page.offset:
            values = _read_values(viewer, ALL_SUBJECTS, ReadKind.EXPORT, call_id)

            def write() -> None:
                with self._reading() as conn:
                    conn.execute(_INSERT_READ, values)

            _retry_on_disconnect(write)
        return PageResult(rows=rows, next=next_cursor(rows, page)), bodies

    def _action_page(
        self, viewer: Viewer, flt: ReviewFilter, page: Page, *, bodies: bool
    ) -> tuple[tuple[ActionRow, ...], list[dict[str, Any]]]:
        flt = flt.scoped(viewer)
        conditions = _action_conditions(flt)
        sort_col = _SORT_COLUMNS[page.sort]
        order = (sort_col, entries.c.seq) if sort_col is not None else (entries.c.seq,)
        if page.after is not None:
            key = tuple_(sort_col, entries.c.seq) if sort_col is not None else entries.c.seq
            bound = (
                tuple_(page.after.key or "", page.after.seq)
                if sort_col is not None
                else page.after.seq
            )
            conditions.append(key < bound if page.descending else key > bound)
        columns = (*_ROW_COLUMNS, entries.c.body) if bodies else _ROW_COLUMNS

        def read() -> tuple[tuple[ActionRow, ...], list[dict[str, Any]]]:
            with self._reading() as conn:
                flagged = _open_flagged(conn)
                where = list(conditions)
                if flt.flagged is True:
                    where.append(entries.c.event_id.in_(sorted(flagged)))
                elif flt.flagged is False and flagged:
                    where.append(entries.c.event_id.not_in(sorted(flagged)))
                query = (
                    select(*columns)
                    .where(and_(true(), *where))
                    .order_by(*(c.desc() if page.descending else c.asc() for c in order))
                    .limit(page.limit)
                    .offset(page.offset)
                )
                found = conn.execute(query).all()
            rows = tuple(replace(_action_row(r), flagged=r.event_id in flagged) for r in found)
            return rows, [json.loads(r.body) for r in found] if bodies else []

        return _retry_on_disconnect(read)

    def figures(
        self,
        viewer: Viewer,
        first_day: date,
        edges: Sequence[datetime],
        *,
        today: date | None = None,
    ) -> Figures:
        """Figures for the local days from *first_day*, day *i* being the UTC
        instants ``[edges[i], edges[i + 1])`` (the client knows its time zone);
        overdue by the client's *today*, else the site calendar's."""
        viewer.require_reviewer()
        check_edges(edges)
        c = entries.c
        # The body only where the columns do not tell the outcome (corrections).
        body = case((c.action == ActionKind.CORRECTION.value, c.body), else_=None)
        query = select(
            c.kind, c.event_id, c.action, c.at, c.agent, c.purpose, c.status, body.label("body")
        )
        query = query.where(c.kind.in_(ACTION_KINDS), c.at >= edges[0], c.at < edges[-1])
        # Corrections come after what they correct: those from the window's start on.
        corrections = select(c.body).where(
            c.action == ActionKind.CORRECTION.value, c.at >= edges[0]
        )
        open_query = select(requests.c.state).where(requests.c.is_open.is_(True))
        if viewer.role == Role.LEAD:
            query = query.where(c.team == viewer.team)
            open_query = open_query.join(
                entries,
                and_(entries.c.request_id == requests.c.request_id, c.kind == KIND_REQUEST),
            ).where(c.team == viewer.team)

        def read() -> tuple[Sequence[Any], Sequence[Any], Sequence[Any]]:
            with self._reading() as conn:
                return (
                    conn.execute(query).all(),
                    conn.execute(corrections).all(),
                    conn.execute(open_query).all(),
                )

        rows, correction_rows, open_rows = _retry_on_disconnect(read)
        return compute_figures(
            first_day,
            [as_utc(e) for e in edges],
            (_figure_record(r) for r in rows),
            corrected={str(json.loads(r.body)["corrects"]) for r in correction_rows},
            open_requests=(privacy_request_from_json(json.loads(r.state)) for r in open_rows),
            today=today or self.calendar.day_of(utcnow()),
        )

    def people(self, viewer: Viewer) -> tuple[list[str], list[str]]:
        """``(names, teams)`` a reviewer may filter by: a lead's team, an admin's all."""
        viewer.require_reviewer()
        query = select(users.c.name, users.c.team).order_by(users.c.name)
        if viewer.role == Role.LEAD:
            query = query.where(users.c.team == viewer.team)

        def read() -> Sequence[Any]:
            with self._reading() as conn:
                return conn.execute(query).all()

        found = _retry_on_disconnect(read)
        return [r.name for r in found], sorted({r.team for r in found if r.team})

    def log_read(self, viewer: Viewer, read: ReadAccess) -> None:
        """Append a read the client made (an export it wrote, say); idempotent by
        ``record_id``, and only in the signed-in user's name."""
        _check_agent(viewer, read.reader)
        values = {
            "record_id": str(read.record_id),
            "at": read.at,
            "reader": viewer.name,
            "reader_team": viewer.team,
            "subject": read.subject or ALL_SUBJECTS,
            "what": read.what.value,
            "call_id": read.call_id,
            "about": str(read.about) if read.about else None,
        }
        dialect_insert = sqlite.insert if is_sqlite(self.engine) else postgresql.insert
        stmt = dialect_insert(read_log).values(**values).on_conflict_do_nothing()

        def write() -> None:
            with self._reading() as conn:
                conn.execute(stmt)

        _retry_on_disconnect(write)

    def action(
        self, viewer: Viewer, event_id: uuid.UUID, *, call_id: str | None
    ) -> tuple[ActionRow, dict[str, Any], str]:
        """One action in full, with its record and ledger hash (a logged read)."""
        viewer.require_reviewer()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(*_ROW_COLUMNS, entries.c.body, entries.c.hash).where(
                    entries.c.event_id == str(event_id), entries.c.kind.in_(ACTION_KINDS)
                )
            ).first()
            if row is None or (viewer.role == Role.LEAD and row.team != viewer.team):
                raise NotFound("no such action in your team")
            _log_read(conn, viewer, row.subject, ReadKind.DETAIL, call_id, about=event_id)
        return _action_row(row), json.loads(row.body), row.hash

    def read_log(self, viewer: Viewer, flt: ReadLogFilter) -> list[ReadLogEntry]:
        viewer.require_reviewer()
        conditions = []
        if viewer.role == Role.LEAD:
            conditions.append(read_log.c.reader_team == viewer.team)
        if flt.reader is not None:
            conditions.append(read_log.c.reader == flt.reader)
        if flt.subject is not None:
            conditions.append(read_log.c.subject == flt.subject)
        if flt.since is not None:
            conditions.append(read_log.c.at >= flt.since)
        if flt.until is not None:
            conditions.append(read_log.c.at < flt.until)
        if flt.before_seq is not None:
            conditions.append(read_log.c.seq < flt.before_seq)
        query = (
            select(read_log)
            .where(and_(true(), *conditions))
            .order_by(read_log.c.seq.desc())
            .limit(flt.limit)
        )

        def read() -> Sequence[Any]:
            with self._reading() as conn:
                return conn.execute(query).all()

        rows = _retry_on_disconnect(read)
        return [
            ReadLogEntry(
                seq=r.seq,
                read=ReadAccess(
                    reader=r.reader,
                    subject=r.subject,
                    what=ReadKind(r.what),
                    at=as_utc(r.at),
                    call_id=r.call_id,
                    about=uuid.UUID(r.about) if r.about else None,
                    record_id=uuid.UUID(r.record_id),
                ),
            )
            for r in rows
        ]

    # --- integrity --------------------------------------------------------------

    def verify(self) -> IntegrityReport:
        """Walk the chain from the first entry; report the first broken link."""
        prev = GENESIS
        expected_seq = 1
        query = select(entries.c.seq, entries.c.body, entries.c.prev_hash, entries.c.hash).order_by(
            entries.c.seq
        )
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=2000).execute(query)
            for r in result:
                if r.seq != expected_seq:
                    return _broken(expected_seq - 1, r.seq, f"entry {expected_seq} is missing")
                if r.prev_hash != prev or link_hash(prev, r.body) != r.hash:
                    return _broken(
                        expected_seq - 1, r.seq, f"entry {r.seq} does not match its hash"
                    )
                prev = r.hash
                expected_seq += 1
        count = expected_seq - 1
        return IntegrityReport(ok=True, checked=count, message=f"OK: {count} entries")

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")


# --- helpers ----------------------------------------------------------------------


def _check_agent(viewer: Viewer, agent: str) -> None:
    # A record names who captured it; a token may only record in its own name.
    if agent != viewer.name:
        raise problems.forbidden(
            f"signed in as {viewer.name!r}; a record cannot name another agent",
            problems.AGENT_MISMATCH,
        )


_PROFILE = select(subjects.c.customer_ref, subjects.c.display_name).where(
    subjects.c.number == bindparam("number")
)
_SUBJECT_CONSENTS = (
    select(entries.c.body)
    .where(entries.c.subject == bindparam("subject"), entries.c.kind == KIND_CONSENT)
    .order_by(entries.c.seq)
)
_INSERT_READ = insert(read_log)
# A subject's status in one query: consent bodies (e), request states (r), profile (p).
_STATUS_UNION = (
    "SELECT 'e' AS part, seq, body AS text FROM entries"
    " WHERE subject = :subject AND kind = 'consent'"
    " UNION ALL SELECT 'r', updated_seq, state FROM requests WHERE subject = :subject"
    " UNION ALL SELECT 'p', 0, json_array(customer_ref, display_name) FROM subjects"
    " WHERE number = :subject"
)
_STATUS_ROWS = text(_STATUS_UNION).columns(part=String, seq=BigInteger, text=Text)
_LOGGED_STATUS_ROWS = text(
    "WITH logged AS (INSERT INTO read_log"
    " (record_id, at, reader, reader_team, subject, what, call_id, about) VALUES"
    " (:record_id, :at, :reader, :reader_team, :subject, :what, :call_id, :about)) "
    + _STATUS_UNION.replace("json_array(", "json_build_array(").replace(
        "display_name) FROM", "display_name)::text FROM"
    )
).columns(part=String, seq=BigInteger, text=Text)
_INSERT_REQUEST = insert(requests)
_UPDATE_REQUEST = (
    update(requests)
    .where(requests.c.request_id == bindparam("rid"))
    .values(
        due=bindparam("due"),
        is_open=bindparam("is_open"),
        state=bindparam("state"),
        updated_seq=bindparam("updated_seq"),
    )
)
_CONSENT_SUBJECT = select(entries.c.subject).where(
    entries.c.event_id == bindparam("event_id"), entries.c.kind == KIND_CONSENT
)
_REQUEST_CLASH = select(requests.c.request_id).where(
    or_(
        requests.c.request_id == bindparam("request_id"),
        requests.c.reference == bindparam("reference"),
    )
)


_ACTION_TEAM = select(entries.c.subject, entries.c.team).where(
    entries.c.event_id == bindparam("event_id"), entries.c.kind.in_(ACTION_KINDS)
)


def _figure_record(row: Any) -> FigureRecord:
    if row.kind != KIND_CONSENT:
        return FigureRecord(row.kind, as_utc(row.at), row.agent, status=row.status or "")
    if row.body is not None:  # a correction: what it records
        event = json.loads(row.body)
        state, corrects = str(event["state"]), str(event["corrects"])
    else:
        state, corrects = _ACTION_STATES.get(ActionKind(row.action), ""), None
    return FigureRecord(
        row.kind, as_utc(row.at), row.agent, row.event_id, row.purpose or "", state, corrects
    )


def _in_scope(viewer: Viewer, team: str | None) -> bool:
    """Whether *viewer* reviews an action of *team* (leads: their own; admins: all)."""
    if viewer.role == Role.ADMIN:
        return True
    return viewer.role == Role.LEAD and team == viewer.team


def _bodies(conn: Connection, kind: str) -> list[dict[str, Any]]:
    query = select(entries.c.body).where(entries.c.kind == kind).order_by(entries.c.seq)
    return [json.loads(r.body) for r in conn.execute(query)]


def _flag_notes(conn: Connection) -> list[FlagNote]:
    return [from_jsonable(FlagNote, b) for b in _bodies(conn, KIND_FLAG)]


def _flag_state(conn: Connection, flag_id: uuid.UUID) -> Flag:
    return next(f for f in fold_flags(_flag_notes(conn)) if f.flag_id == flag_id)


def _open_flagged(conn: Connection) -> set[str]:
    """Event ids of actions with an open flag."""
    return {str(f.event_id) for f in fold_flags(_flag_notes(conn)) if not f.resolved}


def _incident_notes(conn: Connection) -> list[IncidentNote]:
    return [note_from_json(b) for b in _bodies(conn, KIND_INCIDENT)]


def _incident_state(conn: Connection, incident_id: uuid.UUID) -> Incident:
    found = {i.incident_id: i for i in fold_incidents(_incident_notes(conn))}
    incident = found.get(incident_id)
    if incident is None:
        raise NotFound("no such incident")
    return incident


def _tag_from(body: str) -> CallTag:
    return from_jsonable(CallTag, json.loads(body))


def _retry_on_disconnect(attempt: Callable[[], T]) -> T:
    """Run *attempt*; once more on a fresh connection if the database dropped it.

    Safe for writes: a record either committed (the retry is then a repeat,
    answered from what is stored) or not at all.
    """
    try:
        return attempt()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("database connection lost; retrying once")
        return attempt()


def _requests_where(conn: Connection, condition: Any) -> list[PrivacyRequest]:
    rows = conn.execute(
        select(requests.c.state).where(condition).order_by(requests.c.due, requests.c.updated_seq)
    )
    out = [privacy_request_from_json(json.loads(r.state)) for r in rows]
    out.sort(key=lambda r: (r.due, r.received, r.reference))  # as the embedded ledger
    return out


def _request_state(conn: Connection, request_id: uuid.UUID) -> PrivacyRequest:
    row = conn.execute(
        select(requests.c.state).where(requests.c.request_id == str(request_id))
    ).first()
    if row is None:
        raise NotFound("no such privacy request")
    return privacy_request_from_json(json.loads(row.state))


def _request_events(
    conn: Connection, request_id: uuid.UUID
) -> tuple[NewRequest, list[RequestChange]]:
    rows = conn.execute(
        select(entries.c.kind, entries.c.body)
        .where(entries.c.request_id == str(request_id))
        .order_by(entries.c.seq)
    ).all()
    if not rows or rows[0].kind != KIND_REQUEST:
        raise NotFound("no such privacy request")
    created = new_request_from_json(json.loads(rows[0].body))
    changes = [request_change_from_json(json.loads(r.body)) for r in rows[1:]]
    return created, changes


def _read_values(
    viewer: Viewer,
    subject: str,
    what: ReadKind,
    call_id: str | None,
    *,
    about: uuid.UUID | None = None,
) -> dict[str, Any]:
    return {
        "record_id": str(uuid.uuid4()),
        "at": utcnow(),
        "reader": viewer.name,
        "reader_team": viewer.team,
        "subject": subject,
        "what": what.value,
        "call_id": call_id,
        "about": str(about) if about else None,
    }


def _log_read(
    conn: Connection,
    viewer: Viewer,
    subject: str,
    what: ReadKind,
    call_id: str | None,
    *,
    about: uuid.UUID | None = None,
) -> None:
    conn.execute(_INSERT_READ, _read_values(viewer, subject, what, call_id, about=about))


_SORT_COLUMNS: dict[SortKey, Any] = {
    SortKey.TIME: None,
    SortKey.AGENT: entries.c.agent,
    SortKey.PURPOSE: func.coalesce(entries.c.purpose, entries.c.request_type, ""),
    SortKey.KIND: entries.c.action,
}

_ROW_COLUMNS = (
    entries.c.seq,
    entries.c.event_id,
    entries.c.action,
    entries.c.at,
    entries.c.agent,
    entries.c.subject,
    entries.c.purpose,
    entries.c.channel,
    entries.c.request_type,
    entries.c.status,
    entries.c.reference,
    entries.c.jurisdiction,
    entries.c.script_id,
    entries.c.script_version,
    entries.c.call_id,
    entries.c.team,
)


def _action_conditions(flt: ReviewFilter) -> list[Any]:
    c = entries.c
    conditions: list[Any] = [c.kind.in_(ACTION_KINDS)]
    if flt.team is not None:
        conditions.append(c.team == flt.team)
    if flt.agent is not None:
        conditions.append(c.agent == flt.agent)
    if flt.since is not None:
        conditions.append(c.at >= flt.since)
    if flt.until is not None:
        conditions.append(c.at < flt.until)
    if flt.kinds:
        conditions.append(c.action.in_([k.value for k in flt.kinds]))
    if flt.purpose is not None:
        conditions.append(c.purpose == flt.purpose)
    if flt.channel is not None:
        conditions.append(c.channel == flt.channel.value)
    if flt.jurisdiction is not None:
        conditions.append(c.jurisdiction == flt.jurisdiction.value)
    if flt.search is not None:
        s = flt.search
        if s.kind == SearchKind.NUMBER:
            conditions.append(c.subject == s.value)
        elif s.kind == SearchKind.DIGITS:
            conditions.append(c.subject.endswith(s.value, autoescape=True))
        elif s.kind == SearchKind.REFERENCE:
            conditions.append(c.reference.startswith(s.value, autoescape=True))
        else:
            conditions.append(c.call_id == s.value)
    return conditions


def _action_row(r: Any) -> ActionRow:
    return ActionRow(
        seq=r.seq,
        event_id=uuid.UUID(r.event_id),
        kind=ActionKind(r.action),
        at=as_utc(r.at),
        agent=r.agent,
        subject=r.subject,
        purpose=r.purpose,
        channel=Channel(r.channel) if r.channel else None,
        request_type=RequestType(r.request_type) if r.request_type else None,
        status=RequestStatus(r.status) if r.status else None,
        reference=r.reference,
        jurisdiction=Jurisdiction(r.jurisdiction) if r.jurisdiction else None,
        script_id=r.script_id,
        script_version=r.script_version,
        call_id=r.call_id,
        team=r.team,
    )


def _masked(row: ActionRow) -> ActionRow:
    return replace(row, subject=phone.mask(row.subject))


def _broken(checked: int, seq: int, message: str) -> IntegrityReport:
    return IntegrityReport(ok=False, checked=checked, message=message, first_bad_seq=seq)
