"""A broken settings file: the sidebar shows a readable error window, not nothing.

The offscreen test checks the window's words; the Xvfb test starts the real
``consentdesk`` the way the menu does, on a real X server, finds the window,
takes the screenshot kept in packaging/screenshots/config-error.png and closes it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot
from test_sidebar_xvfb import xvfb  # noqa: F401 (the private X server fixture)

from consentdesk.gui.app import create_app
from consentdesk.gui.config_error import HEADLINE, TITLE, config_error_box

ROOT = Path(__file__).resolve().parents[2]
DOCS_SHOT = ROOT / "packaging" / "screenshots" / "config-error.png"
# Grabs one X window by id into a PNG, from a separate process on the same display.
GRAB = """
import sys
from PySide6.QtGui import QGuiApplication
app = QGuiApplication([])
image = app.primaryScreen().grabWindow(int(sys.argv[1], 0))
sys.exit(0 if not image.isNull() and image.save(sys.argv[2]) else 1)
"""
BROKEN = '# IT settings\n[general]\ncompany = "Stadtwerke Nord"\nregion = "Germany"\n'


def test_error_window_names_file_line_and_key(qtbot: QtBot) -> None:
    create_app()
    box = config_error_box("/etc/xdg/consentdesk/config.toml:4: general.region must be <x>")
    qtbot.addWidget(box)
    assert box.windowTitle() == TITLE
    assert box.icon() == QMessageBox.Icon.Critical
    assert HEADLINE in box.text()
    info = box.informativeText()
    assert "/etc/xdg/consentdesk/config.toml:4: general.region must be &lt;x&gt;" in info
    assert "consentdesk config check" in info
    assert box.standardButtons() == QMessageBox.StandardButton.Close


def _window_id(env: dict[str, str], proc: subprocess.Popen[str], deadline_s: float) -> str:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        found = subprocess.run(
            ["xdotool", "search", "--onlyvisible", "--name", TITLE],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        if found:
            return found[0]
        assert proc.poll() is None, f"consentdesk exited {proc.returncode}: {proc.stderr}"
        time.sleep(0.2)
    pytest.fail(f"no '{TITLE}' window within {deadline_s:.0f} s")


@pytest.mark.xvfb
def test_menu_start_with_broken_site_config_shows_the_window(
    xvfb: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    if shutil.which("xdotool") is None:
        pytest.fail("xdotool is needed to find the window (Debian: xdotool)")
    site = tmp_path / "site.toml"
    site.write_text(BROKEN, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(
        DISPLAY=xvfb,
        QT_QPA_PLATFORM="xcb",
        CONSENTDESK_SITE_CONFIG=str(site),
        CONSENTDESK_DATA_DIR=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    # What the menu entry runs: Exec=consentdesk open-uri %u, with no URL.
    proc = subprocess.Popen(
        [sys.executable, "-m", "consentdesk", "open-uri"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        window = _window_id(env, proc, 30)
        shot = tmp_path / "config-error.png"
        grab = subprocess.run(
            [sys.executable, "-c", GRAB, window, str(shot)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert grab.returncode == 0, grab.stderr
        image = QImage(str(shot))
        assert image.width() > 300 and image.height() > 100
        colours = {image.pixel(x, y) for x in range(0, image.width(), 4) for y in range(0, 80, 4)}
        assert len(colours) > 5, "the grab shows the painted window, not a blank"
        DOCS_SHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS_SHOT)
        subprocess.run(
            ["xdotool", "windowfocus", "--sync", window, "key", "Escape"],
            env=env,
            check=False,
            timeout=30,
        )
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 2
    assert stderr.strip().splitlines() == [
        f"consentdesk: {site}:4: general.region must be a two-letter region code such as DE or US"
    ]
