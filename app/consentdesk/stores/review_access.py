"""The one seam between the desk and the review side of whichever store it runs on.

The sidebar reaches incident mode, the review window and the read-access log
only through these functions, always on its worker thread with the backend it
already holds. The embedded ledger serves all of them. On the team server
(:class:`~consentdesk.stores.http_backend.HttpBackend`) incident mode and the
review are :mod:`consentdesk.stores.http_review`'s clients, sharing the backend's
signed-in client, and the server logs every read itself: a status lookup sends
the call it is for (``X-Call-Id``) and is not logged again here. Any other
store answers :class:`ReviewUnavailable` for all but the status.

The embedded ledger has no user or team table: a lead or admin there reviews
the whole local file, as ``consentdesk review`` does, since whoever can open
the file can read all of it anyway.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from consentdesk.domain.backend import Backend, BackendError
from consentdesk.domain.incident import IncidentSource
from consentdesk.domain.model import SubjectStatus
from consentdesk.domain.review import ReadAccess, ReadKind, ReviewSource, Role, Viewer
from consentdesk.stores import review_sql
from consentdesk.stores.ledger import EmbeddedLedger

if TYPE_CHECKING:
    from consentdesk.stores.http_backend import HttpBackend


class ReviewUnavailable(BackendError):
    """This store offers no incidents, review or read log to the desk."""


def _http(backend: Backend) -> HttpBackend | None:
    """*backend* as the team server's client, else None."""
    # Looked up, not imported: a desk on the embedded ledger never loads the HTTP
    # client, and a backend of a class never imported cannot be one.
    module = sys.modules.get("consentdesk.stores.http_backend")
    if module is not None and isinstance(backend, module.HttpBackend):
        http: HttpBackend = backend
        return http
    return None


http_backend_of = _http


def _ledger(backend: Backend, what: str) -> EmbeddedLedger:
    if isinstance(backend, EmbeddedLedger):
        return backend
    raise ReviewUnavailable(f"{what} is not available on this backend")


def incidents_for(backend: Backend, viewer: Viewer) -> IncidentSource:
    """Incident mode for *viewer*: agents read open incidents and tag calls.

    On the team server *viewer* must be the signed-in user: the server records
    in the token's name and the client refuses any other.
    """
    http = _http(backend)
    if http is not None:
        from consentdesk.stores.http_review import HttpIncidents

        return HttpIncidents(http, viewer)
    return review_sql.LedgerIncidents(_ledger(backend, "incident mode"), viewer)


def review_source_for(backend: Backend, viewer: Viewer) -> ReviewSource:
    """The review store for a lead or admin; agents get Forbidden.

    The source shares *backend* and does not close it. On the team server a lead
    sees their own team, as the server decides; on the embedded ledger, all of it.
    """
    http = _http(backend)
    if http is not None:
        from consentdesk.stores.http_review import HttpReviewSource

        return HttpReviewSource(http, viewer)  # an agent gets Forbidden
    return embedded_review(_ledger(backend, "the review"), viewer)


def embedded_review(
    ledger: EmbeddedLedger, viewer: Viewer, *, owns_ledger: bool = False
) -> review_sql.SqlReviewSource:
    """The review of a desk's own file: a lead or admin reads all of it (the file
    has no teams, and whoever can open it can read it); agents get Forbidden."""
    if viewer.role == Role.AGENT:
        viewer.require_reviewer()  # raises Forbidden
    return review_sql.SqlReviewSource(
        ledger, Viewer(viewer.name, Role.ADMIN), close_ledger=owns_ledger
    )


def log_status_read(backend: Backend, viewer: Viewer, number: str, call_id: str | None) -> None:
    """Append to the embedded ledger's read-access log that *viewer* looked up
    *number*'s status (the team server logs its reads itself)."""
    ledger = _ledger(backend, "the read-access log")
    review_sql.log_read(ledger, ReadAccess(viewer.name, number, ReadKind.STATUS, call_id=call_id))


def lookup_status(
    backend: Backend, viewer: Viewer, number: str, *, call_id: str | None
) -> SubjectStatus:
    """A caller's status, with the read logged where the desk keeps the log.

    Called as one worker task: the read is logged only once the status was
    read, and a read that cannot be logged is not shown (the error reaches
    the caller). The team server logs each status read itself, who from the
    token and the call from the ``X-Call-Id`` header: the client sends
    *call_id* with this read and with the reads that follow for this caller
    (history), until the next lookup. Other stores give the status alone.
    """
    http = _http(backend)
    if http is not None:
        http.call_id = call_id
    status = backend.status(number)
    if isinstance(backend, EmbeddedLedger):
        log_status_read(backend, viewer, number, call_id)
    return status
