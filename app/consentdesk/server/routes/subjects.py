"""A subject's status, history and profile; every read is logged."""

from fastapi import APIRouter, Response

from consentdesk.domain.model import ConsentEvent, Subject, SubjectStatus, subject_from_json
from consentdesk.server import problems, wire
from consentdesk.server.deps import (
    Body,
    CallId,
    Creds,
    Number,
    StoreDep,
    call_id_of,
    ok,
    viewer_of,
)
from consentdesk.server.openapi import JSON, schemas

router = APIRouter(tags=["subjects"])


@router.get(
    "/v1/subjects/{e164}/status",
    summary="Consent grid and privacy requests of one subject (a logged read)",
    responses=schemas.answer("Current status", schemas.ref(SubjectStatus), 200),
)
def status(e164: Number, store: StoreDep, creds: Creds, x_call_id: CallId = None) -> Response:
    viewer = viewer_of(store, creds)
    document = store.status_document(viewer, e164, call_id=call_id_of(x_call_id))
    return Response(wire.dumps(document), media_type=JSON)


@router.get(
    "/v1/subjects/{e164}/history",
    summary="Every consent event of one subject, oldest first (a logged read)",
    responses=schemas.answer("History", schemas.many(ConsentEvent), 200),
)
def history(e164: Number, store: StoreDep, creds: Creds, x_call_id: CallId = None) -> Response:
    viewer = viewer_of(store, creds)
    events = store.history_json(viewer, e164, call_id=call_id_of(x_call_id))
    return Response(events.encode("utf-8"), media_type=JSON)


@router.put(
    "/v1/subjects/{e164}/profile",
    summary="Store or update a subject's profile (reference data, not a record)",
    openapi_extra=schemas.body(Subject),
    responses=schemas.answer("The stored profile", schemas.ref(Subject), 200),
)
def put_profile(e164: Number, store: StoreDep, creds: Creds, body: Body) -> Response:
    viewer = viewer_of(store, creds)
    subject = wire.decode(Subject, body, subject_from_json)
    if subject.number != e164:
        raise problems.invalid("the profile's number is not the one in the path")
    return ok(store.save_profile(viewer, subject))
