"""Incident changes pushed to signed-in sidebars by long polling.

``GET /v1/incidents/events?after=V`` answers ``{"version": W}`` at once when
the incident version W differs from V (or no V was given), else holds the
request until an incident is opened, notified or closed, at most ``wait``
seconds. A desk keeps one such request open from a background thread and
fetches ``/v1/incidents?open=true`` whenever the version moves, so a banner
appears within about a second of the lead's click on every desk, whichever
server process it talks to. Requests are short-lived, so proxies, restarts and
reconnection need nothing special: a desk that lost its request asks again.
"""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from consentdesk.server.deps import Creds, StoreDep, ok, viewer_async
from consentdesk.server.incident_watch import IncidentWatch
from consentdesk.server.openapi import schemas

MAX_WAIT_S = 25.0  # below common proxy read timeouts (30-60 s)

router = APIRouter(tags=["incidents"])

_VERSION = {
    "type": "object",
    "properties": {
        "version": {
            "type": "integer",
            "description": "Grows whenever an incident is opened, notified or closed",
        }
    },
    "required": ["version"],
}


def incident_watch(request: Request) -> IncidentWatch:
    watch: IncidentWatch | None = getattr(request.app.state, "incident_watch", None)
    if watch is None:
        watch = request.app.state.incident_watch = IncidentWatch(request.app.state.engine)
    return watch


@router.get(
    "/v1/incidents/events",
    summary="Wait for incidents to change (long poll); every signed-in user",
    responses=schemas.answer("The incident version", _VERSION, 200),
)
async def incident_events(
    request: Request,
    store: StoreDep,
    creds: Creds,
    after: Annotated[
        int | None,
        Query(ge=0, description="The version the desk has; answer when it changes"),
    ] = None,
    wait: Annotated[
        float, Query(ge=0, le=MAX_WAIT_S, description="Longest hold in seconds")
    ] = MAX_WAIT_S,
) -> Response:
    await viewer_async(store, creds)  # 401 before any waiting
    version = await incident_watch(request).wait_beyond(after, wait, gone=request.is_disconnected)
    return ok({"version": version})
