"""Appending consent events, one at a time or as a desk's outbox batch."""

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response

from consentdesk.domain.model import (
    ConsentEvent,
    NewRequest,
    Receipt,
    RequestChange,
    event_from_json,
    to_jsonable,
)
from consentdesk.server import wire
from consentdesk.server.appender import RECORD_ERRORS
from consentdesk.server.deps import Body, Creds, StoreDep, append, created, viewer_async
from consentdesk.server.http import to_problem
from consentdesk.server.openapi import JSON, schemas

MAX_BATCH_RECORDS = 100

router = APIRouter(tags=["ledger"])


def _batch_item(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"kind": {"const": kind}, "record": record},
        "required": ["kind", "record"],
        "additionalProperties": False,
    }


_BATCH_SCHEMA = {
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

_BATCH_RESULTS = {
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
}


@router.post(
    "/v1/consents",
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
async def post_consent(store: StoreDep, creds: Creds, body: Body) -> Response:
    viewer = await viewer_async(store, creds)
    event = wire.decode(ConsentEvent, body, event_from_json)
    return created(*await append(store, viewer, event))


@router.post(
    "/v1/batch",
    summary="Append several records in order, each answered on its own",
    description=(
        "For desks sending what waited in their outbox. `records` lists up to "
        f"{MAX_BATCH_RECORDS} items `{{kind, record}}` with kind `consent`, "
        "`request` or `request-change`; they are appended in this order, with the "
        "same rules and idempotency as the single-record routes. The answer lists, "
        "in the same order, each record's `status` (as its own route would answer) "
        "and `body` (receipt, request state or problem details)."
    ),
    openapi_extra=schemas.body_schema(_BATCH_SCHEMA),
    responses=schemas.answer("One result per record", _BATCH_RESULTS, 200),
)
async def post_batch(request: Request, store: StoreDep, creds: Creds, body: Body) -> Response:
    viewer = await viewer_async(store, creds)
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
            problem = to_problem(exc, body_limit=request.app.state.body_limit)
            results.append({"status": problem.status, "body": problem.body()})
        else:
            status = 201 if pending.created else 200
            results.append({"status": status, "body": to_jsonable(answer)})
    return Response(wire.dumps({"results": results}), media_type=JSON)
