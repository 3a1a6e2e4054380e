"""Run the real sidebar on a real X server with a consent form open; save a screenshot.

    python sidebar_form_screenshot.py DATA_DIR CONFIG_FILE OUT.png REPORT.json

Started by test_sidebar_xvfb.py (DISPLAY set, QT_QPA_PLATFORM=xcb, a 1366×768
screen). Opens the demo caller as a manual call, asks consent for one cell as the
agent would (the cell, then "Ask consent"), waits until the script has been on
screen, grabs the window's area of the screen and reports what fitted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QPushButton, QWidget

from consentdesk.domain.model import Channel
from consentdesk.gui.app import create_app
from consentdesk.gui.flows import ConsentFlow
from consentdesk.gui.flows.layout import shown_rect
from consentdesk.gui.main import build_sidebar
from consentdesk.platform.config import Config
from consentdesk.platform.context import Context
from consentdesk.stores.demo import DEMO_CALLER

DEADLINE_MS = 30_000


def wholly_shown(widget: QWidget) -> bool:
    return widget.isVisible() and shown_rect(widget) == widget.rect()


def main() -> int:
    data_dir, config_file, out, report = (Path(a) for a in sys.argv[1:5])
    app = create_app()
    config = Config.load(user_file=config_file, site_files=[])
    sidebar = build_sidebar(Context(config=config, data_dir=data_dir))
    window, panel = sidebar.window, sidebar.window.panel
    result: dict[str, object] = {"platform": app.platformName()}

    def grab(flow: ConsentFlow) -> None:
        screen = window.screen() or QGuiApplication.primaryScreen()
        frame = window.frameGeometry()
        shot = screen.grabWindow(0, frame.x(), frame.y(), frame.width(), frame.height())
        answers = [b for b in flow.findChildren(QPushButton) if b.parent() is flow]
        result.update(
            saved=shot.save(str(out)),
            window=[frame.x(), frame.y(), frame.width(), frame.height()],
            screen=[screen.geometry().width(), screen.geometry().height()],
            script=flow.script_view.rendered.script.id if flow.script_view.rendered else None,
            seen_all=flow.script_view.seen_all,
            script_scrolls=flow.script_view.scroll.verticalScrollBar().maximum() > 0,
            tick_shown=wholly_shown(flow.read_aloud) and flow.read_aloud.isEnabled(),
            answers_shown=bool(answers) and all(wholly_shown(b) for b in answers),
        )
        app.quit()

    def script_seen(flow: ConsentFlow) -> None:
        if flow.script_view.seen_all:
            QTimer.singleShot(300, lambda: grab(flow))  # let the last layout pass paint
        else:
            QTimer.singleShot(50, lambda: script_seen(flow))

    def caller_shown(_number: str) -> None:
        if panel.flow is not None:
            return
        index = panel.grid_model.index_for("marketing-offers", Channel.EMAIL)
        panel.grid.setCurrentIndex(index)
        panel.consent_button.click()
        flow = panel.flow
        if isinstance(flow, ConsentFlow):
            script_seen(flow)

    panel.caller_shown.connect(caller_shown)
    QTimer.singleShot(DEADLINE_MS, app.quit)
    window.show()
    sidebar.desk.load()
    sidebar.calls.manual_call(DEMO_CALLER)
    app.exec()
    sidebar.shutdown()
    report.write_text(json.dumps(result), encoding="utf-8")
    return 0 if result.get("saved") else 1


if __name__ == "__main__":
    sys.exit(main())
