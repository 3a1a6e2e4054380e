"""What every panel and flow shares: settings, the worker, catalogue and scripts,
and, on the team server, who is signed in and what waits to sync."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal

from consentdesk.domain.calendars import Calendar
from consentdesk.domain.model import Jurisdiction, Purpose, utcnow
from consentdesk.gui.tasks import Task, TaskRunner, describe_error
from consentdesk.platform.calendar import controller_calendar
from consentdesk.platform.config import Config

if TYPE_CHECKING:
    from consentdesk.domain.backend import Backend
    from consentdesk.domain.catalogue import Catalogue
    from consentdesk.domain.review import Viewer
    from consentdesk.domain.scripts import Script

log = logging.getLogger("consentdesk.gui")

SYNC_INTERVAL_MS = 5_000  # a sync pass with nothing waiting sends nothing
MAX_SYNC_BACKOFF_MS = 60_000  # while the server cannot be reached
UNREACHABLE = "Server unreachable — captures are kept and will be sent"
NOT_SIGNED_IN = "Not signed in to the team server — open Settings"
NO_KEYRING = "No OS keyring: set CONSENTDESK_TOKEN"


@dataclass(frozen=True, slots=True)
class ServerState:
    """What the sidebar shows about the team server (nothing on the embedded ledger)."""

    problem: str | None = None  # sign-in, keyring or address: the agent must open Settings
    waiting: int = 0  # captures in the outbox, not yet on the server
    unreachable: bool = False  # the last sync pass could not reach the server
    sync_error: str | None = None  # the server answered but took nothing (busy, error)
    refused: int = 0  # records the server refused for good (kept in the outbox)


@dataclass(frozen=True, slots=True)
class SyncResult:
    """One sync pass on the worker, judged for the agent."""

    waiting: int
    refused: int
    unreachable: bool = False
    problem: str | None = None
    sync_error: str | None = None


def is_sign_in_problem(exc: BaseException) -> bool:
    """Errors only the agent (in Settings) or IT can fix: token, keyring, address."""
    from consentdesk.domain.review import Forbidden
    from consentdesk.platform.secrets import KeyringUnavailable
    from consentdesk.stores.http_backend import AuthError, InsecureServer

    return isinstance(exc, AuthError | InsecureServer | KeyringUnavailable | Forbidden)


def signed_in_identity(backend: Backend) -> Viewer | None:
    """Who the team server's token belongs to (on the worker); None on the embedded
    ledger. Offline, the identity remembered from the last sign-in."""
    from consentdesk.domain.backend import Unavailable
    from consentdesk.stores.http_backend import HttpBackend

    if not isinstance(backend, HttpBackend):
        return None
    try:
        return backend.me()
    except Unavailable:
        if backend.identity is None:
            raise
        return backend.identity


def sync_pass(backend: Backend) -> SyncResult | None:
    """Send what waits in the outbox (on the worker); None on the embedded ledger.

    The backend stays on the one worker thread (the Backend contract), so a
    status read never races a pass that is taking records out of the outbox.
    """
    from consentdesk.domain.backend import BackendError, Unavailable
    from consentdesk.stores.http_backend import HttpBackend

    if not isinstance(backend, HttpBackend):
        return None
    report = backend.sync_once()
    refused = len(backend.rejected())
    if report.error is None:
        return SyncResult(waiting=report.pending, refused=refused)
    # The report says why in words only; a probe tells offline from sign-in trouble.
    try:
        backend.test_connection()
    except Unavailable:
        return SyncResult(waiting=report.pending, refused=refused, unreachable=True)
    except BackendError as exc:
        if is_sign_in_problem(exc):
            return SyncResult(report.pending, refused, problem=describe_error(exc))
        return SyncResult(report.pending, refused, sync_error=describe_error(exc))
    return SyncResult(report.pending, refused, sync_error=report.error.splitlines()[0])


def waiting_count(backend: Backend) -> int | None:
    """Captures waiting in the outbox (on the worker); None on the embedded ledger."""
    from consentdesk.stores.http_backend import HttpBackend

    return backend.pending_count() if isinstance(backend, HttpBackend) else None


class Desk(QObject):
    """Shared state of one sidebar: config, the task runner and reference data.

    On the team server (``server.url`` set) the agent id and role come from the
    signed-in token, and captures wait in the outbox until a sync pass (every
    *sync_interval_ms*, right after each capture, and on :meth:`sync_now`) sends
    them; passes run on the worker like every other backend call.

    Signals:
        ready(): catalogue and scripts are loaded; captures can start.
        load_failed(str): loading them failed (message for the agent).
        settings_changed(): a setting changed (agent id, languages, ...).
        server_changed(): sign-in, waiting captures or reachability changed.
        reopening(): the backend is being reopened; what was read from it is stale.
    """

    ready = Signal()
    load_failed = Signal(str)
    settings_changed = Signal()
    server_changed = Signal()
    reopening = Signal()

    def __init__(
        self,
        config: Config,
        runner: TaskRunner,
        parent: QObject | None = None,
        *,
        sync_interval_ms: int = SYNC_INTERVAL_MS,
    ) -> None:
        super().__init__(parent)
        self.config = config
        self.runner = runner
        self.catalogue: Catalogue | None = None
        self.scripts: tuple[Script, ...] = ()
        self.identity: Viewer | None = None  # signed in to the team server as
        self.load_error: str | None = None
        self.server = ServerState()
        self.sync_interval_ms = sync_interval_ms
        self._sync_delay_ms = sync_interval_ms
        self._syncing = False
        self._sync_again = False
        self._stopped = False
        self._generation = 0  # bumped on reopen: answers of the old backend are dropped
        self._sync_timer = QTimer(self)
        self._sync_timer.setSingleShot(True)
        self._sync_timer.timeout.connect(self.sync_now)

    # --- reference data --------------------------------------------------------

    def load(self) -> Task:
        """Fetch catalogue, scripts and, on the server, who is signed in, on the
        worker (opens the backend)."""

        on_server = self.on_server  # else the HTTP client is not even imported

        def fetch(backend: Backend) -> tuple[Catalogue, tuple[Script, ...], Viewer | None]:
            # First: a refused token stops here.
            identity = signed_in_identity(backend) if on_server else None
            return backend.catalogue(), tuple(backend.scripts()), identity

        gen = self._generation
        return self.runner.call(
            fetch,
            on_success=lambda result: self._loaded(result) if gen == self._generation else None,
            on_failure=lambda exc: self._failed(exc) if gen == self._generation else None,
            label="load catalogue",
        )

    @property
    def loaded(self) -> bool:
        return self.catalogue is not None

    @property
    def on_server(self) -> bool:
        """The desk is set up for the team server (``server.url``)."""
        return bool(str(self.config.get("server.url")).strip())

    def _loaded(self, result: tuple[Catalogue, tuple[Script, ...], Viewer | None]) -> None:
        before = self.identity
        self.catalogue, self.scripts, self.identity = result
        self.load_error = None
        self._set_server(replace(self.server, problem=None))
        self.ready.emit()
        if self.identity != before:
            self.settings_changed.emit()  # agent id and role come from the sign-in
        if self.identity is not None:
            self.sync_now()

    def _failed(self, exc: BaseException) -> None:
        message = describe_error(exc)
        self.load_error = message
        if self.on_server and is_sign_in_problem(exc):
            self._set_server(replace(self.server, problem=message))
        self.load_failed.emit(message)

    def reopen(self) -> None:
        """Close the backend and load again (after signing in or out)."""
        if self._stopped:
            return
        self._sync_timer.stop()
        self._generation += 1
        self._syncing = self._sync_again = False
        self.catalogue, self.identity, self.load_error = None, None, None
        self._sync_delay_ms = self.sync_interval_ms
        self.server = ServerState()
        self.reopening.emit()
        self.runner.reopen_backend()  # a failed close is logged; the reopen goes ahead
        self.load()
        self.server_changed.emit()
        self.settings_changed.emit()  # no signed-in agent until the load says who

    # --- sync with the team server -----------------------------------------------

    def sync_now(self) -> None:
        """Run a sync pass on the worker now (one at a time; a request during a pass
        runs another right after it)."""
        if self._stopped or self.identity is None:
            return
        if self._syncing:
            self._sync_again = True
            return
        self._syncing = True
        self._sync_timer.stop()
        gen = self._generation
        self.runner.call(
            sync_pass,
            on_success=lambda result: self._synced(result) if gen == self._generation else None,
            on_failure=lambda exc: self._sync_failed(exc) if gen == self._generation else None,
            label="sync",
        )

    def after_capture(self) -> None:
        """A capture went into the outbox: show it waiting, then try to send it."""
        if self._stopped or self.identity is None:
            return
        gen = self._generation
        self.runner.call(
            waiting_count,
            on_success=lambda waiting: self._counted(waiting, gen),
            label="waiting count",
        )
        self.sync_now()

    def _counted(self, waiting: int | None, gen: int) -> None:
        if waiting is not None and gen == self._generation:
            self._set_server(replace(self.server, waiting=waiting))

    def _synced(self, result: SyncResult | None) -> None:
        self._syncing = False
        if result is None:  # the embedded ledger: nothing to send
            return
        self._set_server(
            ServerState(
                problem=result.problem,
                waiting=result.waiting,
                unreachable=result.unreachable,
                sync_error=result.sync_error,
                refused=result.refused,
            )
        )
        ok = not (result.unreachable or result.problem or result.sync_error)
        self._schedule_sync(ok=ok)

    def _sync_failed(self, exc: BaseException) -> None:
        # The outbox itself failed (disk): say so, keep trying.
        self._syncing = False
        self._set_server(replace(self.server, sync_error=describe_error(exc)))
        self._schedule_sync(ok=False)

    def _schedule_sync(self, *, ok: bool) -> None:
        if self._stopped:
            return
        if self._sync_again:
            self._sync_again = False
            self.sync_now()
            return
        if ok:
            self._sync_delay_ms = self.sync_interval_ms
        else:  # back off while the server is away; "Send now" and captures still try at once
            self._sync_delay_ms = min(self._sync_delay_ms * 2, MAX_SYNC_BACKOFF_MS)
        self._sync_timer.start(self._sync_delay_ms)

    def _set_server(self, state: ServerState) -> None:
        if state != self.server:
            self.server = state
            self.server_changed.emit()

    def stop(self) -> None:
        """No more sync passes (the sidebar is closing)."""
        self._stopped = True
        self._sync_timer.stop()

    def visible_purposes(self) -> tuple[Purpose, ...]:
        """Purposes offered under the desk's jurisdiction, in catalogue order."""
        if self.catalogue is None:
            return ()
        return tuple(p for p in self.catalogue if self.jurisdiction in p.jurisdictions)

    # --- settings --------------------------------------------------------------

    @property
    def agent(self) -> str:
        """The agent id on captures: the signed-in user on the team server."""
        if self.identity is not None:
            return self.identity.name
        return str(self.config.get("general.agent")).strip()

    @property
    def agent_name(self) -> str:
        """The agent's name as read to customers in scripts ("" until given: the
        agent id is no name, and a script needing one is not shown without it)."""
        return str(self.config.get("general.agent_name")).strip()

    @property
    def role(self) -> str:
        """agent, lead or admin: the signed-in user's on the team server, else
        ``general.role``."""
        if self.identity is not None:
            return str(self.identity.role)
        return str(self.config.get("general.role"))

    @property
    def can_review(self) -> bool:
        return self.role in ("lead", "admin")

    def viewer(self) -> Viewer:
        """Who reads and tags at this desk: the agent id, else the login name."""
        # Loaded with the backend already; imported here to keep start-up lean.
        from consentdesk.domain.review import Role, Viewer

        if self.identity is not None:
            return self.identity
        name = self.agent
        if not name:
            import getpass

            try:
                name = getpass.getuser()
            except OSError:  # no login name known to the system
                name = "unknown user"
        return Viewer(name, Role(self.role))

    @property
    def company(self) -> str:
        return str(self.config.get("general.company"))

    @property
    def region(self) -> str:
        return str(self.config.get("general.region"))

    @property
    def jurisdiction(self) -> Jurisdiction:
        return Jurisdiction(self.config.get("general.jurisdiction"))

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.config.get("general.languages"))

    @property
    def fallback_languages(self) -> tuple[str, ...]:
        return tuple(self.config.get("general.fallback_languages"))

    @property
    def calendar(self) -> Calendar:
        """The controller's calendar (``general.timezone``, ``general.region``)."""
        return controller_calendar(self.config)

    def today(self) -> date:
        """Today in the controller's time zone: the day request clocks are read on."""
        return self.calendar.day_of(utcnow())

    def apply_settings(
        self,
        values: Sequence[tuple[str, Any]],
        *,
        on_saved: Callable[[], None] | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> Task:
        """Change user settings now and write the file on the worker.

        Raises ConfigError (or LockedSetting) for a bad or locked value before
        anything is changed.
        """
        trial = copy.deepcopy(self.config)
        for key, value in values:
            trial.set(key, value)
        self.config.user = dict(trial.user)
        self.settings_changed.emit()
        snapshot = copy.deepcopy(self.config)
        return self.runner.run(
            snapshot.save,
            on_success=lambda _result: on_saved() if on_saved is not None else None,
            on_failure=on_failure,
            label="save settings",
        )
