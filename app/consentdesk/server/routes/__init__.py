"""The API's routes, one module per area; :data:`ROUTERS` in the order they match."""

from fastapi import APIRouter

from consentdesk.server.routes import (
    health,
    incident_events,
    incidents,
    ledger,
    reference,
    requests,
    review,
    subjects,
)

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    reference.router,
    subjects.router,
    ledger.router,
    requests.router,
    review.router,
    incident_events.router,  # before incidents: "events" is no incident id
    incidents.router,
)
