"""QApplication set-up: names, Qt messages into logging, system palette, high DPI."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from PySide6.QtCore import (
    QCoreApplication,
    QMessageLogContext,
    Qt,
    QtMsgType,
    qInstallMessageHandler,
)
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from consentdesk import __version__

qt_log = logging.getLogger("consentdesk.qt")

APP_NAME = "Consent Desk"
ORG_NAME = "Consent Desk"
DESKTOP_FILE = "consentdesk"

_LEVELS = {
    QtMsgType.QtDebugMsg: logging.DEBUG,
    QtMsgType.QtInfoMsg: logging.INFO,
    QtMsgType.QtWarningMsg: logging.WARNING,
    QtMsgType.QtCriticalMsg: logging.ERROR,
    QtMsgType.QtFatalMsg: logging.CRITICAL,
}


class DisplayUnavailable(RuntimeError):
    """Qt could not open a window (no display, missing platform libraries)."""


class _QtLogBridge:
    """Routes Qt's messages to the ``consentdesk.qt`` logger.

    Before the QApplication exists it also remembers the messages, so that a
    platform plugin failure (which Qt reports as fatal and then aborts) can be
    turned into one clear line instead of a core dump.
    """

    def __init__(self) -> None:
        self.startup = True
        self.seen: list[str] = []

    def __call__(self, mode: QtMsgType, context: QMessageLogContext, message: str) -> None:
        level = _LEVELS.get(mode, logging.WARNING)
        category = context.category or "qt"
        qt_log.log(level, "%s: %s", category, message)
        if self.startup:
            self.seen.append(message)
        if mode == QtMsgType.QtFatalMsg and self.startup:
            sys.stderr.write(f"consentdesk: {display_problem(self.seen)}\n")
            sys.stderr.flush()
            os._exit(3)  # Qt aborts after a fatal message; leave cleanly instead


def display_problem(messages: Sequence[str]) -> str:
    """One line saying why no window could be opened, from Qt's start-up messages."""
    joined = " ".join(messages).lower()
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if "could not connect to display" in joined or "failed to create wl_display" in joined:
        return (
            "cannot open the sidebar window: no graphical display could be reached "
            "(check DISPLAY / WAYLAND_DISPLAY, or run inside a desktop session)"
        )
    if "could not find the qt platform plugin" in joined:
        return f"cannot open the sidebar window: unknown Qt platform {platform!r} (QT_QPA_PLATFORM)"
    detail = next((m.splitlines()[0] for m in messages if "platform plugin" in m.lower()), "")
    return (
        "cannot open the sidebar window: the Qt platform plugin failed to load"
        + (f" ({detail})" if detail else "")
        + "; on Debian/Ubuntu install libxcb-cursor0 and libxkbcommon-x11-0"
    )


def check_display() -> None:
    """Fail early and clearly on Linux when there is no display at all."""
    if not sys.platform.startswith("linux"):
        return
    if os.environ.get("QT_QPA_PLATFORM"):
        return  # the user chose a platform (offscreen, xcb, wayland, ...)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        raise DisplayUnavailable(
            "cannot open the sidebar window: no graphical display "
            "(neither DISPLAY nor WAYLAND_DISPLAY is set)"
        )


_bridge = _QtLogBridge()


def install_qt_logging() -> object:
    """Send Qt's own messages to ``logging``; returns the previous handler."""
    return qInstallMessageHandler(_bridge)


def create_app(argv: Sequence[str] | None = None) -> QApplication:
    """The QApplication for the sidebar (or the existing one, e.g. under pytest-qt)."""
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        configure(existing)
        return existing
    check_display()
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
    )
    install_qt_logging()
    QCoreApplication.setApplicationName(APP_NAME)
    QCoreApplication.setOrganizationName(ORG_NAME)
    QCoreApplication.setApplicationVersion(__version__)
    QGuiApplication.setDesktopFileName(DESKTOP_FILE)
    app = QApplication(list(argv) if argv is not None else [sys.argv[0]])
    _bridge.startup = False
    _bridge.seen.clear()
    configure(app)
    return app


def configure(app: QApplication) -> None:
    """Names, icon and style; the palette is the system's (light or dark)."""
    from consentdesk.gui.theme import app_icon

    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORG_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setWindowIcon(app_icon())
    # Fusion draws consistently everywhere and honours the system colour scheme
    # (Qt >= 6.5 switches its palette with the desktop's light/dark setting).
    if app.style().name().lower() not in {"fusion", "windows11", "windowsvista", "macos"}:
        app.setStyle("Fusion")
