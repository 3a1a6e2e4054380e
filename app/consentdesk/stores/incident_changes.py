"""Noticing that incidents changed, from a background thread (never the GUI's).

Each store has a cheap "incident version" that grows whenever an incident is
opened, notified or closed; a desk refetches the open incidents when it moves.

* Embedded ledger: a thread with its own read-only connection checks the
  file's ``PRAGMA data_version`` every second (it changes whenever another
  connection, this process's worker included, commits), and only then looks
  up the newest incident record (one index lookup).
* Team server: a long poll, ``GET /v1/incidents/events?after=V``, held by the
  server until an incident changes.

:class:`IncidentWatcher` runs either on a daemon thread and reconnects with
capped exponential backoff, so a server restart or a moved database file
costs a few seconds of latency, never the watcher.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from consentdesk.domain.backend import Backend, BackendError
from consentdesk.domain.review_records import KIND_INCIDENT

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("consentdesk.incidents")

LEDGER_CHECK_S = 1.0
HOLD_S = 20.0  # the server holds a long poll at most this long
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 30.0


class IncidentChanges(Protocol):
    def versions(self, stop: threading.Event) -> Iterator[int]:
        """The incident version now, then each new one; BackendError when the
        store cannot be reached (the watcher retries)."""
        ...

    def close(self) -> None:
        """Interrupt a wait in progress (called from another thread)."""
        ...


class LedgerChanges:
    """Incident versions of an embedded ledger file."""

    def __init__(self, path: Path, *, interval: float = LEDGER_CHECK_S) -> None:
        self.path = path
        self.interval = interval

    def versions(self, stop: threading.Event) -> Iterator[int]:
        try:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise BackendError(f"cannot watch the ledger: {exc}") from None
        try:
            seen = None
            while not stop.is_set():
                try:
                    data_version = conn.execute("PRAGMA data_version").fetchone()[0]
                    if data_version != seen:
                        seen = data_version
                        row = conn.execute(
                            "SELECT max(seq) FROM entries WHERE kind = ?", (KIND_INCIDENT,)
                        ).fetchone()
                        yield int(row[0] or 0)
                except sqlite3.Error as exc:
                    raise BackendError(f"cannot watch the ledger: {exc}") from None
                stop.wait(self.interval)
        finally:
            conn.close()

    def close(self) -> None:
        pass  # the wait is the stop event's


class ServerChanges:
    """Incident versions from the team server's long poll, on a client of its own."""

    def __init__(self, client: httpx.Client, base_url: str) -> None:
        self.client = client
        self.base_url = base_url

    def versions(self, stop: threading.Event) -> Iterator[int]:
        import httpx

        from consentdesk.stores.http_backend import _problem_error, _transport_error

        after: int | None = None
        while not stop.is_set():
            params: dict[str, float] = {"wait": HOLD_S}
            if after is not None:
                params["after"] = after
            try:
                answer = self.client.get(
                    "/v1/incidents/events",
                    params=params,
                    timeout=httpx.Timeout(HOLD_S + 15, connect=5.0),
                )
            except (httpx.TransportError, RuntimeError) as exc:
                if stop.is_set():
                    return  # close() interrupted the request: we are stopping
                if isinstance(exc, RuntimeError):
                    raise
                raise _transport_error(exc, self.base_url) from None
            if answer.status_code != 200:
                raise _problem_error(answer)
            try:
                version = int(answer.json()["version"])
            except (ValueError, KeyError, TypeError):
                raise BackendError("the team server sent an unexpected incident version") from None
            if version != after:
                after = version
                yield version

    def close(self) -> None:
        self.client.close()  # a request in flight fails at once


def incident_changes_for(backend: Backend) -> IncidentChanges | None:
    """How to watch *backend*'s incidents (None: it has none to watch).

    Called on the worker that owns *backend*; the result is used on the
    watcher's thread and shares no connection with the worker.
    """
    from consentdesk.stores.ledger import EmbeddedLedger
    from consentdesk.stores.review_access import http_backend_of

    http = http_backend_of(backend)
    if http is not None:
        return ServerChanges(http.event_client(), http.base_url)
    if isinstance(backend, EmbeddedLedger):
        return LedgerChanges(backend.path)
    return None


class IncidentWatcher:
    """Calls ``on_change()`` (on its own thread) whenever the incident version
    moves, and once at start; reconnects with backoff until :meth:`stop`."""

    def __init__(self, changes: IncidentChanges, on_change: Callable[[], None]) -> None:
        self.changes = changes
        self._on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="incident-watch", daemon=True)
        self.failures = 0
        self.backoff_initial = BACKOFF_INITIAL_S
        self.backoff_max = BACKOFF_MAX_S

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self.changes.close()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        delay = self.backoff_initial
        last: int | None = None
        while not self._stop.is_set():
            try:
                for version in self.changes.versions(self._stop):
                    delay = self.backoff_initial  # it works again
                    if version != last:
                        last = version
                        self._notify()
            except BackendError as exc:
                if self._stop.is_set():
                    return
                self.failures += 1
                log.info("incident watch lost (%s); retrying in %.0f s", exc, delay)
                # Whatever changed meanwhile shows at the next version read.
                last = None
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, self.backoff_max)

    def _notify(self) -> None:
        try:
            self._on_change()
        except Exception:
            log.exception("incident change handler failed")
