"""The backend interface every store speaks: embedded ledger, HTTP client, server.

The sidebar only ever talks to a :class:`Backend`, always from a worker thread.
Implementations must be safe to call from one worker thread at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.model import (
    ConsentEvent,
    NewRequest,
    PrivacyRequest,
    Receipt,
    RequestChange,
    Subject,
    SubjectStatus,
)
from consentdesk.domain.scripts import Script


class BackendError(Exception):
    """A backend could not do what was asked; the message is safe to show."""


class NotFound(BackendError):
    """The subject, request or script does not exist."""


class Unavailable(BackendError):
    """The store cannot be reached right now (network down, database locked)."""


class IntegrityError(BackendError):
    """The stored data is damaged or not ours (corrupt file, broken hash chain)."""


@runtime_checkable
class Backend(Protocol):
    """What the desk needs from a store of consent records."""

    def catalogue(self) -> Catalogue:
        """The purposes catalogue in force."""
        ...

    def scripts(self) -> Sequence[Script]:
        """Published disclosure scripts (every language and version)."""
        ...

    def status(self, number: str) -> SubjectStatus:
        """Consent grid and open/recent requests for an E.164 number.

        A number never seen gives a status with every cell unknown.
        """
        ...

    def history(self, number: str) -> Sequence[ConsentEvent]:
        """Every consent event for the subject, oldest first, corrections included."""
        ...

    def capture(self, event: ConsentEvent) -> Receipt:
        """Append a consent event; returns only once it is durable.

        Idempotent by ``event.event_id``: a repeat returns the first receipt
        with ``duplicate=True`` and records nothing new.
        """
        ...

    def create_request(self, request: NewRequest) -> PrivacyRequest:
        """Record a new privacy request (idempotent by ``request.event_id``)."""
        ...

    def update_request(self, change: RequestChange) -> PrivacyRequest:
        """Append a status move or verification to a request (idempotent)."""
        ...

    def requests(
        self, *, number: str | None = None, open_only: bool = False
    ) -> Sequence[PrivacyRequest]:
        """Privacy requests, soonest due first; optionally one subject's, open only."""
        ...

    def request(self, request_id: uuid.UUID) -> PrivacyRequest:
        """One request by id; raises :class:`NotFound`."""
        ...

    def find_request(self, reference: str) -> PrivacyRequest:
        """One request by the reference read to the caller; raises :class:`NotFound`."""
        ...

    def save_subject(self, subject: Subject) -> None:
        """Store or update a subject's profile (name, customer reference).

        Profiles are reference data, not legal records, so they may change.
        """
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
