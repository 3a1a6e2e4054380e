"""Script first: how a flow shares its height between the choices and the script,
and shortcuts that never act on a control the agent cannot see."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, QSize
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QAbstractButton, QLabel, QScrollArea, QWidget


class FlowColumn(QWidget):
    """The choices (a scroll area) above the script region.

    The script region gets all the height it needs to show the whole script with
    its read-aloud tick; the choices keep at least two lines (they scroll) and take
    what is left. Only on a screen too small for that does the script scroll.
    """

    def __init__(self, options: QScrollArea, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.options = options
        options.setParent(self)
        self.script: QWidget | None = None
        self._needed: Callable[[int], int] | None = None

    def set_script(self, region: QWidget | None, needed: Callable[[int], int] | None) -> None:
        """Place *region* under the choices; *needed(width)* is its full height."""
        if self.script is not None and region is None:
            self.script.hide()
        self.script, self._needed = region, needed
        if region is not None:
            region.setParent(self)
            region.show()
        self.arrange()

    @property
    def options_minimum(self) -> int:
        content = self.options.widget()
        wanted = content.sizeHint().height() if content is not None else 0
        return min(wanted, self.fontMetrics().lineSpacing() * 2 + 8)

    def arrange(self) -> None:
        w, h = self.width(), self.height()
        if self.script is None or self._needed is None:
            self.options.setGeometry(0, 0, w, h)
            return
        need = self._needed(w)
        script_h = max(0, min(need, h - self.options_minimum))
        content = self.options.widget()
        wanted = content.sizeHint().height() if content is not None else 0
        options_h = min(h - script_h, max(wanted, self.options_minimum))
        self.options.setGeometry(0, 0, w, options_h)
        self.script.setGeometry(0, options_h, w, script_h)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.arrange()

    def sizeHint(self) -> QSize:
        return QSize(300, 300)

    def minimumSizeHint(self) -> QSize:
        return QSize(120, 60)


class ShortcutGuard(QObject):
    """Swallows a mnemonic (Alt+letter) aimed at a control that is not on screen
    (scrolled away, clipped, hidden) — or, for a label, whose buddy is not."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.Shortcut or not isinstance(watched, QWidget):
            return False
        target = watched
        if isinstance(watched, QLabel) and watched.buddy() is not None:
            target = watched.buddy()
        return not on_screen(target)


def on_screen(widget: QWidget) -> bool:
    """Visible, enabled and not clipped away entirely by a scroll area or parent."""
    return widget.isEnabled() and not shown_rect(widget).isEmpty()


def shown_rect(widget: QWidget) -> QRect:
    """The part of *widget* (in its own coordinates) on screen now: inside every
    parent up to its window, the window shown and not minimised. (Computed, since
    QWidget.visibleRegion() is empty on some platforms.)"""
    window = widget.window()
    if not widget.isVisible() or window.isMinimized():
        return QRect()
    handle = window.windowHandle()
    if handle is None or not handle.isExposed():
        return QRect()
    rect = widget.rect()
    child: QWidget = widget
    parent = widget.parentWidget()
    while parent is not None and not child.isWindow():
        rect = rect.translated(child.pos()).intersected(parent.rect())
        child, parent = parent, parent.parentWidget()
    origin = widget.mapTo(child, QPoint(0, 0))
    return rect.translated(-origin)


def guard_shortcuts(root: QWidget, guard: ShortcutGuard) -> None:
    """Install *guard* on every button and buddy label under *root*."""
    for w in root.findChildren(QAbstractButton):
        w.installEventFilter(guard)
    for label in root.findChildren(QLabel):
        if label.buddy() is not None:
            label.installEventFilter(guard)
