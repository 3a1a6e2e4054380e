"""Webhook endpoints, their dead letters and replays (admins only)."""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from consentdesk.domain.changes import EVENT_TYPES
from consentdesk.server import problems, webhooks
from consentdesk.server.deps import Body, Creds, StoreDep, ok, viewer_async
from consentdesk.server.routes.changes import require_admin
from consentdesk.server.store import Store

router = APIRouter(tags=["integrations"])
EndpointId = Annotated[str, Path(description="The endpoint's id")]

_NEW = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "format": "uri"},
        "events": {"type": "array", "items": {"enum": list(EVENT_TYPES)}, "minItems": 1},
        "include_numbers": {
            "type": "boolean",
            "default": False,
            "description": "Send subjects' numbers (otherwise only a pseudonymous subject_id)",
        },
    },
    "required": ["url", "events"],
    "additionalProperties": False,
}


async def _admin(store: Store, creds: Any) -> str:
    viewer = await viewer_async(store, creds)
    require_admin(viewer)
    return viewer.name


def _object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise problems.invalid("the body is not JSON") from None
    if not isinstance(data, dict):
        raise problems.invalid("the body is a JSON object")
    return data


@router.get("/v1/admin/webhooks", summary="Registered webhook endpoints")
async def list_webhooks(store: StoreDep, creds: Creds) -> Response:
    await _admin(store, creds)
    found = await run_in_threadpool(webhooks.list_endpoints, store.engine)
    return ok([e.to_json() for e in found])


@router.post(
    "/v1/admin/webhooks",
    summary="Register a webhook endpoint; the answer holds its signing secret (shown once)",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": _NEW}}}},
    status_code=201,
)
async def add_webhook(store: StoreDep, creds: Creds, body: Body) -> Response:
    who = await _admin(store, creds)
    data = _object(body)
    url, events = data.get("url"), data.get("events")
    numbers = data.get("include_numbers", False)
    extra = set(data) - {"url", "events", "include_numbers"}
    if extra or not isinstance(url, str) or not isinstance(numbers, bool):
        raise problems.invalid("give url (string), events (list) and include_numbers (boolean)")
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise problems.invalid("events is a list of event types")
    endpoint, secret = await run_in_threadpool(
        lambda: webhooks.add_endpoint(store.engine, url, events, include_numbers=numbers, by=who)
    )
    return ok({**endpoint.to_json(), "secret": secret}, 201)


@router.post("/v1/admin/webhooks/{endpoint_id}/disable", summary="Stop delivering to an endpoint")
async def disable_webhook(store: StoreDep, creds: Creds, endpoint_id: EndpointId) -> Response:
    await _admin(store, creds)
    found = await run_in_threadpool(webhooks.set_enabled, store.engine, endpoint_id, False)
    return ok(found.to_json())


@router.post(
    "/v1/admin/webhooks/{endpoint_id}/enable",
    summary="Deliver to an endpoint again (changes from now on)",
)
async def enable_webhook(store: StoreDep, creds: Creds, endpoint_id: EndpointId) -> Response:
    await _admin(store, creds)
    found = await run_in_threadpool(webhooks.set_enabled, store.engine, endpoint_id, True)
    return ok(found.to_json())


@router.post(
    "/v1/admin/webhooks/{endpoint_id}/rotate-secret",
    summary="A new signing secret; the old one also signs for 24 hours",
)
async def rotate_webhook(store: StoreDep, creds: Creds, endpoint_id: EndpointId) -> Response:
    await _admin(store, creds)
    secret = await run_in_threadpool(webhooks.rotate_secret, store.engine, endpoint_id)
    return ok({"id": endpoint_id, "secret": secret})


@router.get(
    "/v1/admin/webhooks/dead-letters",
    summary="Deliveries that gave up after retrying for their whole retry period",
)
async def dead_letters(
    store: StoreDep,
    creds: Creds,
    endpoint: Annotated[str | None, Query(description="Only this endpoint's")] = None,
) -> Response:
    await _admin(store, creds)
    found = await run_in_threadpool(webhooks.dead_letters, store.engine, endpoint)
    return ok(found)


@router.post(
    "/v1/admin/webhooks/{endpoint_id}/replay",
    summary="Queue an endpoint's dead letters again (all, or the ids given)",
)
async def replay(store: StoreDep, creds: Creds, endpoint_id: EndpointId, body: Body) -> Response:
    await _admin(store, creds)
    data = _object(body) if body.strip() else {}
    ids = data.get("ids")
    if ids is not None and (
        not isinstance(ids, list)
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
    ):
        raise problems.invalid("ids is a list of dead-letter ids")
    count = await run_in_threadpool(webhooks.replay, store.engine, endpoint_id, ids)
    return ok({"replayed": count})
