"""Run the real sidebar on a real X server and save a screenshot of it.

    python sidebar_screenshot.py DATA_DIR CONFIG_FILE OUT.png REPORT.json

Started by test_sidebar_xvfb.py with DISPLAY set and QT_QPA_PLATFORM=xcb. Opens
the demo caller as a manual call (what ``consentdesk sidebar --caller`` does),
selects a consent cell so its history and proof show, grabs the window's area
of the screen and writes a small JSON report of what it saw.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication

from consentdesk.domain.model import Channel
from consentdesk.gui.app import create_app
from consentdesk.gui.main import build_sidebar
from consentdesk.platform.config import Config
from consentdesk.platform.context import Context
from consentdesk.stores.demo import DEMO_CALLER

DEADLINE_MS = 30_000


def main() -> int:
    data_dir, config_file, out, report = (Path(a) for a in sys.argv[1:5])
    app = create_app()
    config = Config.load(user_file=config_file, site_files=[])
    sidebar = build_sidebar(Context(config=config, data_dir=data_dir))
    window, panel = sidebar.window, sidebar.window.panel
    result: dict[str, object] = {"platform": app.platformName()}

    def grab() -> None:
        screen = window.screen() or QGuiApplication.primaryScreen()
        frame = window.frameGeometry()
        shot = screen.grabWindow(0, frame.x(), frame.y(), frame.width(), frame.height())
        result.update(
            saved=shot.save(str(out)),
            window=[frame.x(), frame.y(), frame.width(), frame.height()],
            screen=[screen.availableGeometry().width(), screen.availableGeometry().height()],
            ratio=screen.devicePixelRatio(),
            body_fits=panel.body_scroll.widget().width() <= panel.body_scroll.viewport().width(),
            grid_rows=panel.grid_model.rowCount(),
            history_rows=panel.history_model.rowCount(),
            requests=panel.requests_model.rowCount(),
            name=panel.header.name.text(),
        )
        app.quit()

    def history_shown() -> None:
        if panel.history_model.rowCount() and panel.proof.toPlainText().strip():
            QTimer.singleShot(500, grab)  # let the last layout pass paint
        else:
            QTimer.singleShot(50, history_shown)

    def caller_shown(_number: str) -> None:
        index = panel.grid_model.index_for("marketing-offers", Channel.EMAIL)
        panel.grid.setCurrentIndex(index)
        history_shown()

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
