"""A backend that takes 2 s per call: the window stays live, shows it is busy, and a
failure appears inline with Retry — never a modal dialog, never a frozen window."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox
from pytestqt.qtbot import QtBot
from sidebar_support import NUMBER, click, ledger, open_caller_by_typing, tick_read_aloud

from consentdesk.domain.backend import Backend, Unavailable
from consentdesk.domain.model import Channel, ConsentState
from consentdesk.gui.flows import ConsentFlow
from consentdesk.gui.main import Sidebar
from consentdesk.gui.widgets import Banner
from consentdesk.stores.ledger import open_ledger

DELAY = 2.0
MakeSidebar = Callable[..., Sidebar]


class SlowBackend:
    """Wraps the real ledger; every call sleeps 2 s first (on the worker thread).

    ``fail`` names methods whose next call raises Unavailable once.
    """

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.fail: set[str] = set()
        self.threads: set[int] = set()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not callable(target) or name == "close":
            return target

        def slow(*args: Any, **kwargs: Any) -> Any:
            self.threads.add(threading.get_ident())
            time.sleep(DELAY)
            if name in self.fail:
                self.fail.discard(name)
                raise Unavailable("the ledger server did not answer")
            return target(*args, **kwargs)

        return slow


class Ticker:
    """Counts event-loop turns: a frozen GUI thread would count none."""

    def __init__(self) -> None:
        self.ticks = 0
        self.timer = QTimer()
        self.timer.setInterval(50)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        self.ticks += 1


def no_modal_dialog() -> bool:
    modal = QApplication.activeModalWidget()
    return not isinstance(modal, QDialog | QMessageBox)


def test_slow_load_keeps_the_loop_running_and_failure_retries_inline(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    slow: list[SlowBackend] = []

    def open_slow() -> Backend:
        backend = SlowBackend(open_ledger(data_dir))
        backend.fail.add("status")
        slow.append(backend)
        return backend  # type: ignore[return-value]

    sidebar = make_sidebar(open_backend=open_slow, wait_ready=False)
    panel = sidebar.window.panel
    ticker = Ticker()
    ticker.timer.start()
    sidebar.desk.load()
    sidebar.calls.manual_call(NUMBER)
    # Busy is visible at once while the worker sleeps.
    assert panel.banner.mode == Banner.BUSY
    assert panel.banner.progress.isVisible()
    assert sidebar.runner.busy
    started = ticker.ticks
    qtbot.waitUntil(lambda: panel.banner.mode == Banner.ERROR, timeout=4 * DELAY * 1000)
    # The loop kept turning through ~4 s of backend time (catalogue + failed status).
    assert ticker.ticks - started >= 20
    assert no_modal_dialog()
    assert "the ledger server did not answer" in panel.banner.text.text()
    assert panel.banner.retry.isVisible()
    assert threading.get_ident() not in slow[0].threads, "backend ran on the GUI thread"

    with qtbot.waitSignal(panel.caller_shown, timeout=3 * DELAY * 1000):
        click(qtbot, panel.banner.retry)
        assert panel.banner.mode == Banner.BUSY
    assert panel.banner.mode == Banner.HIDDEN
    assert panel.grid_model.rowCount() > 0
    ticker.timer.stop()


def test_slow_capture_fails_inline_and_retry_records_once(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    backends: list[SlowBackend] = []

    def open_slow() -> Backend:
        backends.append(SlowBackend(open_ledger(data_dir)))
        return backends[-1]  # type: ignore[return-value]

    sidebar = make_sidebar(open_backend=open_slow, wait_ready=False)
    with qtbot.waitSignal(sidebar.desk.ready, timeout=3 * DELAY * 1000):
        sidebar.desk.load()
    open_caller_by_typing(qtbot, sidebar)
    panel = sidebar.window.panel
    index = panel.grid_model.index_for("marketing-offers", Channel.PHONE)
    panel.grid.setCurrentIndex(index)
    click(qtbot, panel.consent_button)
    flow = panel.flow
    assert isinstance(flow, ConsentFlow)
    tick_read_aloud(qtbot, flow)

    backends[0].fail.add("capture")
    ticker = Ticker()
    ticker.timer.start()
    click(qtbot, flow.agreed)
    assert flow.banner.mode == Banner.BUSY and flow.banner.progress.isVisible()
    assert not flow.agreed.isEnabled(), "no double capture while one is in flight"
    flow.cancel()  # Esc while recording does not abandon the record
    assert panel.flow is flow
    qtbot.waitUntil(lambda: flow.banner.mode == Banner.ERROR, timeout=3 * DELAY * 1000)
    assert ticker.ticks >= 10
    assert no_modal_dialog()
    assert flow.banner.text.text().startswith("Not recorded:")
    assert "Recorded" not in panel.banner.text.text()
    with ledger(data_dir) as led:
        assert list(led.history(NUMBER)) == []

    with qtbot.waitSignal(panel.captured, timeout=4 * DELAY * 1000):
        click(qtbot, flow.banner.retry)
    assert panel.banner.text.text().startswith("Recorded")
    with ledger(data_dir) as led:
        history = list(led.history(NUMBER))
    assert [(e.purpose, e.channel, e.state) for e in history] == [
        ("marketing-offers", Channel.PHONE, ConsentState.GIVEN)
    ]
    ticker.timer.stop()
