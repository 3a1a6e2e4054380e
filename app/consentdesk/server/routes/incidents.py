"""Data incidents: everyone reads and tags calls; leads and admins run them."""

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.security import HTTPAuthorizationCredentials
from starlette.concurrency import run_in_threadpool

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
from consentdesk.domain.model import utcnow
from consentdesk.domain.review import from_jsonable
from consentdesk.server import problems, wire
from consentdesk.server.deps import (
    Body,
    Creds,
    StoreDep,
    append,
    created,
    ok,
    viewer_async,
    viewer_of,
)
from consentdesk.server.openapi import schemas
from consentdesk.server.store import Store

MAX_TAG_HOURS = 31 * 24  # per-hour counts cover at most a month

router = APIRouter(tags=["incidents"])
_INCIDENT = schemas.answer("The incident", schemas.ref(Incident), 200, 201)


@router.get(
    "/v1/incidents",
    summary="Incidents, newest first; desks ask for the open ones",
    responses=schemas.answer("Incidents", schemas.many(Incident), 200),
)
def list_incidents(
    store: StoreDep,
    creds: Creds,
    open: Annotated[bool, Query(description="Only open incidents")] = False,
) -> Response:
    viewer = viewer_of(store, creds)
    return ok(store.incidents(viewer, open_only=open))


async def incident_note(
    store: Store,
    creds: HTTPAuthorizationCredentials | None,
    body: bytes,
    kind: type[Any],
    incident_id: uuid.UUID | None,
) -> Response:
    viewer = await viewer_async(store, creds)
    require_incident_manager(viewer)  # before the body: agents learn nothing more
    note: IncidentNote = wire.decode(kind, body, note_from_json)
    if not isinstance(note, kind):
        raise problems.invalid(f"this route takes an incident {kind.__name__} record")
    if incident_id is not None and note.incident_id != incident_id:
        raise problems.invalid("the record's incident_id is not the one in the path")
    return created(*await append(store, viewer, note))


@router.post(
    "/v1/incidents",
    summary="Open an incident (leads and admins; idempotent by record_id)",
    openapi_extra=schemas.body(IncidentOpened),
    responses=_INCIDENT,
    status_code=201,
)
async def open_incident(store: StoreDep, creds: Creds, body: Body) -> Response:
    return await incident_note(store, creds, body, IncidentOpened, None)


@router.post(
    "/v1/incidents/{incident_id}/notify",
    summary="Record when the supervisory authority was notified (leads and admins)",
    openapi_extra=schemas.body(AuthorityNotified),
    responses=_INCIDENT,
    status_code=201,
)
async def notify_incident(
    incident_id: uuid.UUID, store: StoreDep, creds: Creds, body: Body
) -> Response:
    return await incident_note(store, creds, body, AuthorityNotified, incident_id)


@router.post(
    "/v1/incidents/{incident_id}/close",
    summary="Close an incident; its record stays (leads and admins)",
    openapi_extra=schemas.body(IncidentClosed),
    responses=_INCIDENT,
    status_code=201,
)
async def close_incident(
    incident_id: uuid.UUID, store: StoreDep, creds: Creds, body: Body
) -> Response:
    return await incident_note(store, creds, body, IncidentClosed, incident_id)


@router.post(
    "/v1/incidents/{incident_id}/calls",
    summary="Tag a call as about an open incident (tagging twice records once)",
    openapi_extra=schemas.body(CallTag),
    responses=schemas.answer("The recorded tag", schemas.ref(CallTag), 200, 201),
    status_code=201,
)
async def tag_call(incident_id: uuid.UUID, store: StoreDep, creds: Creds, body: Body) -> Response:
    viewer = await viewer_async(store, creds)
    tag = wire.decode(CallTag, body, lambda data: from_jsonable(CallTag, data))
    if tag.incident_id != incident_id:
        raise problems.invalid("the tag's incident_id is not the one in the path")
    stored = await run_in_threadpool(store.stored_call_tag, viewer, tag)
    if stored is None:
        try:
            return created(*await append(store, viewer, tag))
        except problems.Problem as exc:
            # Tagged at the same moment from another click: the first one stands.
            if exc.slug != problems.DUPLICATE_CONFLICT:
                raise
            stored = await run_in_threadpool(store.stored_call_tag, viewer, tag)
            if stored is None:
                raise
    return ok(stored)


@router.get(
    "/v1/incidents/{incident_id}/calls",
    summary="Calls tagged for an incident, oldest first (lead: own team; admin: all)",
    responses=schemas.answer("Tags", schemas.many(CallTag), 200),
)
def list_call_tags(incident_id: uuid.UUID, store: StoreDep, creds: Creds) -> Response:
    viewer = viewer_of(store, creds)
    return ok(store.call_tags(viewer, incident_id))


@router.get(
    "/v1/incidents/{incident_id}/calls/per-hour",
    summary="Tagged calls per UTC hour in [since, until), empty hours included",
    responses=schemas.answer("Counts", schemas.many(HourCount), 200),
)
def call_tags_per_hour(
    incident_id: uuid.UUID,
    store: StoreDep,
    creds: Creds,
    since: Annotated[datetime | None, Query(description="Default: 24 h before until")] = None,
    until: Annotated[datetime | None, Query(description="Default: now")] = None,
) -> Response:
    viewer = viewer_of(store, creds)
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
