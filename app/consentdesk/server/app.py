"""The HTTP API under /v1: FastAPI routers (:mod:`consentdesk.server.routes`) over
:class:`~consentdesk.server.store.Store`.

Bodies are read raw and decoded with the model's own JSON functions (see
:mod:`consentdesk.server.wire`); answers are ``to_jsonable`` of the domain
objects. Every error is RFC 9457 problem+json. Processes keep no state of
their own, so any number of them can serve one database.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from sqlalchemy import Engine

from consentdesk import __version__
from consentdesk.domain.calendars import DEFAULT_CALENDAR, Calendar
from consentdesk.domain.catalogue import Catalogue, load_catalogue
from consentdesk.domain.scripts import Script, load_scripts
from consentdesk.platform.calendar import calendar_from_env
from consentdesk.server.changes import ChangeSignal
from consentdesk.server.db import make_engine, wait_for_database
from consentdesk.server.delivery import start_feed, stop_feed
from consentdesk.server.http import BODY_LIMIT, BodyLimitMiddleware, install_errors
from consentdesk.server.openapi import PROBLEM_SCHEMA, schemas
from consentdesk.server.routes import ROUTERS
from consentdesk.server.store import Store


def create_app(
    database: str | Engine,
    *,
    catalogue: Catalogue | None = None,
    scripts: Sequence[Script] | None = None,
    body_limit: int = BODY_LIMIT,
    threads: int = int(os.environ.get("CONSENTDESK_SERVER_THREADS", "8")),
    calendar: Calendar = DEFAULT_CALENDAR,
) -> FastAPI:
    """The API for one database (a URL, or an engine the caller owns)."""
    engine = make_engine(database) if isinstance(database, str) else database

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Few worker threads: request threads mostly wait on the database, and a
        # crowd of them only queues for the interpreter lock between round trips.
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        feed = start_feed(app.state.engine, app.state.store.catalogue, app.state.signal)
        try:
            yield
        finally:
            stop_feed(app.state.signal, feed)
            app.state.store.stop_listening()
            watch = getattr(app.state, "incident_watch", None)
            if watch is not None:
                watch.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="Consent Desk team ledger",
        version=__version__,
        description=(
            "One append-only consent ledger for every desk. Authenticate with "
            "`Authorization: Bearer <token>` (`consentdesk token create NAME`). "
            "Errors are RFC 9457 problem+json."
        ),
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.engine = engine
    app.state.body_limit = body_limit
    app.state.signal = ChangeSignal(engine)
    app.state.store = Store(
        engine,
        catalogue=catalogue if catalogue is not None else load_catalogue(),
        scripts=scripts if scripts is not None else load_scripts(),
        calendar=calendar,
    )
    app.add_middleware(BodyLimitMiddleware, limit=body_limit)
    install_errors(app, body_limit)
    for router in ROUTERS:
        app.include_router(router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = doc.setdefault("components", {}).setdefault("schemas", {})
            components.update(schemas.components)
            components["Problem"] = PROBLEM_SCHEMA
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` and worker processes: the database from
    ``CONSENTDESK_DATABASE``."""
    url = os.environ.get("CONSENTDESK_DATABASE")
    if not url:
        raise RuntimeError("CONSENTDESK_DATABASE is not set")
    engine = make_engine(url)
    wait_for_database(engine)
    return create_app(engine, calendar=calendar_from_env())
