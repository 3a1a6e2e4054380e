"""What routes share: the store, who is asking, and how answers are written.

Everything per process lives on ``app.state``; nothing here keeps state of its
own, so any number of server processes can serve one database.
"""

# No `from __future__ import annotations`: FastAPI reads these Annotated aliases.
import asyncio
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from consentdesk.domain.model import to_jsonable
from consentdesk.domain.review import Viewer
from consentdesk.server import problems, wire
from consentdesk.server.openapi import JSON
from consentdesk.server.store import Store

bearer = HTTPBearer(auto_error=False, description="A token from `consentdesk token create`")


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def raw_body(request: Request) -> bytes:
    return await request.body()


StoreDep = Annotated[Store, Depends(store_of)]
Creds = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
Body = Annotated[bytes, Depends(raw_body)]
CallId = Annotated[
    str | None,
    Header(
        alias="X-Call-Id",
        description="The call this read is for; kept in the read-access log",
    ),
]
Number = Annotated[str, Path(description="The subject's E.164 number", examples=["+4915112345678"])]


def viewer_of(store: Store, creds: HTTPAuthorizationCredentials | None) -> Viewer:
    """The signed-in user; 401 without a usable bearer token."""
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise problems.unauthorized("send Authorization: Bearer <token>")
    return store.authenticate(creds.credentials)


async def viewer_async(store: Store, creds: HTTPAuthorizationCredentials | None) -> Viewer:
    """The caller, without leaving the event loop when this process knows the token."""
    if creds is not None and creds.scheme.lower() == "bearer" and creds.credentials:
        known = store.cached_viewer(creds.credentials)
        if known is not None:
            return known
    return await run_in_threadpool(viewer_of, store, creds)


def reviewer_of(store: StoreDep, creds: Creds) -> Viewer:
    """The caller, who must be a lead or admin (checked before any parameter)."""
    viewer = viewer_of(store, creds)
    viewer.require_reviewer()
    return viewer


Reviewer = Annotated[Viewer, Depends(reviewer_of)]


async def append(store: Store, viewer: Viewer, record: Any) -> tuple[Any, bool]:
    """Append *record*; the answer and whether it was new.

    Writes wait for the appender without holding a worker thread, so every
    request in flight can join the same group commit.
    """
    future, pending = store.submit(viewer, record)
    answer = await asyncio.wrap_future(future)
    return answer, pending.created


def call_id_of(value: str | None) -> str | None:
    if value is not None:
        wire.check_text(value, "X-Call-Id")
    return value or None


def ok(value: Any, status: int = 200) -> Response:
    return Response(wire.dumps(to_jsonable(value)), status_code=status, media_type=JSON)


def created(value: Any, is_new: bool) -> Response:
    """201 for a new record, 200 for a repeat of one already recorded."""
    return ok(value, 201 if is_new else 200)
