"""The window a desk shows when its settings are broken, instead of nothing.

A sidebar started from the menu or at login has no terminal for the one-line
error, so the same line goes into a window the agent can read (and copy) and
pass on to IT. Nothing is recorded or lost: the sidebar never opened.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

log = logging.getLogger("consentdesk.gui")

TITLE = "Consent Desk cannot start"
HEADLINE = "Consent Desk cannot start: a settings file has a mistake."
ADVICE = (
    "Please pass this message to your IT support. They can list every mistake with "
    "<code>consentdesk config check</code>. Nothing was recorded or lost."
)


def config_error_box(message: str, parent: QWidget | None = None) -> QMessageBox:
    """The error window for *message* (``FILE:LINE: key problem``)."""
    box = QMessageBox(parent)
    box.setObjectName("config-error")
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle(TITLE)
    box.setText(f"<b>{HEADLINE}</b>")
    box.setInformativeText(f"<p><tt>{_escape(message)}</tt></p><p>{ADVICE}</p>")
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.setStandardButtons(QMessageBox.StandardButton.Close)
    return box


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def show_startup_error(message: str) -> None:
    """Show *message* in a window and wait until it is closed; quiet if no window can open."""
    from consentdesk.gui.app import DisplayUnavailable, create_app

    try:
        create_app()
    except DisplayUnavailable:
        return  # the one-line error on stderr is all there is without a display
    log.error("settings error shown to the agent")
    box = config_error_box(message)
    box.activateWindow()
    box.exec()
