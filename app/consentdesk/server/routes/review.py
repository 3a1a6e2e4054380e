"""Review for leads (own team) and admins (everyone); agents get 403."""

import uuid
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from consentdesk.domain.figures import MAX_FIGURE_DAYS
from consentdesk.domain.model import Channel, Jurisdiction, to_jsonable, utcnow
from consentdesk.domain.review import (
    DEFAULT_PAGE,
    MAX_PAGE,
    ActionKind,
    ActionRow,
    Cursor,
    Figures,
    Flag,
    FlagNote,
    IntegrityReport,
    Page,
    ReadAccess,
    ReadLogEntry,
    ReadLogFilter,
    ReviewFilter,
    Search,
    SearchKind,
    SortKey,
    from_jsonable,
)
from consentdesk.server import problems, wire
from consentdesk.server.deps import (
    Body,
    CallId,
    Creds,
    Reviewer,
    StoreDep,
    append,
    call_id_of,
    created,
    ok,
    viewer_async,
    viewer_of,
)
from consentdesk.server.openapi import JSON, STRING, STRINGS, obj, schemas

router = APIRouter(tags=["review"])
_NEXT_PAGE = "One page; pass `next` as `after` for the following one"


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


@router.get(
    "/v1/review/actions",
    summary="Captured actions, newest first, numbers masked (leads and admins)",
    responses=schemas.answer(_NEXT_PAGE, schemas.page(ActionRow), 200),
)
def review_actions(store: StoreDep, viewer: Reviewer, query: ReviewQuery) -> Response:
    result = store.actions(viewer, *query)
    payload = to_jsonable(result)
    payload["next"] = result.next.token() if result.next else None
    return Response(wire.dumps(payload), media_type=JSON)


@router.get(
    "/v1/review/export",
    summary="One page of an export: full numbers and records (logged as an export)",
    responses=schemas.answer(
        _NEXT_PAGE,
        schemas.page(ActionRow, records={"type": "array", "items": {"type": "object"}}),
        200,
    ),
)
def review_export(
    store: StoreDep, viewer: Reviewer, query: ReviewQuery, x_call_id: CallId = None
) -> Response:
    result, records = store.export_page(viewer, *query, call_id=call_id_of(x_call_id))
    payload = to_jsonable(result)
    payload["records"] = records
    payload["next"] = result.next.token() if result.next else None
    return Response(wire.dumps(payload), media_type=JSON)


@router.get(
    "/v1/review/actions/{event_id}",
    summary="One action in full: row, record and ledger hash (a logged read)",
    responses=schemas.answer("The action", {"type": "object"}, 200),
)
def review_action(
    event_id: uuid.UUID, store: StoreDep, creds: Creds, x_call_id: CallId = None
) -> Response:
    viewer = viewer_of(store, creds)
    row, record, ledger_hash = store.action(viewer, event_id, call_id=call_id_of(x_call_id))
    return ok({"row": row, "record": record, "ledger_hash": ledger_hash})


@router.get(
    "/v1/review/read-log",
    summary="Who read whose data, when and from which call (leads and admins)",
    responses=schemas.answer("Reads, newest first", schemas.many(ReadLogEntry), 200),
)
def review_read_log(
    store: StoreDep,
    creds: Creds,
    reader: str | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    before: Annotated[int | None, Query(ge=1, description="Only reads before this seq")] = None,
) -> Response:
    viewer = viewer_of(store, creds)
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


@router.get(
    "/v1/review/actions/{event_id}/number",
    summary="The full number of an action's customer (a logged read)",
    responses=schemas.answer("The number", obj(number=STRING), 200),
)
def review_number(
    event_id: uuid.UUID, store: StoreDep, creds: Creds, x_call_id: CallId = None
) -> Response:
    viewer = viewer_of(store, creds)
    number = store.reveal_number(viewer, event_id, call_id=call_id_of(x_call_id))
    return ok({"number": number})


@router.post(
    "/v1/review/flags",
    summary="Raise or resolve a QA flag on an action (appended; idempotent by record_id)",
    openapi_extra=schemas.body(FlagNote),
    responses=schemas.answer("The flag as it stands", schemas.ref(Flag), 200, 201),
    status_code=201,
)
async def post_flag(store: StoreDep, creds: Creds, body: Body) -> Response:
    viewer = await viewer_async(store, creds)
    viewer.require_reviewer()
    note = wire.decode(FlagNote, body, lambda data: from_jsonable(FlagNote, data))
    return created(*await append(store, viewer, note))


@router.get(
    "/v1/review/flags",
    summary="QA flags on actions in scope, newest first (leads and admins)",
    responses=schemas.answer("Flags", schemas.many(Flag), 200),
)
def review_flags(
    store: StoreDep,
    creds: Creds,
    open: Annotated[bool, Query(description="Only unresolved flags")] = True,
) -> Response:
    viewer = viewer_of(store, creds)
    return ok(store.flags(viewer, open_only=open))


@router.get(
    "/v1/review/integrity",
    summary="Check the ledger's hash chain end to end (leads and admins)",
    responses=schemas.answer("The check", schemas.ref(IntegrityReport), 200),
)
def review_integrity(store: StoreDep, creds: Creds) -> Response:
    viewer_of(store, creds).require_reviewer()
    return ok(store.verify())


@router.get(
    "/v1/review/people",
    summary="Users and teams a reviewer may filter by (lead: own team; admin: all)",
    responses=schemas.answer("Names and teams", obj(agents=STRINGS, teams=STRINGS), 200),
)
def review_people(store: StoreDep, viewer: Reviewer) -> Response:
    names, teams = store.people(viewer)
    return ok({"agents": names, "teams": teams})


@router.post(
    "/v1/review/read-log",
    summary="Log a read the client made, e.g. an export it wrote (idempotent by record_id)",
    openapi_extra=schemas.body(ReadAccess),
    responses={204: {"description": "Logged"}},
    status_code=204,
)
def post_read(store: StoreDep, viewer: Reviewer, body: Body) -> Response:
    read = wire.decode(ReadAccess, body, lambda data: from_jsonable(ReadAccess, data))
    store.log_read(viewer, read)
    return Response(status_code=204)


@router.get(
    "/v1/review/figures",
    summary="Actions per agent per day, rates per purpose, request flow (leads and admins)",
    description=(
        "Local calendar days from `first`; `edge` lists the UTC instant each day "
        "starts and, last, when the final day ends (the client knows its time zone, "
        "so days of 23 or 25 hours come out right). `today` is the lead's local "
        "date, which decides what is overdue (default: today in UTC)."
    ),
    responses=schemas.answer("The figures", schemas.ref(Figures), 200),
)
def review_figures(
    store: StoreDep,
    viewer: Reviewer,
    first: date,
    edge: Annotated[list[datetime], Query(max_length=MAX_FIGURE_DAYS + 1)],
    today: date | None = None,
) -> Response:
    if any(e.tzinfo is None for e in edge):
        raise problems.invalid("each edge needs a UTC offset")
    edges = [e.astimezone(UTC) for e in edge]
    return ok(store.figures(viewer, first, edges, today=today or utcnow().date()))
