"""The one background helper: work on the worker, answers on the GUI thread by signal."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from consentdesk.domain.backend import Backend, BackendError, Unavailable
from consentdesk.gui.tasks import TaskRunner, describe_error
from consentdesk.stores.ledger import open_ledger


@pytest.fixture
def runner(qapp: QApplication, data_dir: Path) -> Iterator[TaskRunner]:
    opened_on: list[int] = []

    def open_backend() -> Backend:
        opened_on.append(threading.get_ident())
        return open_ledger(data_dir)

    r = TaskRunner(open_backend=open_backend)
    r.opened_on = opened_on  # type: ignore[attr-defined]
    yield r
    r.shutdown()


def test_backend_runs_on_the_worker_and_answers_on_the_gui_thread(
    qtbot: QtBot, runner: TaskRunner
) -> None:
    gui = threading.get_ident()
    seen: dict[str, int] = {}

    def job(backend: Backend) -> int:
        seen["job"] = threading.get_ident()
        return len(backend.catalogue())

    results: list[int] = []

    def done(count: int) -> None:
        seen["callback"] = threading.get_ident()
        results.append(count)

    with qtbot.waitSignal(runner.busy_changed, check_params_cb=lambda busy: not busy):
        task = runner.call(job, on_success=done)
    assert results and results[0] > 0
    assert seen["job"] != gui
    assert seen["callback"] == gui
    assert runner.opened_on == [seen["job"]]  # type: ignore[attr-defined]
    assert task.done and task.ok and task.result == results[0]


def test_jobs_run_in_order_and_the_backend_is_opened_once(qtbot: QtBot, runner: TaskRunner) -> None:
    order: list[int] = []
    for i in range(20):
        runner.call(lambda _b, i=i: i, on_success=order.append)
    qtbot.waitUntil(lambda: len(order) == 20, timeout=5000)
    assert order == list(range(20))
    assert len(runner.opened_on) == 1  # type: ignore[attr-defined]


def test_an_exception_comes_back_as_failed(qtbot: QtBot, runner: TaskRunner) -> None:
    def broken(_backend: Backend) -> None:
        raise Unavailable("the ledger is locked by another program")

    errors: list[BaseException] = []
    with qtbot.waitSignal(runner.busy_changed, check_params_cb=lambda busy: not busy):
        task = runner.call(broken, on_failure=errors.append)
    assert isinstance(errors[0], Unavailable)
    assert task.ok is False and task.error is errors[0]
    assert describe_error(errors[0]) == "the ledger is locked by another program"
    # The runner keeps working after a failure.
    with qtbot.waitSignal(runner.busy_changed, check_params_cb=lambda busy: not busy):
        ok = runner.run(lambda: "still alive")
    assert ok.result == "still alive"


def test_unexpected_errors_get_a_generic_message(qtbot: QtBot, runner: TaskRunner) -> None:
    errors: list[BaseException] = []
    with qtbot.waitSignal(runner.busy_changed, check_params_cb=lambda busy: not busy):
        runner.run(lambda: 1 // 0, on_failure=errors.append)
    assert isinstance(errors[0], ZeroDivisionError)
    assert describe_error(errors[0]) == "Unexpected error (ZeroDivisionError); see the log"


def test_opening_failure_is_reported_and_retried(qtbot: QtBot, qapp: QApplication) -> None:
    attempts: list[int] = []

    def open_backend() -> Backend:
        attempts.append(1)
        raise BackendError("data folder is read-only")

    runner = TaskRunner(open_backend=open_backend)
    try:
        errors: list[BaseException] = []
        for _ in range(2):
            with qtbot.waitSignal(runner.busy_changed, check_params_cb=lambda busy: not busy):
                runner.call(lambda b: b.catalogue(), on_failure=errors.append)
        assert [str(e) for e in errors] == ["data folder is read-only"] * 2
        assert len(attempts) == 2
    finally:
        runner.shutdown()


def test_shutdown_closes_the_backend_on_the_worker(qtbot: QtBot, data_dir: Path) -> None:
    closed_on: list[int] = []

    class Recording:
        def __init__(self) -> None:
            self.inner = open_ledger(data_dir)

        def catalogue(self) -> object:
            return self.inner.catalogue()

        def close(self) -> None:
            closed_on.append(threading.get_ident())
            self.inner.close()

    runner = TaskRunner(open_backend=Recording)  # type: ignore[arg-type]
    with qtbot.waitSignal(runner.busy_changed, check_params_cb=lambda busy: not busy):
        runner.call(lambda b: b.catalogue())
    runner.shutdown()
    assert len(closed_on) == 1 and closed_on[0] != threading.get_ident()
    with pytest.raises(RuntimeError):
        runner.run(lambda: None)
