"""Privacy requests: recording them, moving them on, and looking them up."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from consentdesk.domain.admission import check_subject
from consentdesk.domain.model import (
    NewRequest,
    PrivacyRequest,
    RequestChange,
    new_request_from_json,
    request_change_from_json,
)
from consentdesk.server import problems, wire
from consentdesk.server.deps import (
    Body,
    CallId,
    Creds,
    StoreDep,
    append,
    call_id_of,
    created,
    ok,
    viewer_async,
    viewer_of,
)
from consentdesk.server.openapi import obj, schemas

router = APIRouter(tags=["requests"])
_STATE = schemas.answer("The request as it stands", schemas.ref(PrivacyRequest), 200, 201)


@router.post(
    "/v1/requests",
    summary="Record a new privacy request (idempotent by event_id)",
    openapi_extra=schemas.body(NewRequest),
    responses=_STATE,
    status_code=201,
)
async def post_request(store: StoreDep, creds: Creds, body: Body) -> Response:
    viewer = await viewer_async(store, creds)
    new = wire.decode(NewRequest, body, new_request_from_json)
    return created(*await append(store, viewer, new))


@router.post(
    "/v1/requests/{request_id}/changes",
    summary="Append a status move or verification to a request (idempotent)",
    openapi_extra=schemas.body(RequestChange),
    responses=_STATE,
    status_code=201,
)
async def post_change(request_id: uuid.UUID, store: StoreDep, creds: Creds, body: Body) -> Response:
    viewer = await viewer_async(store, creds)
    change = wire.decode(RequestChange, body, request_change_from_json)
    if change.request_id != request_id:
        raise problems.invalid("the change's request_id is not the one in the path")
    return created(*await append(store, viewer, change))


@router.get(
    "/v1/requests",
    summary="Privacy requests, soonest due first (a logged read)",
    responses=schemas.answer("Requests", schemas.many(PrivacyRequest), 200),
)
def list_requests(
    store: StoreDep,
    creds: Creds,
    x_call_id: CallId = None,
    number: Annotated[str | None, Query(description="Only this E.164 number's")] = None,
    open: Annotated[bool, Query(description="Only open requests")] = False,
) -> Response:
    viewer = viewer_of(store, creds)
    if number is not None:
        wire.check_text(number, "number")
        check_subject(number)
    found = store.requests(viewer, number=number, open_only=open, call_id=call_id_of(x_call_id))
    return ok(found)


@router.get(
    "/v1/requests/by-reference/{ref}",
    summary="One request by the reference read to the caller (a logged read)",
    responses=schemas.answer("The request", schemas.ref(PrivacyRequest), 200),
)
def request_by_reference(
    ref: str, store: StoreDep, creds: Creds, x_call_id: CallId = None
) -> Response:
    viewer = viewer_of(store, creds)
    wire.check_text(ref, "ref")
    return ok(store.request(viewer, reference=ref, call_id=call_id_of(x_call_id)))


@router.get(
    "/v1/requests/{request_id}/events",
    summary="A request's creation and changes, in ledger order (a logged read)",
    responses=schemas.answer(
        "The records",
        obj(created=schemas.ref(NewRequest), changes=schemas.many(RequestChange)),
        200,
    ),
)
def request_events(
    request_id: uuid.UUID, store: StoreDep, creds: Creds, x_call_id: CallId = None
) -> Response:
    viewer = viewer_of(store, creds)
    first, changes = store.request_events(viewer, request_id, call_id=call_id_of(x_call_id))
    return ok({"created": first, "changes": changes})


@router.get(
    "/v1/requests/{request_id}",
    summary="One request by id (a logged read)",
    responses=schemas.answer("The request", schemas.ref(PrivacyRequest), 200),
)
def request_by_id(
    request_id: uuid.UUID, store: StoreDep, creds: Creds, x_call_id: CallId = None
) -> Response:
    viewer = viewer_of(store, creds)
    return ok(store.request(viewer, request_id=request_id, call_id=call_id_of(x_call_id)))
