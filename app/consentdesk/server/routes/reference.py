"""Who is signed in, and the reference data every desk loads: catalogue and scripts."""

from fastapi import APIRouter, Response

from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.review import Viewer
from consentdesk.domain.scripts import Script
from consentdesk.server.deps import Creds, StoreDep, ok, viewer_of
from consentdesk.server.openapi import schemas

router = APIRouter()


@router.get(
    "/v1/me",
    tags=["identity"],
    summary="Who the token belongs to",
    responses=schemas.answer("The signed-in user", schemas.ref(Viewer), 200),
)
def me(store: StoreDep, creds: Creds) -> Response:
    return ok(viewer_of(store, creds))


@router.get(
    "/v1/catalogue",
    tags=["reference"],
    summary="The purposes catalogue in force",
    responses=schemas.answer("The catalogue", schemas.ref(Catalogue), 200),
)
def get_catalogue(store: StoreDep, creds: Creds) -> Response:
    viewer_of(store, creds)
    return ok(store.catalogue)


@router.get(
    "/v1/scripts",
    tags=["reference"],
    summary="Published disclosure scripts, every version and language",
    responses=schemas.answer("The scripts", schemas.many(Script), 200),
)
def get_scripts(store: StoreDep, creds: Creds) -> Response:
    viewer_of(store, creds)
    return ok(store.scripts)
