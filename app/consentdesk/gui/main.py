"""Assemble and run the sidebar: app, worker, desk, call controller, window, telephony."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import shiboken6
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication

from consentdesk.cli.common import Context
from consentdesk.core.backend import Backend
from consentdesk.gui.calls import CallController
from consentdesk.gui.desk import Desk
from consentdesk.gui.flows import Outcome
from consentdesk.gui.tasks import TaskRunner
from consentdesk.gui.window import SettingsPageFactory, SidebarWindow

log = logging.getLogger("consentdesk.gui")

# Set to a file path: the first painted frame's time (time.monotonic()) and the
# peak memory are written there and the sidebar quits — the cold-start check.
STARTUP_PROBE_ENV = "CONSENTDESK_STARTUP_PROBE"


def embedded_backend(ctx: Context) -> Callable[[], Backend]:
    """Opens the embedded ledger in the data folder (called on the worker)."""

    def open_backend() -> Backend:
        from consentdesk.core.ledger import open_ledger

        return open_ledger(ctx.data_dir)

    return open_backend


@dataclass
class Sidebar:
    """One running sidebar and the parts tests and connectors talk to."""

    desk: Desk
    calls: CallController
    window: SidebarWindow
    runner: TaskRunner
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def shutdown(self) -> None:
        """Stop connectors, close the window, finish the worker, then delete the Qt
        objects in a fixed order (leaving them to the interpreter's exit crashes)."""
        if not shiboken6.isValid(self.window):
            return
        for cleanup in reversed(self.cleanups):
            cleanup()
        self.cleanups.clear()
        self.window.close()
        self.runner.shutdown()
        for obj in (self.window, self.calls, self.desk, self.runner):
            shiboken6.delete(obj)


def build_sidebar(
    ctx: Context,
    *,
    open_backend: Callable[[], Backend] | None = None,
    settings_pages: list[SettingsPageFactory] | None = None,
) -> Sidebar:
    """Create the sidebar's objects (needs a QApplication); nothing is opened yet."""
    runner = TaskRunner(open_backend=open_backend or embedded_backend(ctx))
    desk = Desk(ctx.config, runner)
    calls = CallController(clear_after_seconds=int(ctx.config.get("sidebar.clear_after_seconds")))
    window = SidebarWindow(desk, calls, settings_pages=settings_pages)
    return Sidebar(desk=desk, calls=calls, window=window, runner=runner)


class _FirstPaint(QObject):
    """Writes the first paint time of the window for the start-up benchmark."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.done = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if not self.done and event.type() == QEvent.Type.Paint:
            self.done = True
            QTimer.singleShot(0, self._write)
        return False

    def _write(self) -> None:
        painted = time.monotonic()
        peak_kb = _peak_rss_kb()
        with open(self.path, "w", encoding="utf-8") as fh:
            fh.write(f"{painted} {peak_kb}\n")
        QApplication.quit()


def _peak_rss_kb() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def run_sidebar(ctx: Context, args: argparse.Namespace, *, caller: str | None = None) -> int:
    """Open the sidebar (single instance per data folder) and run until it closes."""
    from consentdesk.gui.app import create_app
    from consentdesk.gui.ipc import claim_instance
    from consentdesk.gui.telephony_glue import attach_telephony

    app = create_app()
    server = claim_instance(ctx.data_dir)
    if server is None:
        print("consentdesk: the sidebar is already running; brought it to the front")
        return 0
    sidebar = build_sidebar(ctx)
    telephony = attach_telephony(sidebar.calls, ctx, args, server=server, tasks=sidebar.runner)

    def stop_telephony() -> None:
        telephony.stop()
        shiboken6.delete(telephony)
        shiboken6.delete(server)

    sidebar.cleanups.append(stop_telephony)
    server.show_requested.connect(sidebar.window.bring_forward)

    def note_captures(outcome: Outcome) -> None:
        for event in outcome.events:
            telephony.note_capture(event.call_id, event.event_id)

    sidebar.window.panel.captured.connect(note_captures)
    probe = os.environ.get(STARTUP_PROBE_ENV)
    if probe:
        watcher = _FirstPaint(probe)
        sidebar.window.installEventFilter(watcher)
        sidebar.cleanups.append(lambda: shiboken6.delete(watcher))
    sidebar.window.show()
    sidebar.desk.load()
    if caller is not None:
        sidebar.calls.manual_call(caller)
    try:
        return int(app.exec())
    finally:
        sidebar.shutdown()
        sys.stdout.flush()
