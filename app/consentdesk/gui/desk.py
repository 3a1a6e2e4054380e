"""What every panel and flow shares: settings, the worker, catalogue and scripts."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from consentdesk.core.config import Config
from consentdesk.core.model import Jurisdiction, Purpose
from consentdesk.gui.tasks import Task, TaskRunner, describe_error

if TYPE_CHECKING:
    from consentdesk.core.backend import Backend
    from consentdesk.core.catalogue import Catalogue
    from consentdesk.core.review import Viewer
    from consentdesk.core.scripts import Script

log = logging.getLogger("consentdesk.gui")


class Desk(QObject):
    """Shared state of one sidebar: config, the task runner and reference data.

    Signals:
        ready(): catalogue and scripts are loaded; captures can start.
        load_failed(str): loading them failed (message for the agent).
        settings_changed(): a setting changed (agent id, languages, ...).
    """

    ready = Signal()
    load_failed = Signal(str)
    settings_changed = Signal()

    def __init__(self, config: Config, runner: TaskRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.config = config
        self.runner = runner
        self.catalogue: Catalogue | None = None
        self.scripts: tuple[Script, ...] = ()

    # --- reference data --------------------------------------------------------

    def load(self) -> Task:
        """Fetch catalogue and scripts on the worker (opens the backend)."""

        def fetch(backend: Backend) -> tuple[Catalogue, tuple[Script, ...]]:
            return backend.catalogue(), tuple(backend.scripts())

        return self.runner.call(
            fetch, on_success=self._loaded, on_failure=self._failed, label="load catalogue"
        )

    @property
    def loaded(self) -> bool:
        return self.catalogue is not None

    def _loaded(self, result: tuple[Catalogue, tuple[Script, ...]]) -> None:
        self.catalogue, self.scripts = result
        self.ready.emit()

    def _failed(self, exc: BaseException) -> None:
        self.load_failed.emit(describe_error(exc))

    def visible_purposes(self) -> tuple[Purpose, ...]:
        """Purposes offered under the desk's jurisdiction, in catalogue order."""
        if self.catalogue is None:
            return ()
        return tuple(p for p in self.catalogue if self.jurisdiction in p.jurisdictions)

    # --- settings --------------------------------------------------------------

    @property
    def agent(self) -> str:
        return str(self.config.get("general.agent")).strip()

    @property
    def agent_name(self) -> str:
        return str(self.config.get("general.agent_name")).strip() or self.agent

    @property
    def role(self) -> str:
        """agent, lead or admin (``general.role``)."""
        return str(self.config.get("general.role"))

    @property
    def can_review(self) -> bool:
        return self.role in ("lead", "admin")

    def viewer(self) -> Viewer:
        """Who reads and tags at this desk: the agent id, else the login name."""
        # Loaded with the backend already; imported here to keep start-up lean.
        from consentdesk.core.review import Role, Viewer

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

    def today(self) -> date:
        return date.today()

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
