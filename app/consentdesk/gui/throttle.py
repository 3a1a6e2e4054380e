"""Run a refresh at most so often: at once when idle, then once per interval."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

# About 30 screen updates a second: smooth to the eye, cheap under a flood.
UPDATE_INTERVAL_MS = 33


class Throttle(QObject):
    """Coalesce pokes into calls of *fn*: the first poke after a quiet interval
    runs it immediately; pokes during the interval run it once at its end, so
    the last state is always shown and *fn* runs at most once per interval."""

    def __init__(
        self,
        fn: Callable[[], None],
        interval_ms: int = UPDATE_INTERVAL_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._fn = fn
        self._due = False
        self._cooldown = QTimer(self)
        self._cooldown.setSingleShot(True)
        self._cooldown.setInterval(interval_ms)
        self._cooldown.timeout.connect(self._end_of_interval)
        self.runs = 0

    def poke(self) -> None:
        if self._cooldown.isActive():
            self._due = True
        else:
            self._run()

    def _end_of_interval(self) -> None:
        if self._due:
            self._run()

    def _run(self) -> None:
        self._due = False
        self._cooldown.start()
        self.runs += 1
        self._fn()
