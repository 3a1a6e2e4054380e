"""The API's routes, one module per area; :data:`ROUTERS` in the order they match."""

from fastapi import APIRouter

from consentdesk.server.routes import (
    changes,
    enroll,
    health,
    incident_events,
    incidents,
    ledger,
    log,
    monitoring,
    reference,
    requests,
    review,
    subjects,
    webhooks,
)

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    monitoring.router,
    enroll.router,
    reference.router,
    subjects.router,
    ledger.router,
    requests.router,
    review.router,
    incident_events.router,  # before incidents: "events" is no incident id
    incidents.router,
    log.router,
    changes.router,
    webhooks.router,
)
