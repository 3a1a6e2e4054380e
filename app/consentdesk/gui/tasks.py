"""The one way the GUI does slow work: a task runs on the worker, its result comes back by signal.

Everything that touches the backend, the disk or the network goes through a
:class:`TaskRunner`. The runner owns one worker thread and, lazily, the backend:
the backend is opened on the worker, used only there (one task at a time, in
submission order) and closed there, which is what the Backend protocol asks
for. Results and exceptions are delivered on the GUI thread through a queued
signal, so callbacks may touch widgets freely.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import shiboken6
from PySide6.QtCore import QObject, QThread, Signal, Slot

from consentdesk.domain.model import DomainError

if TYPE_CHECKING:
    from consentdesk.domain.backend import Backend

log = logging.getLogger("consentdesk.gui.tasks")


def expected_errors() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is written for people; anything else is a bug and
    is shown with a generic message while the log keeps the traceback."""
    # Imported here: the backend module (and the script machinery it names) is
    # not needed to paint the first window.
    from consentdesk.domain.backend import BackendError

    return (BackendError, DomainError, OSError)


def describe_error(exc: BaseException) -> str:
    """A one-line message for the agent (no traceback, nothing personal added)."""
    if isinstance(exc, expected_errors()):
        text = str(exc).strip() or type(exc).__name__
        return text.splitlines()[0]
    return f"Unexpected error ({type(exc).__name__}); see the log"


@dataclass(frozen=True, slots=True)
class _Job:
    fn: Callable[..., Any]
    needs_backend: bool
    label: str


class Task(QObject):
    """Handle of one submitted job; its signals fire once, on the GUI thread.

    Signals:
        succeeded(object): the job's return value.
        failed(object): the exception the job raised.
        finished(): after either of the above.
    """

    succeeded = Signal(object)
    failed = Signal(object)
    finished = Signal()

    def __init__(self, task_id: int, label: str) -> None:
        super().__init__()
        self.task_id = task_id
        self.label = label
        self.done = False
        self.ok: bool | None = None
        self.result: Any = None
        self.error: BaseException | None = None


class _Worker(QObject):
    """Lives on the worker thread; owns the backend once opened."""

    done = Signal(int, bool, object)
    closed = Signal()

    def __init__(self, open_backend: Callable[[], Backend] | None) -> None:
        super().__init__()
        self._open_backend = open_backend
        self._backend: Backend | None = None

    @Slot(int, object)
    def run(self, task_id: int, job: _Job) -> None:
        try:
            result = job.fn(self._ensure_backend()) if job.needs_backend else job.fn()
        except Exception as exc:
            if isinstance(exc, expected_errors()):
                log.info("task %r failed: %s", job.label, type(exc).__name__)
            else:
                log.exception("task %r raised unexpectedly", job.label)
            self.done.emit(task_id, False, exc)
        else:
            self.done.emit(task_id, True, result)

    def _ensure_backend(self) -> Backend:
        if self._backend is None:
            if self._open_backend is None:
                from consentdesk.domain.backend import BackendError

                raise BackendError("no backend is configured")
            self._backend = self._open_backend()
        return self._backend

    def drop_backend(self) -> None:
        """Close the open backend (on the worker); the next backend job opens it afresh."""
        backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()

    @Slot(QThread)
    def close(self, home: QThread) -> None:
        backend, self._backend = self._backend, None
        if backend is not None:
            try:
                backend.close()
            except Exception:
                log.exception("closing the backend failed")
        # Hand this object back to the GUI thread before the worker thread ends,
        # so it is never deleted while it belongs to a finished thread.
        self.moveToThread(home)
        self.closed.emit()


class TaskRunner(QObject):
    """One worker thread that runs jobs in order and reports back by signal.

    Signals:
        busy_changed(bool): True while any job is queued or running.
    """

    busy_changed = Signal(bool)
    _submit = Signal(int, object)
    _close = Signal(QThread)

    def __init__(
        self,
        *,
        open_backend: Callable[[], Backend] | None = None,
        name: str = "consentdesk-worker",
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._pending: dict[int, Task] = {}
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._worker = _Worker(open_backend)
        self._worker.moveToThread(self._thread)
        # Queued: the worker lives on the worker thread, the runner on the GUI thread.
        self._submit.connect(self._worker.run)
        self._close.connect(self._worker.close)
        self._worker.done.connect(self._on_done)
        self._thread.start()
        self._running = True

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def run(
        self,
        fn: Callable[[], Any],
        *,
        on_success: Callable[[Any], None] | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
        label: str = "task",
    ) -> Task:
        """Run ``fn()`` on the worker (for disk work that needs no backend)."""
        return self._enqueue(_Job(fn, False, label), on_success, on_failure)

    def call(
        self,
        fn: Callable[[Backend], Any],
        *,
        on_success: Callable[[Any], None] | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
        label: str = "backend",
    ) -> Task:
        """Run ``fn(backend)`` on the worker, opening the backend first if needed."""
        return self._enqueue(_Job(fn, True, label), on_success, on_failure)

    def reopen_backend(
        self,
        *,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> Task:
        """Close the backend once the jobs queued so far are done; the next
        :meth:`call` opens it again (after signing in or out of the team server)."""
        return self._enqueue(
            _Job(self._worker.drop_backend, False, "reopen backend"), None, on_failure
        )

    def _enqueue(
        self,
        job: _Job,
        on_success: Callable[[Any], None] | None,
        on_failure: Callable[[BaseException], None] | None,
    ) -> Task:
        if not self._running:
            raise RuntimeError("the task runner has been shut down")
        task = Task(next(self._ids), job.label)
        if on_success is not None:
            task.succeeded.connect(on_success)
        if on_failure is not None:
            task.failed.connect(on_failure)
        was_busy = self.busy
        self._pending[task.task_id] = task
        if not was_busy:
            self.busy_changed.emit(True)
        self._submit.emit(task.task_id, job)
        return task

    @Slot(int, bool, object)
    def _on_done(self, task_id: int, ok: bool, payload: object) -> None:
        task = self._pending.pop(task_id, None)
        if task is None:  # results after shutdown are dropped
            return
        task.done, task.ok = True, ok
        try:
            if ok:
                task.result = payload
                task.succeeded.emit(payload)
            else:
                assert isinstance(payload, BaseException)
                task.error = payload
                task.failed.emit(payload)
            task.finished.emit()
        finally:
            if not self._pending:
                self.busy_changed.emit(False)

    def shutdown(self, *, timeout_ms: int = 10_000) -> None:
        """Finish queued jobs, close the backend on the worker and stop the thread."""
        if not self._running:
            return
        self._running = False
        self._close.emit(self.thread())
        self._thread.quit()
        if not self._thread.wait(timeout_ms):
            # A job is stuck (e.g. a slow network); destroying a running QThread
            # would abort the process, so wait it out and say why we are slow.
            log.warning("worker still busy after %d ms; waiting for it to finish", timeout_ms)
            self._thread.wait()
        self._pending.clear()
        # Delete now, in order, rather than leave it to the interpreter's exit.
        shiboken6.delete(self._worker)
        shiboken6.delete(self._thread)
