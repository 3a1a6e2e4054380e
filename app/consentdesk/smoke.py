"""``consentdesk --smoke``: prove an installed build works, headless, in seconds.

Seeds the demo ledger in a throwaway folder, opens the real sidebar window
(offscreen unless ``QT_QPA_PLATFORM`` says otherwise), waits for its first paint
and for the demo caller's consents on screen, then exits 0. Any failure is one
line on stderr and exit 1. Installers, CI and IT use it after deploying a build;
it never touches the user's own ledger.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from consentdesk.platform.context import Context

TIMEOUT_SECONDS = 30


def run_smoke(args: argparse.Namespace, ctx: Context) -> int:
    """CLI handler: the whole smoke start; returns the exit code."""
    started = time.monotonic()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory(prefix="consentdesk-smoke-") as tmp:
        data_dir = Path(tmp)
        from consentdesk.domain.phone import normalize
        from consentdesk.stores.demo import DEMO_CALLER, seed
        from consentdesk.stores.ledger import open_ledger

        ledger = open_ledger(data_dir)
        try:
            seed(ledger, region=ctx.region)
        finally:
            ledger.close()
        caller = normalize(DEMO_CALLER, ctx.region)
        return _show(Context(config=ctx.config, data_dir=data_dir), caller, started)


def _show(ctx: Context, caller: str, started: float) -> int:
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication

    from consentdesk.gui.app import create_app
    from consentdesk.gui.main import build_sidebar

    class Probe(QObject):
        """Tracks the two things a working start shows: a paint and the caller."""

        def __init__(self) -> None:
            super().__init__()
            self.painted_ms: float | None = None
            self.caller_ms: float | None = None
            self.failure = ""

        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if self.painted_ms is None and event.type() == QEvent.Type.Paint:
                self.painted_ms = (time.monotonic() - started) * 1000
                QTimer.singleShot(0, self.check)
            return False

        def shown(self, number: str) -> None:
            if number == caller and self.caller_ms is None:
                self.caller_ms = (time.monotonic() - started) * 1000
                self.check()

        def fail(self, message: str) -> None:
            self.failure = self.failure or message
            QApplication.quit()

        def check(self) -> None:
            if self.painted_ms is not None and self.caller_ms is not None:
                QApplication.quit()

    app = create_app()
    sidebar = build_sidebar(ctx)
    probe = Probe()
    window = sidebar.window
    window.installEventFilter(probe)
    window.panel.caller_shown.connect(probe.shown)
    sidebar.desk.ready.connect(lambda: sidebar.calls.manual_call(caller))
    sidebar.desk.load_failed.connect(lambda message: probe.fail(f"loading failed: {message}"))
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(
        lambda: probe.fail(
            f"timed out after {TIMEOUT_SECONDS} s "
            f"(painted: {probe.painted_ms is not None}, "
            f"caller shown: {probe.caller_ms is not None})"
        )
    )
    deadline.start(TIMEOUT_SECONDS * 1000)
    try:
        window.show()
        sidebar.desk.load()
        app.exec()
    finally:
        deadline.stop()
        window.removeEventFilter(probe)
        sidebar.shutdown()
    if probe.failure or probe.painted_ms is None or probe.caller_ms is None:
        print(
            f"consentdesk: smoke start failed: {probe.failure or 'window closed early'}",
            file=sys.stderr,
        )
        return 1
    platform = app.platformName()
    print(
        f"smoke ok: sidebar painted after {probe.painted_ms:.0f} ms, demo caller shown after "
        f"{probe.caller_ms:.0f} ms ({platform})"
    )
    return 0
