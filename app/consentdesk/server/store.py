"""The server's store: hash-chained appends, status folds, requests, reads, users.

Framework-free and synchronous (called from FastAPI's worker threads). Every
write is one transaction; ledger appends hold the ledger lock
(:func:`db.write_transaction`) from the read of the chain head to the insert,
so any number of server processes build one unbroken chain.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    false,
    func,
    insert,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from consentdesk.core import phone
from consentdesk.core.backend import NotFound
from consentdesk.core.catalogue import Catalogue
from consentdesk.core.ledger import (
    GENESIS,
    KIND_CONSENT,
    KIND_REQUEST,
    RECENT_CLOSED,
    canonical_json,
    link_hash,
)
from consentdesk.core.ledger import KIND_REQUEST_CHANGE as KIND_CHANGE
from consentdesk.core.model import (
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
    utcnow,
)
from consentdesk.core.outbox import check_consent, check_new_request, check_subject
from consentdesk.core.references import normalize_reference
from consentdesk.core.requests import check_change, fold_request
from consentdesk.core.review import (
    ActionKind,
    ActionRow,
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
    next_cursor,
)
from consentdesk.core.scripts import Script
from consentdesk.core.status import current_status
from consentdesk.server import problems
from consentdesk.server.db import (
    entries,
    is_sqlite,
    read_log,
    requests,
    subjects,
    tokens,
    users,
    write_transaction,
)

log = logging.getLogger("consentdesk.server.store")

TOKEN_PREFIX = "cdt_"
ALL_SUBJECTS = "*"  # read-log subject of a list that spans customers


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _utc(value: datetime) -> datetime:
    # SQLite hands timestamps back naive; they were written as UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    kind: str
    event_id: str
    body: str
    hash: str
    recorded_at: datetime

    def receipt(self, *, duplicate: bool) -> Receipt:
        return Receipt(
            event_id=uuid.UUID(self.event_id),
            seq=self.seq,
            hash=self.hash,
            recorded_at=_utc(self.recorded_at),
            duplicate=duplicate,
        )


class Store:
    """Everything the API does to the database."""

    def __init__(self, engine: Engine, *, catalogue: Catalogue, scripts: Sequence[Script]) -> None:
        self.engine = engine
        self.catalogue = catalogue
        self.scripts = tuple(scripts)

    # --- identity ---------------------------------------------------------------

    def authenticate(self, token: str) -> Viewer:
        query = (
            select(users.c.name, users.c.role, users.c.team, users.c.disabled)
            .join(tokens, tokens.c.user_name == users.c.name)
            .where(tokens.c.token_hash == hash_token(token))
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise problems.unauthorized("the token is not valid")
        if row.disabled:
            raise problems.forbidden("this account is disabled", problems.ACCOUNT_DISABLED)
        return Viewer(name=row.name, role=Role(row.role), team=row.team)

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
        if not done:
            raise NotFound(f"no user {name!r}")

    def create_token(self, name: str) -> str:
        """A new token for *name*; only its SHA-256 is stored, so show it once."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            if not conn.execute(select(users.c.name).where(users.c.name == name)).first():
                raise NotFound(f"no user {name!r}; add it first with: consentdesk user add")
            conn.execute(
                insert(tokens).values(
                    token_hash=hash_token(token), user_name=name, created_at=utcnow()
                )
            )
        return token

    def users(self) -> list[Viewer]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).all()
        return [Viewer(r.name, Role(r.role), r.team) for r in rows]

    # --- ledger appends ---------------------------------------------------------

    def capture(self, viewer: Viewer, event: ConsentEvent) -> tuple[Receipt, bool]:
        """Append a consent event; ``(receipt, created)``. A repeat gives the first receipt."""
        _check_agent(viewer, event.agent)
        body = canonical_json(event)
        # Repeats are answered before any other check, so a resend of a record
        # made under an older catalogue still gets its receipt.
        repeat = self._repeat(KIND_CONSENT, event.event_id, body)
        if repeat is not None:
            return repeat.receipt(duplicate=True), False
        check_consent(event, self.catalogue)
        with write_transaction(self.engine) as conn:
            existing = _entry_by_event(conn, event.event_id)
            if existing is not None:
                return _same(existing, KIND_CONSENT, body).receipt(duplicate=True), False
            if event.corrects is not None:
                corrected = conn.execute(
                    select(entries.c.subject).where(
                        entries.c.event_id == str(event.corrects), entries.c.kind == KIND_CONSENT
                    )
                ).first()
                if corrected is None or corrected.subject != event.subject:
                    raise DomainError("the correction names no consent event of this subject")
            entry = _append(
                conn,
                kind=KIND_CONSENT,
                event_id=event.event_id,
                subject=event.subject,
                viewer=viewer,
                body=body,
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
            )
        return entry.receipt(duplicate=False), True

    def create_request(self, viewer: Viewer, new: NewRequest) -> tuple[PrivacyRequest, bool]:
        _check_agent(viewer, new.agent)
        body = canonical_json(new)
        if self._repeat(KIND_REQUEST, new.event_id, body) is not None:
            with self.engine.connect() as conn:
                return _request_state(conn, new.request_id), False
        check_new_request(new)
        state = fold_request(new, [])
        with write_transaction(self.engine) as conn:
            existing = _entry_by_event(conn, new.event_id)
            if existing is not None:
                _same(existing, KIND_REQUEST, body)
                return _request_state(conn, new.request_id), False
            clash = conn.execute(
                select(requests.c.request_id).where(
                    or_(
                        requests.c.request_id == str(new.request_id),
                        requests.c.reference == new.reference,
                    )
                )
            ).first()
            if clash is not None:
                raise problems.conflict("a request with this id or reference already exists")
            entry = _append(
                conn,
                kind=KIND_REQUEST,
                event_id=new.event_id,
                subject=new.subject,
                viewer=viewer,
                body=body,
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
            )
            conn.execute(
                insert(requests).values(
                    request_id=str(new.request_id),
                    reference=new.reference,
                    subject=new.subject,
                    due=state.due,
                    is_open=state.is_open,
                    state=canonical_json(state),
                    updated_seq=entry.seq,
                )
            )
        return state, True

    def change_request(self, viewer: Viewer, change: RequestChange) -> tuple[PrivacyRequest, bool]:
        _check_agent(viewer, change.agent)
        body = canonical_json(change)
        if self._repeat(KIND_CHANGE, change.event_id, body) is not None:
            with self.engine.connect() as conn:
                return _request_state(conn, change.request_id), False
        with write_transaction(self.engine) as conn:
            existing = _entry_by_event(conn, change.event_id)
            if existing is not None:
                _same(existing, KIND_CHANGE, body)
                return _request_state(conn, change.request_id), False
            created, changes = _request_events(conn, change.request_id)
            current = fold_request(created, changes)
            check_change(current, change)
            state = fold_request(created, [*changes, change])
            entry = _append(
                conn,
                kind=KIND_CHANGE,
                event_id=change.event_id,
                subject=created.subject,
                viewer=viewer,
                body=body,
                request_id=change.request_id,
                columns={
                    "action": ActionKind.REQUEST_CHANGE.value,
                    "at": change.at,
                    "request_type": created.type.value,
                    "status": change.status.value if change.status else None,
                    "reference": created.reference,
                    "jurisdiction": created.jurisdiction.value,
                    "call_id": created.call_id,
                },
            )
            conn.execute(
                update(requests)
                .where(requests.c.request_id == str(change.request_id))
                .values(
                    due=state.due,
                    is_open=state.is_open,
                    state=canonical_json(state),
                    updated_seq=entry.seq,
                )
            )
        return state, True

    def _repeat(self, kind: str, event_id: uuid.UUID, body: str) -> Entry | None:
        """The entry already recorded under *event_id* (409 if its content differs)."""
        with self.engine.connect() as conn:
            existing = _entry_by_event(conn, event_id)
        return _same(existing, kind, body) if existing is not None else None

    # --- reads (each logged) ----------------------------------------------------

    def status(self, viewer: Viewer, number: str, *, call_id: str | None) -> SubjectStatus:
        check_subject(number)
        with self.engine.begin() as conn:
            _log_read(conn, viewer, number, ReadKind.STATUS, call_id)
            events = _consent_events(conn, number)
            reqs = _requests_where(conn, requests.c.subject == number)
            profile = conn.execute(select(subjects).where(subjects.c.number == number)).first()
        subject = (
            Subject(number, profile.customer_ref, profile.display_name)
            if profile is not None
            else Subject(number)
        )
        now = utcnow()
        cells = current_status(events, self.catalogue, now)
        recent = [r for r in reqs if r.is_open or now - r.updated_at <= RECENT_CLOSED]
        return SubjectStatus(subject=subject, cells=cells, requests=tuple(recent))

    def history(self, viewer: Viewer, number: str, *, call_id: str | None) -> list[ConsentEvent]:
        check_subject(number)
        with self.engine.begin() as conn:
            _log_read(conn, viewer, number, ReadKind.DETAIL, call_id)
            return _consent_events(conn, number)

    def requests(
        self, viewer: Viewer, *, number: str | None, open_only: bool, call_id: str | None
    ) -> list[PrivacyRequest]:
        conditions = []
        if number is not None:
            conditions.append(requests.c.subject == check_subject(number))
        if open_only:
            conditions.append(requests.c.is_open.is_(True))
        with self.engine.begin() as conn:
            _log_read(conn, viewer, number or ALL_SUBJECTS, ReadKind.STATUS, call_id)
            return _requests_where(conn, and_(true(), *conditions))

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
        with self.engine.begin() as conn:
            row = conn.execute(
                select(requests.c.subject, requests.c.state).where(condition)
            ).first()
            if row is None:
                raise NotFound("no such privacy request")
            _log_read(conn, viewer, row.subject, ReadKind.STATUS, call_id)
        return privacy_request_from_json(json.loads(row.state))

    def request_events(
        self, viewer: Viewer, request_id: uuid.UUID, *, call_id: str | None
    ) -> tuple[NewRequest, list[RequestChange]]:
        """A request's creation and changes in ledger order (a logged read)."""
        with self.engine.begin() as conn:
            created, changes = _request_events(conn, request_id)
            _log_read(conn, viewer, created.subject, ReadKind.STATUS, call_id)
        return created, changes

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
        with self.engine.begin() as conn:
            conn.execute(stmt)
        return subject

    # --- review -----------------------------------------------------------------

    def actions(self, viewer: Viewer, flt: ReviewFilter, page: Page) -> PageResult:
        """One page of captured actions in the viewer's scope (subjects masked)."""
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
        query = (
            select(*_ROW_COLUMNS)
            .where(and_(true(), *conditions))
            .order_by(*(c.desc() if page.descending else c.asc() for c in order))
            .limit(page.limit)
            .offset(page.offset)
        )
        with self.engine.connect() as conn:
            rows = tuple(_action_row(r) for r in conn.execute(query))
        cursor = next_cursor(rows, page)
        masked = tuple(_masked(r) for r in rows)
        return PageResult(rows=masked, next=cursor)

    def action(
        self, viewer: Viewer, event_id: uuid.UUID, *, call_id: str | None
    ) -> tuple[ActionRow, dict[str, Any], str]:
        """One action in full, with its record and ledger hash (a logged read)."""
        viewer.require_reviewer()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(*_ROW_COLUMNS, entries.c.body, entries.c.hash).where(
                    entries.c.event_id == str(event_id)
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
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            ReadLogEntry(
                seq=r.seq,
                read=ReadAccess(
                    reader=r.reader,
                    subject=r.subject,
                    what=ReadKind(r.what),
                    at=_utc(r.at),
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


def _entry_by_event(conn: Connection, event_id: uuid.UUID) -> Entry | None:
    row = conn.execute(
        select(
            entries.c.seq,
            entries.c.kind,
            entries.c.event_id,
            entries.c.body,
            entries.c.hash,
            entries.c.recorded_at,
        ).where(entries.c.event_id == str(event_id))
    ).first()
    return Entry(*row) if row is not None else None


def _same(existing: Entry, kind: str, body: str) -> Entry:
    if existing.kind != kind or existing.body != body:
        raise problems.conflict(
            "this event id is already recorded with different content",
            problems.DUPLICATE_CONFLICT,
        )
    return existing


def _append(
    conn: Connection,
    *,
    kind: str,
    event_id: uuid.UUID,
    subject: str,
    viewer: Viewer,
    body: str,
    columns: dict[str, Any],
    request_id: uuid.UUID | None = None,
) -> Entry:
    head = conn.execute(
        select(entries.c.seq, entries.c.hash).order_by(entries.c.seq.desc()).limit(1)
    ).first()
    seq, prev = (head.seq + 1, head.hash) if head is not None else (1, GENESIS)
    recorded_at = utcnow()
    digest = link_hash(prev, body)
    conn.execute(
        insert(entries).values(
            seq=seq,
            kind=kind,
            event_id=str(event_id),
            subject=subject,
            request_id=str(request_id) if request_id else None,
            agent=viewer.name,
            team=viewer.team,
            recorded_at=recorded_at,
            body=body,
            prev_hash=prev,
            hash=digest,
            **columns,
        )
    )
    return Entry(seq, kind, str(event_id), body, digest, recorded_at)


def _consent_events(conn: Connection, number: str) -> list[ConsentEvent]:
    rows = conn.execute(
        select(entries.c.body)
        .where(entries.c.subject == number, entries.c.kind == KIND_CONSENT)
        .order_by(entries.c.seq)
    )
    return [event_from_json(json.loads(r.body)) for r in rows]


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


def _log_read(
    conn: Connection,
    viewer: Viewer,
    subject: str,
    what: ReadKind,
    call_id: str | None,
    *,
    about: uuid.UUID | None = None,
) -> None:
    conn.execute(
        insert(read_log).values(
            record_id=str(uuid.uuid4()),
            at=utcnow(),
            reader=viewer.name,
            reader_team=viewer.team,
            subject=subject,
            what=what.value,
            call_id=call_id,
            about=str(about) if about else None,
        )
    )


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
    conditions: list[Any] = []
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
    if flt.flagged:
        # No action carries a flag until QA flags are recorded on this server.
        conditions.append(false())
    if flt.search is not None:
        s = flt.search
        if s.kind == SearchKind.NUMBER:
            conditions.append(c.subject == s.value)
        elif s.kind == SearchKind.DIGITS:
            conditions.append(c.subject.endswith(s.value, autoescape=True))
        elif s.kind == SearchKind.REFERENCE:
            conditions.append(c.reference == s.value)
        else:
            conditions.append(c.call_id == s.value)
    return conditions


def _action_row(r: Any) -> ActionRow:
    return ActionRow(
        seq=r.seq,
        event_id=uuid.UUID(r.event_id),
        kind=ActionKind(r.action),
        at=_utc(r.at),
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
