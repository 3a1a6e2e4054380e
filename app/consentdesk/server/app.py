"""The HTTP API under /v1: FastAPI routes over :class:`~consentdesk.server.store.Store`.

Bodies are read raw and decoded with the model's own JSON functions (see
:mod:`consentdesk.server.wire`); answers are ``to_jsonable`` of the domain
objects. Every error is RFC 9457 problem+json. Processes keep no state of
their own, so any number of them can serve one database.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures,
# whose Annotated aliases are local to create_app().
import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentdesk import __version__
from consentdesk.domain.admission import check_subject
from consentdesk.domain.backend import BackendError, NotFound
from consentdesk.domain.catalogue import Catalogue, load_catalogue
from consentdesk.domain.incident import (
    AuthorityNotified,
    CallTag,
    HourCount,
    Incident,
    IncidentClosed,
    IncidentNote,
    IncidentOpened,
    note_from_json,
    require_incident_manager,
    tagged_per_hour,
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
    Subject,
    SubjectStatus,
    event_from_json,
    new_request_from_json,
    request_change_from_json,
    subject_from_json,
    to_jsonable,
    utcnow,
)
from consentdesk.domain.review import (
    DEFAULT_PAGE,
    MAX_PAGE,
    ActionKind,
    ActionRow,
    Cursor,
    Figures,
    Flag,
    FlagNote,
    Forbidden,
    IntegrityReport,
    Page,
    ReadAccess,
    ReadLogEntry,
    ReadLogFilter,
    ReviewFilter,
    Search,
    SearchKind,
    SortKey,
    Viewer,
    from_jsonable,
)
from consentdesk.domain.scripts import Script, load_scripts
from consentdesk.server import problems, wire
from consentdesk.server.appender import RECORD_ERRORS
from consentdesk.server.db import check_schema, make_engine
from consentdesk.server.problems import PROBLEM_JSON, Problem
from consentdesk.server.store import MAX_FIGURE_DAYS, Store

log = logging.getLogger("consentdesk.server")
access_log = logging.getLogger("consentdesk.server.access")

BODY_LIMIT = 64 * 1024
MAX_BATCH_RECORDS = 100
MAX_TAG_HOURS = 31 * 24  # per-hour counts cover at most a month
JSON = "application/json"
E164_PATTERN = r"^\+[1-9][0-9]{1,14}$"


# --- body size limit (before anything parses) ---------------------------------------


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse bodies over *limit* bytes: by Content-Length up front, and by
    counting as chunks arrive (chunked uploads have no length)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_holder = [0]

        async def send_and_watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
            await send(message)

        length = _header(scope, b"content-length")
        problem: Problem | None = None
        if length is not None:
            if not length.isdigit():
                problem = Problem(400, "bad-request", "Bad request", "invalid Content-Length")
            elif int(length) > self.limit:
                problem = problems.too_large(self.limit)
        if problem is not None:
            await _send_problem(send_and_watch, problem, scope.get("path"), close=True)
        else:
            received = 0

            async def limited() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.limit:
                        raise BodyTooLarge
                return message

            await self.app(scope, limited, send_and_watch)
        route = scope.get("route")
        access_log.info(
            "%s %s %d %.1fms",
            scope.get("method"),
            getattr(route, "path", "-"),  # the template: never a number from the path
            status_holder[0],
            (time.perf_counter() - started) * 1000,
        )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1")).strip()
    return None


async def _send_problem(
    send: Callable[[Message], Awaitable[None]],
    problem: Problem,
    instance: str | None,
    *,
    close: bool = False,
) -> None:
    body = problem.encode(instance)
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --- OpenAPI schemas from the dataclasses --------------------------------------------


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, cls: type[Any]) -> dict[str, Any]:
        name = cls.__name__
        if name not in self.components:
            schema, defs = wire.json_schema(cls)
            self.components.update(defs)
            self.components[name] = schema
        return {"$ref": wire.REF.format(model=name)}

    def body(self, cls: type[Any]) -> dict[str, Any]:
        return {
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": self.ref(cls)}},
            }
        }

    def answer(
        self, description: str, schema: dict[str, Any], *statuses: int
    ) -> dict[int | str, Any]:
        out: dict[int | str, Any] = {
            s: {"description": description, "content": {JSON: {"schema": schema}}} for s in statuses
        }
        problem = {"$ref": wire.REF.format(model="Problem")}
        out["default"] = {
            "description": "An error (RFC 9457 problem details)",
            "content": {PROBLEM_JSON: {"schema": problem}},
        }
        return out

    def many(self, cls: type[Any]) -> dict[str, Any]:
        return {"type": "array", "items": self.ref(cls)}


def _batch_item(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"kind": {"const": kind}, "record": record},
        "required": ["kind", "record"],
        "additionalProperties": False,
    }


PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string", "format": "uri-reference"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "required": ["type", "title", "status"],
}


# --- the app -------------------------------------------------------------------------


def create_app(
    database: str | Engine,
    *,
    catalogue: Catalogue | None = None,
    scripts: Sequence[Script] | None = None,
    body_limit: int = BODY_LIMIT,
    threads: int = int(os.environ.get("CONSENTDESK_SERVER_THREADS", "8")),
) -> FastAPI:
    """The API for one database (a URL, or an engine the caller owns)."""
    engine = make_engine(database) if isinstance(database, str) else database
    store = Store(
        engine,
        catalogue=catalogue if catalogue is not None else load_catalogue(),
        scripts=scripts if scripts is not None else load_scripts(),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Few worker threads: request threads mostly wait on the database, and a
        # crowd of them only queues for the interpreter lock between round trips.
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="Consent Desk team ledger",
        version=__version__,
        description=(
            "One append-only consent ledger for every desk. Authenticate with "
            "`Authorization: Bearer <token>` (`consentdesk token create NAME`). "
            "Errors are RFC 9457 problem+json."
        ),
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.store = store
    app.add_middleware(BodyLimitMiddleware, limit=body_limit)
    _install_errors(app, body_limit)
    schemas = _Schemas()
    batch_schema = {
        "type": "object",
        "properties": {
            "records": {
                "type": "array",
                "maxItems": MAX_BATCH_RECORDS,
                "items": {
                    "oneOf": [
                        _batch_item("consent", schemas.ref(ConsentEvent)),
                        _batch_item("request", schemas.ref(NewRequest)),
                        _batch_item("request-change", schemas.ref(RequestChange)),
                    ]
                },
            }
        },
        "required": ["records"],
        "additionalProperties": False,
    }
    bearer = HTTPBearer(auto_error=False, description="A token from `consentdesk token create`")

    def viewer_of(creds: HTTPAuthorizationCredentials | None) -> Viewer:
        if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
            raise problems.unauthorized("send Authorization: Bearer <token>")
        return store.authenticate(creds.credentials)

    Creds = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    CallId = Annotated[
        str | None,
        Header(
            alias="X-Call-Id",
            description="The call this read is for; kept in the read-access log",
        ),
    ]
    Number = Annotated[
        str, Path(description="The subject's E.164 number", examples=["+4915112345678"])
    ]

    async def viewer_async(creds: HTTPAuthorizationCredentials | None) -> Viewer:
        """The caller, without leaving the event loop when this process knows the token."""
        if creds is not None and creds.scheme.lower() == "bearer" and creds.credentials:
            known = store.cached_viewer(creds.credentials)
            if known is not None:
                return known
        return await run_in_threadpool(viewer_of, creds)

    async def append(viewer: Viewer, record: Any) -> tuple[Any, bool]:
        # Writes wait for the appender without holding a worker thread, so every
        # request in flight can join the same group commit.
        future, pending = store.submit(viewer, record)
        answer = await asyncio.wrap_future(future)
        return answer, pending.created

    def call_id_of(value: str | None) -> str | None:
        if value is not None:
            wire.check_text(value, "X-Call-Id")
        return value or None

    def ok(value: Any, status: int = 200) -> Response:
        return Response(wire.dumps(to_jsonable(value)), status_code=status, media_type=JSON)

    async def raw_body(request: Request) -> bytes:
        return await request.body()

    Body = Annotated[bytes, Depends(raw_body)]

    # --- health --------------------------------------------------------------

    @app.get("/healthz", tags=["health"], summary="The process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="The database is reachable and current")
    def readyz() -> dict[str, str]:
        try:
            check_schema(engine)
        except Exception as exc:
            raise problems.unavailable(str(exc)) from None
        return {"status": "ready"}

    # --- identity and reference data -------------------------------------------

    @app.get(
        "/v1/me",
        tags=["identity"],
        summary="Who the token belongs to",
        responses=schemas.answer("The signed-in user", schemas.ref(Viewer), 200),
    )
    def me(creds: Creds) -> Response:
        return ok(viewer_of(creds))

    @app.get(
        "/v1/catalogue",
        tags=["reference"],
        summary="The purposes catalogue in force",
        responses=schemas.answer("The catalogue", schemas.ref(Catalogue), 200),
    )
    def get_catalogue(creds: Creds) -> Response:
        viewer_of(creds)
        return ok(store.catalogue)

    @app.get(
        "/v1/scripts",
        tags=["reference"],
        summary="Published disclosure scripts, every version and language",
        responses=schemas.answer("The scripts", schemas.many(Script), 200),
    )
    def get_scripts(creds: Creds) -> Response:
        viewer_of(creds)
        return ok(store.scripts)

    # --- subjects --------------------------------------------------------------

    @app.get(
        "/v1/subjects/{e164}/status",
        tags=["subjects"],
        summary="Consent grid and privacy requests of one subject (a logged read)",
        responses=schemas.answer("Current status", schemas.ref(SubjectStatus), 200),
    )
    def status(e164: Number, creds: Creds, x_call_id: CallId = None) -> Response:
        viewer = viewer_of(creds)
        document = store.status_document(viewer, e164, call_id=call_id_of(x_call_id))
        return Response(wire.dumps(document), media_type=JSON)

    @app.get(
        "/v1/subjects/{e164}/history",
        tags=["subjects"],
        summary="Every consent event of one subject, oldest first (a logged read)",
        responses=schemas.answer("History", schemas.many(ConsentEvent), 200),
    )
    def history(e164: Number, creds: Creds, x_call_id: CallId = None) -> Response:
        viewer = viewer_of(creds)
        events = store.history_json(viewer, e164, call_id=call_id_of(x_call_id))
        return Response(events.encode("utf-8"), media_type=JSON)

    @app.put(
        "/v1/subjects/{e164}/profile",
        tags=["subjects"],
        summary="Store or update a subject's profile (reference data, not a record)",
        openapi_extra=schemas.body(Subject),
        responses=schemas.answer("The stored profile", schemas.ref(Subject), 200),
    )
    def put_profile(e164: Number, creds: Creds, body: Body) -> Response:
        viewer = viewer_of(creds)
        subject = wire.decode(Subject, body, subject_from_json)
        if subject.number != e164:
            raise problems.invalid("the profile's number is not the one in the path")
        return ok(store.save_profile(viewer, subject))

    # --- consent events ----------------------------------------------------------

    @app.post(
        "/v1/consents",
        tags=["ledger"],
        summary="Append a consent event (idempotent by event_id)",
        description=(
            "201 with the receipt when recorded; a repeat of the same event gives 200 "
            "with the original receipt (`duplicate: true`); the same event id with "
            "different content gives 409. The event's `agent` must be the signed-in "
            "user (403 `agent-mismatch` otherwise)."
        ),
        openapi_extra=schemas.body(ConsentEvent),
        responses=schemas.answer("The receipt", schemas.ref(Receipt), 200, 201),
        status_code=201,
    )
    async def post_consent(creds: Creds, body: Body) -> Response:
        viewer = await viewer_async(creds)
        event = wire.decode(ConsentEvent, body, event_from_json)
        receipt, created = await append(viewer, event)
        return ok(receipt, 201 if created else 200)

    @app.post(
        "/v1/batch",
        tags=["ledger"],
        summary="Append several records in order, each answered on its own",
        description=(
            "For desks sending what waited in their outbox. `records` lists up to "
            f"{MAX_BATCH_RECORDS} items `{{kind, record}}` with kind `consent`, "
            "`request` or `request-change`; they are appended in this order, with the "
            "same rules and idempotency as the single-record routes. The answer lists, "
            "in the same order, each record's `status` (as its own route would answer) "
            "and `body` (receipt, request state or problem details)."
        ),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": batch_schema}},
            }
        },
        responses=schemas.answer(
            "One result per record",
            {
                "type": "object",
                "properties": {
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "status": {"type": "integer"},
                                "body": {"type": "object"},
                            },
                            "required": ["status", "body"],
                        },
                    }
                },
                "required": ["results"],
            },
            200,
        ),
    )
    async def post_batch(creds: Creds, body: Body) -> Response:
        viewer = await viewer_async(creds)
        records = wire.decode_batch(body, MAX_BATCH_RECORDS)
        queued: list[Any] = []
        for record in records:  # queued in order: the appender keeps it
            try:
                if isinstance(record, Exception):
                    raise record
                queued.append(store.submit(viewer, record))
            except RECORD_ERRORS as exc:
                queued.append(exc)
        results = []
        for item in queued:
            try:
                if isinstance(item, BaseException):
                    raise item
                future, pending = item
                answer = await asyncio.wrap_future(future)
            except Exception as exc:
                problem = to_problem(exc, body_limit=body_limit)
                results.append({"status": problem.status, "body": problem.body()})
            else:
                status = 201 if pending.created else 200
                results.append({"status": status, "body": to_jsonable(answer)})
        return Response(wire.dumps({"results": results}), media_type=JSON)

    # --- privacy requests ----------------------------------------------------------

    @app.post(
        "/v1/requests",
        tags=["requests"],
        summary="Record a new privacy request (idempotent by event_id)",
        openapi_extra=schemas.body(NewRequest),
        responses=schemas.answer("The request as it stands", schemas.ref(PrivacyRequest), 200, 201),
        status_code=201,
    )
    async def post_request(creds: Creds, body: Body) -> Response:
        viewer = await viewer_async(creds)
        new = wire.decode(NewRequest, body, new_request_from_json)
        state, created = await append(viewer, new)
        return ok(state, 201 if created else 200)

    @app.post(
        "/v1/requests/{request_id}/changes",
        tags=["requests"],
        summary="Append a status move or verification to a request (idempotent)",
        openapi_extra=schemas.body(RequestChange),
        responses=schemas.answer("The request as it stands", schemas.ref(PrivacyRequest), 200, 201),
        status_code=201,
    )
    async def post_change(request_id: uuid.UUID, creds: Creds, body: Body) -> Response:
        viewer = await viewer_async(creds)
        change = wire.decode(RequestChange, body, request_change_from_json)
        if change.request_id != request_id:
            raise problems.invalid("the change's request_id is not the one in the path")
        state, created = await append(viewer, change)
        return ok(state, 201 if created else 200)

    @app.get(
        "/v1/requests",
        tags=["requests"],
        summary="Privacy requests, soonest due first (a logged read)",
        responses=schemas.answer("Requests", schemas.many(PrivacyRequest), 200),
    )
    def list_requests(
        creds: Creds,
        x_call_id: CallId = None,
        number: Annotated[str | None, Query(description="Only this E.164 number's")] = None,
        open: Annotated[bool, Query(description="Only open requests")] = False,
    ) -> Response:
        viewer = viewer_of(creds)
        if number is not None:
            wire.check_text(number, "number")
            check_subject(number)
        found = store.requests(viewer, number=number, open_only=open, call_id=call_id_of(x_call_id))
        return ok(found)

    @app.get(
        "/v1/requests/by-reference/{ref}",
        tags=["requests"],
        summary="One request by the reference read to the caller (a logged read)",
        responses=schemas.answer("The request", schemas.ref(PrivacyRequest), 200),
    )
    def request_by_reference(ref: str, creds: Creds, x_call_id: CallId = None) -> Response:
        viewer = viewer_of(creds)
        wire.check_text(ref, "ref")
        return ok(store.request(viewer, reference=ref, call_id=call_id_of(x_call_id)))

    @app.get(
        "/v1/requests/{request_id}/events",
        tags=["requests"],
        summary="A request's creation and changes, in ledger order (a logged read)",
        responses=schemas.answer(
            "The records",
            {
                "type": "object",
                "properties": {
                    "created": schemas.ref(NewRequest),
                    "changes": schemas.many(RequestChange),
                },
                "required": ["created", "changes"],
            },
            200,
        ),
    )
    def request_events(request_id: uuid.UUID, creds: Creds, x_call_id: CallId = None) -> Response:
        viewer = viewer_of(creds)
        created, changes = store.request_events(viewer, request_id, call_id=call_id_of(x_call_id))
        return ok({"created": created, "changes": changes})

    @app.get(
        "/v1/requests/{request_id}",
        tags=["requests"],
        summary="One request by id (a logged read)",
        responses=schemas.answer("The request", schemas.ref(PrivacyRequest), 200),
    )
    def request_by_id(request_id: uuid.UUID, creds: Creds, x_call_id: CallId = None) -> Response:
        viewer = viewer_of(creds)
        return ok(store.request(viewer, request_id=request_id, call_id=call_id_of(x_call_id)))

    # --- review (leads: own team; admins: everyone; agents: 403) ----------------------

    def reviewer_of(creds: Creds) -> Viewer:
        """The caller, who must be a lead or admin (checked before any parameter)."""
        viewer = viewer_of(creds)
        viewer.require_reviewer()
        return viewer

    Reviewer = Annotated[Viewer, Depends(reviewer_of)]

    def review_query(
        agent: str | None = None,
        team: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        action: Annotated[list[ActionKind] | None, Query()] = None,
        purpose: str | None = None,
        channel: Channel | None = None,
        jurisdiction: Jurisdiction | None = None,
        flagged: bool | None = None,
        search_kind: SearchKind | None = None,
        search: str | None = None,
        sort: SortKey = SortKey.TIME,
        descending: bool = True,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
        after: Annotated[str | None, Query(description="Cursor from the previous page")] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> tuple[ReviewFilter, Page]:
        """The filter and page of a review listing, from its query parameters."""
        for name, value in (
            ("agent", agent),
            ("team", team),
            ("purpose", purpose),
            ("search", search),
            ("after", after),
        ):
            if value is not None:
                wire.check_text(value, name)
        if (search_kind is None) != (search is None):
            raise problems.invalid("give search_kind and search together")
        flt = ReviewFilter(
            agent=agent,
            team=team,
            since=since,
            until=until,
            kinds=tuple(action or ()),
            purpose=purpose,
            channel=channel,
            jurisdiction=jurisdiction,
            flagged=flagged,
            search=Search(search_kind, search) if search_kind and search else None,
        )
        page = Page(
            limit=limit,
            sort=sort,
            descending=descending,
            after=Cursor.from_token(after) if after else None,
            offset=offset,
        )
        return flt, page

    ReviewQuery = Annotated[tuple[ReviewFilter, Page], Depends(review_query)]

    @app.get(
        "/v1/review/actions",
        tags=["review"],
        summary="Captured actions, newest first, numbers masked (leads and admins)",
        responses=schemas.answer(
            "One page; pass `next` as `after` for the following one",
            {
                "type": "object",
                "properties": {
                    "rows": schemas.many(ActionRow),
                    "next": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                },
                "required": ["rows", "next"],
            },
            200,
        ),
    )
    def review_actions(viewer: Reviewer, query: ReviewQuery) -> Response:
        result = store.actions(viewer, *query)
        payload = to_jsonable(result)
        payload["next"] = result.next.token() if result.next else None
        return Response(wire.dumps(payload), media_type=JSON)

    @app.get(
        "/v1/review/export",
        tags=["review"],
        summary="One page of an export: full numbers and records (logged as an export)",
        responses=schemas.answer(
            "One page; pass `next` as `after` for the following one",
            {
                "type": "object",
                "properties": {
                    "rows": schemas.many(ActionRow),
                    "records": {"type": "array", "items": {"type": "object"}},
                    "next": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                },
                "required": ["rows", "records", "next"],
            },
            200,
        ),
    )
    def review_export(viewer: Reviewer, query: ReviewQuery, x_call_id: CallId = None) -> Response:
        result, records = store.export_page(viewer, *query, call_id=call_id_of(x_call_id))
        payload = to_jsonable(result)
        payload["records"] = records
        payload["next"] = result.next.token() if result.next else None
        return Response(wire.dumps(payload), media_type=JSON)

    @app.get(
        "/v1/review/actions/{event_id}",
        tags=["review"],
        summary="One action in full: row, record and ledger hash (a logged read)",
        responses=schemas.answer("The action", {"type": "object"}, 200),
    )
    def review_action(event_id: uuid.UUID, creds: Creds, x_call_id: CallId = None) -> Response:
        viewer = viewer_of(creds)
        row, record, ledger_hash = store.action(viewer, event_id, call_id=call_id_of(x_call_id))
        return ok({"row": row, "record": record, "ledger_hash": ledger_hash})

    @app.get(
        "/v1/review/read-log",
        tags=["review"],
        summary="Who read whose data, when and from which call (leads and admins)",
        responses=schemas.answer("Reads, newest first", schemas.many(ReadLogEntry), 200),
    )
    def review_read_log(
        creds: Creds,
        reader: str | None = None,
        subject: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
        before: Annotated[int | None, Query(ge=1, description="Only reads before this seq")] = None,
    ) -> Response:
        viewer = viewer_of(creds)
        viewer.require_reviewer()
        for name, value in (("reader", reader), ("subject", subject)):
            if value is not None:
                wire.check_text(value, name)
        flt = ReadLogFilter(
            reader=reader,
            subject=subject,
            since=since,
            until=until,
            limit=limit,
            before_seq=before,
        )
        return ok(store.read_log(viewer, flt))

    @app.get(
        "/v1/review/actions/{event_id}/number",
        tags=["review"],
        summary="The full number of an action's customer (a logged read)",
        responses=schemas.answer(
            "The number",
            {
                "type": "object",
                "properties": {"number": {"type": "string"}},
                "required": ["number"],
            },
            200,
        ),
    )
    def review_number(event_id: uuid.UUID, creds: Creds, x_call_id: CallId = None) -> Response:
        viewer = viewer_of(creds)
        number = store.reveal_number(viewer, event_id, call_id=call_id_of(x_call_id))
        return ok({"number": number})

    @app.post(
        "/v1/review/flags",
        tags=["review"],
        summary="Raise or resolve a QA flag on an action (appended; idempotent by record_id)",
        openapi_extra=schemas.body(FlagNote),
        responses=schemas.answer("The flag as it stands", schemas.ref(Flag), 200, 201),
        status_code=201,
    )
    async def post_flag(creds: Creds, body: Body) -> Response:
        viewer = await viewer_async(creds)
        viewer.require_reviewer()
        note = wire.decode(FlagNote, body, lambda data: from_jsonable(FlagNote, data))
        flag, created = await append(viewer, note)
        return ok(flag, 201 if created else 200)

    @app.get(
        "/v1/review/flags",
        tags=["review"],
        summary="QA flags on actions in scope, newest first (leads and admins)",
        responses=schemas.answer("Flags", schemas.many(Flag), 200),
    )
    def review_flags(
        creds: Creds,
        open: Annotated[bool, Query(description="Only unresolved flags")] = True,
    ) -> Response:
        viewer = viewer_of(creds)
        return ok(store.flags(viewer, open_only=open))

    @app.get(
        "/v1/review/integrity",
        tags=["review"],
        summary="Check the ledger's hash chain end to end (leads and admins)",
        responses=schemas.answer("The check", schemas.ref(IntegrityReport), 200),
    )
    def review_integrity(creds: Creds) -> Response:
        viewer_of(creds).require_reviewer()
        return ok(store.verify())

    @app.get(
        "/v1/review/people",
        tags=["review"],
        summary="Users and teams a reviewer may filter by (lead: own team; admin: all)",
        responses=schemas.answer(
            "Names and teams",
            {
                "type": "object",
                "properties": {
                    "agents": {"type": "array", "items": {"type": "string"}},
                    "teams": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["agents", "teams"],
            },
            200,
        ),
    )
    def review_people(viewer: Reviewer) -> Response:
        names, teams = store.people(viewer)
        return ok({"agents": names, "teams": teams})

    @app.post(
        "/v1/review/read-log",
        tags=["review"],
        summary="Log a read the client made, e.g. an export it wrote (idempotent by record_id)",
        openapi_extra=schemas.body(ReadAccess),
        responses={204: {"description": "Logged"}},
        status_code=204,
    )
    def post_read(viewer: Reviewer, body: Body) -> Response:
        read = wire.decode(ReadAccess, body, lambda data: from_jsonable(ReadAccess, data))
        store.log_read(viewer, read)
        return Response(status_code=204)

    @app.get(
        "/v1/review/figures",
        tags=["review"],
        summary="Actions per agent per day, rates per purpose, request flow (leads and admins)",
        description=(
            "Local calendar days from `first`; `edge` lists the UTC instant each day "
            "starts and, last, when the final day ends (the client knows its time zone, "
            "so days of 23 or 25 hours come out right)."
        ),
        responses=schemas.answer("The figures", schemas.ref(Figures), 200),
    )
    def review_figures(
        viewer: Reviewer,
        first: date,
        edge: Annotated[list[datetime], Query(max_length=MAX_FIGURE_DAYS + 1)],
    ) -> Response:
        if any(e.tzinfo is None for e in edge):
            raise problems.invalid("each edge needs a UTC offset")
        return ok(store.figures(viewer, first, [e.astimezone(UTC) for e in edge]))

    # --- incidents (everyone reads and tags; leads and admins run them) ------------

    @app.get(
        "/v1/incidents",
        tags=["incidents"],
        summary="Incidents, newest first; desks ask for the open ones",
        responses=schemas.answer("Incidents", schemas.many(Incident), 200),
    )
    def list_incidents(
        creds: Creds,
        open: Annotated[bool, Query(description="Only open incidents")] = False,
    ) -> Response:
        viewer = viewer_of(creds)
        return ok(store.incidents(viewer, open_only=open))

    async def incident_note(
        creds: HTTPAuthorizationCredentials | None,
        body: bytes,
        kind: type[Any],
        incident_id: uuid.UUID | None,
    ) -> Response:
        viewer = await viewer_async(creds)
        require_incident_manager(viewer)  # before the body: agents learn nothing more
        note: IncidentNote = wire.decode(kind, body, note_from_json)
        if not isinstance(note, kind):
            raise problems.invalid(f"this route takes an incident {kind.__name__} record")
        if incident_id is not None and note.incident_id != incident_id:
            raise problems.invalid("the record's incident_id is not the one in the path")
        incident, created = await append(viewer, note)
        return ok(incident, 201 if created else 200)

    @app.post(
        "/v1/incidents",
        tags=["incidents"],
        summary="Open an incident (leads and admins; idempotent by record_id)",
        openapi_extra=schemas.body(IncidentOpened),
        responses=schemas.answer("The incident", schemas.ref(Incident), 200, 201),
        status_code=201,
    )
    async def open_incident(creds: Creds, body: Body) -> Response:
        return await incident_note(creds, body, IncidentOpened, None)

    @app.post(
        "/v1/incidents/{incident_id}/notify",
        tags=["incidents"],
        summary="Record when the supervisory authority was notified (leads and admins)",
        openapi_extra=schemas.body(AuthorityNotified),
        responses=schemas.answer("The incident", schemas.ref(Incident), 200, 201),
        status_code=201,
    )
    async def notify_incident(incident_id: uuid.UUID, creds: Creds, body: Body) -> Response:
        return await incident_note(creds, body, AuthorityNotified, incident_id)

    @app.post(
        "/v1/incidents/{incident_id}/close",
        tags=["incidents"],
        summary="Close an incident; its record stays (leads and admins)",
        openapi_extra=schemas.body(IncidentClosed),
        responses=schemas.answer("The incident", schemas.ref(Incident), 200, 201),
        status_code=201,
    )
    async def close_incident(incident_id: uuid.UUID, creds: Creds, body: Body) -> Response:
        return await incident_note(creds, body, IncidentClosed, incident_id)

    @app.post(
        "/v1/incidents/{incident_id}/calls",
        tags=["incidents"],
        summary="Tag a call as about an open incident (tagging twice records once)",
        openapi_extra=schemas.body(CallTag),
        responses=schemas.answer("The recorded tag", schemas.ref(CallTag), 200, 201),
        status_code=201,
    )
    async def tag_call(incident_id: uuid.UUID, creds: Creds, body: Body) -> Response:
        viewer = await viewer_async(creds)
        tag = wire.decode(CallTag, body, lambda data: from_jsonable(CallTag, data))
        if tag.incident_id != incident_id:
            raise problems.invalid("the tag's incident_id is not the one in the path")
        stored = await run_in_threadpool(store.stored_call_tag, viewer, tag)
        if stored is None:
            try:
                answer, created = await append(viewer, tag)
                return ok(answer, 201 if created else 200)
            except problems.Problem as exc:
                # Tagged at the same moment from another click: the first one stands.
                if exc.slug != problems.DUPLICATE_CONFLICT:
                    raise
                stored = await run_in_threadpool(store.stored_call_tag, viewer, tag)
                if stored is None:
                    raise
        return ok(stored)

    @app.get(
        "/v1/incidents/{incident_id}/calls",
        tags=["incidents"],
        summary="Calls tagged for an incident, oldest first (lead: own team; admin: all)",
        responses=schemas.answer("Tags", schemas.many(CallTag), 200),
    )
    def list_call_tags(incident_id: uuid.UUID, creds: Creds) -> Response:
        viewer = viewer_of(creds)
        return ok(store.call_tags(viewer, incident_id))

    @app.get(
        "/v1/incidents/{incident_id}/calls/per-hour",
        tags=["incidents"],
        summary="Tagged calls per UTC hour in [since, until), empty hours included",
        responses=schemas.answer("Counts", schemas.many(HourCount), 200),
    )
    def call_tags_per_hour(
        incident_id: uuid.UUID,
        creds: Creds,
        since: Annotated[datetime | None, Query(description="Default: 24 h before until")] = None,
        until: Annotated[datetime | None, Query(description="Default: now")] = None,
    ) -> Response:
        viewer = viewer_of(creds)
        require_incident_manager(viewer)
        until = until or utcnow()
        since = since or until - timedelta(hours=24)
        if since.tzinfo is None or until.tzinfo is None:
            raise problems.invalid("since and until need a UTC offset")
        if not since < until:
            raise problems.invalid("until must come after since")
        if (until - since).total_seconds() > MAX_TAG_HOURS * 3600:
            raise problems.invalid(f"ask for at most {MAX_TAG_HOURS} hours at once")
        tags = store.call_tags(viewer, incident_id)
        return ok(tagged_per_hour(tags, since, until))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = doc.setdefault("components", {}).setdefault("schemas", {})
            components.update(schemas.components)
            components["Problem"] = PROBLEM_SCHEMA
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def to_problem(exc: BaseException, *, body_limit: int = BODY_LIMIT) -> Problem:
    """The problem an exception is answered with (logged when it is not the client's)."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, wire.WireError):
        return problems.invalid(str(exc), exc.errors)
    if isinstance(exc, DomainError):
        return problems.invalid(str(exc))
    if isinstance(exc, RequestValidationError):
        errors = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
                "message": str(e.get("msg", "invalid")),
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problems.invalid(detail, errors)
    if isinstance(exc, StarletteHTTPException):
        phrase = HTTPStatus(exc.status_code).phrase
        slug = phrase.lower().replace(" ", "-")
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
        return Problem(exc.status_code, slug, phrase, detail, headers=dict(exc.headers or {}))
    if isinstance(exc, NotFound):
        return problems.not_found(str(exc))
    if isinstance(exc, Forbidden):
        return problems.forbidden(str(exc))
    if isinstance(exc, BodyTooLarge):
        return problems.too_large(body_limit)
    if isinstance(exc, DBAPIError) and (
        isinstance(exc, OperationalError) or exc.connection_invalidated
    ):
        # Worth a retry: the write either committed (the retry is a harmless
        # repeat) or it did not.
        log.warning("database unavailable: %s", type(exc.orig).__name__)
        return problems.unavailable("the database is not reachable")
    log.error("unhandled error", exc_info=exc)
    return problems.internal()


def _install_errors(app: FastAPI, body_limit: int) -> None:
    async def answer(request: Request, exc: Exception) -> Response:
        problem = to_problem(exc, body_limit=body_limit)
        return Response(
            problem.encode(request.url.path),
            status_code=problem.status,
            media_type=PROBLEM_JSON,
            headers=problem.headers,
        )

    for kind in (
        Problem,
        DomainError,
        RequestValidationError,
        StarletteHTTPException,
        BackendError,
        BodyTooLarge,
        DBAPIError,
        Exception,
    ):
        app.add_exception_handler(kind, answer)


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` and worker processes: the database from
    ``CONSENTDESK_DATABASE``."""
    url = os.environ.get("CONSENTDESK_DATABASE")
    if not url:
        raise RuntimeError("CONSENTDESK_DATABASE is not set")
    engine = make_engine(url)
    check_schema(engine)
    return create_app(engine)
