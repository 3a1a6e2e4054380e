"""``/metrics`` for Prometheus (no token: the nginx site lets only the
monitoring hosts reach it)."""

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from consentdesk.server import metrics

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Request counts and latencies of this process, ledger figures (Prometheus text)",
    responses={200: {"description": "Prometheus text format 0.0.4", "content": {"text/plain": {}}}},
)
async def prometheus(request: Request) -> Response:
    text = await run_in_threadpool(metrics.render, request.app.state.engine)
    return Response(text, media_type=metrics.CONTENT_TYPE)
