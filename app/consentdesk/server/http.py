"""HTTP plumbing under the routes: the body limit, the access log and problem+json errors."""

# No `from __future__ import annotations`: FastAPI reads handler signatures.
import logging
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentdesk.domain.backend import BackendError, NotFound
from consentdesk.domain.model import DomainError
from consentdesk.domain.review import Forbidden
from consentdesk.server import problems, wire
from consentdesk.server.problems import PROBLEM_JSON, Problem

log = logging.getLogger("consentdesk.server")
access_log = logging.getLogger("consentdesk.server.access")

BODY_LIMIT = 64 * 1024


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse bodies over *limit* bytes: by Content-Length up front, and by
    counting as chunks arrive (chunked uploads have no length)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_holder = [0]

        async def send_and_watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
            await send(message)

        length = _header(scope, b"content-length")
        problem: Problem | None = None
        if length is not None:
            if not length.isdigit():
                problem = Problem(400, "bad-request", "Bad request", "invalid Content-Length")
            elif int(length) > self.limit:
                problem = problems.too_large(self.limit)
        if problem is not None:
            await _send_problem(send_and_watch, problem, scope.get("path"), close=True)
        else:
            received = 0

            async def limited() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.limit:
                        raise BodyTooLarge
                return message

            await self.app(scope, limited, send_and_watch)
        route = scope.get("route")
        access_log.info(
            "%s %s %d %.1fms",
            scope.get("method"),
            getattr(route, "path", "-"),  # the template: never a number from the path
            status_holder[0],
            (time.perf_counter() - started) * 1000,
        )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1")).strip()
    return None


async def _send_problem(
    send: Callable[[Message], Awaitable[None]],
    problem: Problem,
    instance: str | None,
    *,
    close: bool = False,
) -> None:
    body = problem.encode(instance)
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def to_problem(exc: BaseException, *, body_limit: int = BODY_LIMIT) -> Problem:
    """The problem an exception is answered with (logged when it is not the client's)."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, wire.WireError):
        return problems.invalid(str(exc), exc.errors)
    if isinstance(exc, DomainError):
        return problems.invalid(str(exc))
    if isinstance(exc, RequestValidationError):
        errors = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
                "message": str(e.get("msg", "invalid")),
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problems.invalid(detail, errors)
    if isinstance(exc, StarletteHTTPException):
        phrase = HTTPStatus(exc.status_code).phrase
        slug = phrase.lower().replace(" ", "-")
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
        return Problem(exc.status_code, slug, phrase, detail, headers=dict(exc.headers or {}))
    if isinstance(exc, NotFound):
        return problems.not_found(str(exc))
    if isinstance(exc, Forbidden):
        return problems.forbidden(str(exc))
    if isinstance(exc, BodyTooLarge):
        return problems.too_large(body_limit)
    if isinstance(exc, DBAPIError) and (
        isinstance(exc, OperationalError) or exc.connection_invalidated
    ):
        # Worth a retry: the write either committed (the retry is a harmless
        # repeat) or it did not.
        log.warning("database unavailable: %s", type(exc.orig).__name__)
        return problems.unavailable("the database is not reachable")
    log.error("unhandled error", exc_info=exc)
    return problems.internal()


def install_errors(app: FastAPI, body_limit: int) -> None:
    """Answer every error as problem+json."""

    async def answer(request: Request, exc: Exception) -> Response:
        problem = to_problem(exc, body_limit=body_limit)
        return Response(
            problem.encode(request.url.path),
            status_code=problem.status,
            media_type=PROBLEM_JSON,
            headers=problem.headers,
        )

    for kind in (
        Problem,
        DomainError,
        RequestValidationError,
        StarletteHTTPException,
        BackendError,
        BodyTooLarge,
        DBAPIError,
        Exception,
    ):
        app.add_exception_handler(kind, answer)
