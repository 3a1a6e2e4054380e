"""Liveness and readiness for load balancers (no token)."""

from fastapi import APIRouter, Request

from consentdesk.server import problems
from consentdesk.server.db import check_schema

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable and current")
def readyz(request: Request) -> dict[str, str]:
    try:
        check_schema(request.app.state.engine)
    except Exception as exc:
        raise problems.unavailable(str(exc)) from None
    return {"status": "ready"}
