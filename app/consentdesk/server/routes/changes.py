"""The change feed: status, request and incident changes after a cursor (admins)."""

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from consentdesk.domain.changes import parse_cursor, subject_pseudonym
from consentdesk.domain.review import ReadAccess, ReadKind, Role, Viewer
from consentdesk.server import problems
from consentdesk.server.changes import PAGE_LIMIT, ChangeSignal, pseudonym_key, read_changes
from consentdesk.server.deps import Creds, StoreDep, ok, viewer_async

MAX_WAIT_S = 60

router = APIRouter(tags=["integrations"])

_PAGE = {
    "type": "object",
    "properties": {
        "changes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "type": {"enum": ["consent.changed", "request.changed", "incident.changed"]},
                    "timestamp": {"type": "string", "format": "date-time"},
                    "data": {"type": "object"},
                },
                "required": ["type", "timestamp", "data"],
            },
        },
        "next": {"type": "string", "description": "The cursor to ask with next"},
    },
    "required": ["changes", "next"],
}


def require_admin(viewer: Viewer) -> None:
    if viewer.role != Role.ADMIN:
        raise problems.forbidden("only admins manage integrations")


@router.get(
    "/v1/changes",
    summary="Changes after a cursor, in ledger order (long poll with wait)",
    description=(
        "Status changes per subject × purpose × channel (`consent.changed`), request "
        "state changes (`request.changed`) and incident changes (`incident.changed`), "
        "strictly in ledger order. Start with no `after`, then pass the answer's `next`; "
        "any earlier cursor replays from there. With `wait` (seconds) the answer waits "
        "for the first change instead of coming back empty. Subjects appear as a "
        "pseudonymous `subject_id`; `numbers=true` adds the number and logs the read. "
        "Admins only."
    ),
    responses={200: {"description": "A page", "content": {"application/json": {"schema": _PAGE}}}},
)
async def get_changes(
    request: Request,
    store: StoreDep,
    creds: Creds,
    after: Annotated[str | None, Query(description="`next` of an earlier answer")] = None,
    wait: Annotated[int, Query(ge=0, le=MAX_WAIT_S, description="Seconds to wait")] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT, description="Entries read")] = PAGE_LIMIT,
    numbers: Annotated[
        bool, Query(description="Add subjects' numbers (each one read is in the read log)")
    ] = False,
) -> Response:
    viewer = await viewer_async(store, creds)
    require_admin(viewer)
    cursor = parse_cursor(after)
    signal: ChangeSignal = request.app.state.signal
    key = getattr(request.app.state, "pseudonym_key", None)
    if key is None:
        key = request.app.state.pseudonym_key = await run_in_threadpool(pseudonym_key, store.engine)
    deadline = time.monotonic() + wait

    def page() -> tuple[list[dict[str, object]], int]:
        with store.engine.connect() as conn:
            changes, nxt = read_changes(conn, store.catalogue, cursor, limit)
        if numbers:  # numbers leave the server: each one is a logged read
            for subject in sorted({c.subject for c in changes if c.subject}):
                store.log_read(viewer, ReadAccess(viewer.name, subject, ReadKind.EXPORT))
        return [
            c.to_json(
                subject_id=subject_pseudonym(key, c.subject) if c.subject else None,
                include_number=numbers,
            )
            for c in changes
        ], nxt

    while True:
        seen = signal.generation
        changes, nxt = await run_in_threadpool(page)
        left = deadline - time.monotonic()
        if nxt != cursor or left <= 0:
            return ok({"changes": changes, "next": str(nxt)})
        await signal.wait_async(seen, left)
