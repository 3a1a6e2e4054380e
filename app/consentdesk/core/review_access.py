"""The one seam between the desk and the review side of whichever store it runs on.

The sidebar reaches incident mode, the review window and the read-access log
only through these functions, always on its worker thread with the backend it
already holds. Today they serve the embedded ledger; another store answers
:class:`ReviewUnavailable` until it is added here (the team server's client is
the next one).

The embedded ledger has no user or team table: a lead or admin there reviews
the whole local file, as ``consentdesk review`` does, since whoever can open
the file can read all of it anyway.
"""

from __future__ import annotations

from consentdesk.core import review_sql
from consentdesk.core.backend import Backend, BackendError
from consentdesk.core.incident import IncidentSource
from consentdesk.core.ledger import EmbeddedLedger
from consentdesk.core.model import SubjectStatus
from consentdesk.core.review import ReadAccess, ReadKind, ReviewSource, Role, Viewer


class ReviewUnavailable(BackendError):
    """This store offers no incidents, review or read log to the desk."""


def _ledger(backend: Backend, what: str) -> EmbeddedLedger:
    if isinstance(backend, EmbeddedLedger):
        return backend
    raise ReviewUnavailable(f"{what} is not available on this backend")


def incidents_for(backend: Backend, viewer: Viewer) -> IncidentSource:
    """Incident mode for *viewer*: agents read open incidents and tag calls."""
    return review_sql.LedgerIncidents(_ledger(backend, "incident mode"), viewer)


def review_source_for(backend: Backend, viewer: Viewer) -> ReviewSource:
    """The review store for a lead or admin; agents get Forbidden.

    The source shares *backend* and does not close it.
    """
    ledger = _ledger(backend, "the review")
    if viewer.role == Role.AGENT:
        viewer.require_reviewer()  # raises Forbidden
    return review_sql.SqlReviewSource(ledger, Viewer(viewer.name, Role.ADMIN))


def log_status_read(backend: Backend, viewer: Viewer, number: str, call_id: str | None) -> None:
    """Append to the read-access log that *viewer* looked up *number*'s status."""
    ledger = _ledger(backend, "the read-access log")
    review_sql.log_read(ledger, ReadAccess(viewer.name, number, ReadKind.STATUS, call_id=call_id))


def lookup_status(
    backend: Backend, viewer: Viewer, number: str, *, call_id: str | None
) -> SubjectStatus:
    """A caller's status, with the read logged where the desk keeps the log.

    Called as one worker task: the read is logged only once the status was
    read, and a read that cannot be logged is not shown (the error reaches
    the caller). Other stores give the status alone: the team server logs
    each status read itself.
    """
    status = backend.status(number)
    if isinstance(backend, EmbeddedLedger):
        log_status_read(backend, viewer, number, call_id)
    return status
