"""State colours, labels and icons: every state has an icon, a word and a colour.

Icons are drawn in code (crisp at any scale, no file reads on the GUI thread).
Colours come in a light and a dark variant picked from the current palette so
the sidebar follows the system scheme.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from functools import cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QApplication

from consentdesk.domain.model import ConsentState


class Glyph(enum.Enum):
    CHECK = "check"
    CROSS = "cross"
    UNDO = "undo"
    CLOCK = "clock"
    QUESTION = "question"
    DASH = "dash"
    WARNING = "warning"
    DOC = "doc"
    PHONE = "phone"
    SHIELD = "shield"
    INFO = "info"


class Tool(enum.Enum):
    """Line icons for the window's tool buttons (drawn in the palette's text colour)."""

    PIN = "pin"
    GEAR = "gear"
    COLLAPSE_RIGHT = "collapse-right"
    COLLAPSE_LEFT = "collapse-left"


@dataclass(frozen=True, slots=True)
class Look:
    """How one state is shown: word, glyph and colour (light / dark scheme)."""

    label: str
    glyph: Glyph
    light: str
    dark: str

    def color(self) -> QColor:
        return QColor(self.dark if is_dark() else self.light)

    def tint(self) -> QColor:
        """A faint background of the state colour that keeps text readable."""
        c = self.color()
        c.setAlpha(60 if is_dark() else 38)
        return c

    def icon(self) -> QIcon:
        return glyph_icon(self.glyph, self.color().name())


STATE_LOOKS: dict[ConsentState, Look] = {
    ConsentState.GIVEN: Look("Given", Glyph.CHECK, "#1e7b34", "#5cc878"),
    ConsentState.REFUSED: Look("Refused", Glyph.CROSS, "#b3261e", "#f2837b"),
    ConsentState.WITHDRAWN: Look("Withdrawn", Glyph.UNDO, "#a04a00", "#f0a35e"),
    ConsentState.EXPIRED: Look("Expired", Glyph.CLOCK, "#6b5b00", "#d9c65a"),
    ConsentState.UNKNOWN: Look("Not asked", Glyph.QUESTION, "#5f6368", "#a8adb3"),
    ConsentState.VOID: Look("Void", Glyph.DASH, "#5f6368", "#a8adb3"),
    ConsentState.OPTED_OUT: Look("Opted out", Glyph.CROSS, "#a04a00", "#f0a35e"),
}

OVERDUE = Look("Overdue", Glyph.WARNING, "#b3261e", "#f2837b")
DUE_SOON = Look("Due soon", Glyph.CLOCK, "#9a5b00", "#f0b35e")
ON_TRACK = Look("On track", Glyph.DOC, "#1f5fa8", "#8ab4f8")
CLOSED = Look("Closed", Glyph.CHECK, "#5f6368", "#a8adb3")
VERIFIED = Look("Verified", Glyph.SHIELD, "#1e7b34", "#5cc878")
UNVERIFIED = Look("Not verified", Glyph.SHIELD, "#9a5b00", "#f0b35e")
SUCCESS = Look("Recorded", Glyph.CHECK, "#1e7b34", "#5cc878")
FAILURE = Look("Failed", Glyph.WARNING, "#b3261e", "#f2837b")
NOTICE = Look("Note", Glyph.INFO, "#1f5fa8", "#8ab4f8")
LINK_DOWN = Look("Softphone link down", Glyph.PHONE, "#b3261e", "#f2837b")
LINK_UP = Look("Softphone connected", Glyph.PHONE, "#1e7b34", "#5cc878")


def is_dark() -> bool:
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return False
    window = app.palette().color(QPalette.ColorRole.Window)
    return window.lightness() < 128


_BASE = 64  # drawn at 64 px; QIcon scales down cleanly


def _glyph_path(glyph: Glyph) -> QPainterPath:
    p = QPainterPath()
    if glyph is Glyph.CHECK:
        p.moveTo(19, 33)
        p.lineTo(28, 42)
        p.lineTo(45, 23)
    elif glyph is Glyph.CROSS:
        p.moveTo(22, 22)
        p.lineTo(42, 42)
        p.moveTo(42, 22)
        p.lineTo(22, 42)
    elif glyph is Glyph.UNDO:
        p.moveTo(24, 20)
        p.lineTo(17, 27)
        p.lineTo(24, 34)
        p.moveTo(17, 27)
        p.cubicTo(QPointF(38, 27), QPointF(47, 30), QPointF(45, 39))
        p.cubicTo(QPointF(44, 45), QPointF(38, 46), QPointF(30, 46))
    elif glyph is Glyph.CLOCK:
        p.addEllipse(QRectF(17, 17, 30, 30))
        p.moveTo(32, 23)
        p.lineTo(32, 33)
        p.lineTo(39, 37)
    elif glyph is Glyph.QUESTION:
        p.moveTo(24, 25)
        p.cubicTo(QPointF(24, 15), QPointF(41, 15), QPointF(40, 25))
        p.cubicTo(QPointF(40, 31), QPointF(32, 31), QPointF(32, 38))
        p.moveTo(32, 45)
        p.lineTo(32, 46)
    elif glyph is Glyph.DASH:
        p.moveTo(20, 32)
        p.lineTo(44, 32)
    elif glyph is Glyph.WARNING:
        p.moveTo(32, 18)
        p.lineTo(32, 36)
        p.moveTo(32, 44)
        p.lineTo(32, 45)
    elif glyph is Glyph.DOC:
        p.moveTo(23, 18)
        p.lineTo(36, 18)
        p.lineTo(42, 24)
        p.lineTo(42, 46)
        p.lineTo(23, 46)
        p.closeSubpath()
        p.moveTo(28, 32)
        p.lineTo(37, 32)
        p.moveTo(28, 39)
        p.lineTo(37, 39)
    elif glyph is Glyph.PHONE:
        p.moveTo(22, 18)
        p.lineTo(27, 18)
        p.lineTo(30, 26)
        p.lineTo(26, 29)
        p.cubicTo(QPointF(29, 36), QPointF(31, 38), QPointF(36, 40))
        p.lineTo(39, 36)
        p.lineTo(46, 39)
        p.lineTo(46, 44)
        p.cubicTo(QPointF(30, 47), QPointF(17, 33), QPointF(22, 18))
    elif glyph is Glyph.SHIELD:
        p.moveTo(32, 16)
        p.lineTo(45, 21)
        p.cubicTo(QPointF(45, 35), QPointF(40, 43), QPointF(32, 48))
        p.cubicTo(QPointF(24, 43), QPointF(19, 35), QPointF(19, 21))
        p.closeSubpath()
    elif glyph is Glyph.INFO:
        p.moveTo(32, 29)
        p.lineTo(32, 45)
        p.moveTo(32, 20)
        p.lineTo(32, 21)
    return p


@cache
def glyph_icon(glyph: Glyph, color: str) -> QIcon:
    """A filled disc of *color* with a white glyph; readable on light and dark."""
    pm = QPixmap(_BASE, _BASE)
    pm.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pm)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(color))
    if glyph is Glyph.WARNING:
        tri = QPainterPath()
        tri.moveTo(32, 4)
        tri.lineTo(61, 58)
        tri.lineTo(3, 58)
        tri.closeSubpath()
        painter.drawPath(tri)
    else:
        painter.drawEllipse(QRectF(2, 2, 60, 60))
    pen = QPen(QColor("white"), 6)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawPath(_glyph_path(glyph))
    painter.end()
    return QIcon(pm)


def _tool_path(tool: Tool) -> QPainterPath:
    p = QPainterPath()
    if tool is Tool.PIN:
        p.moveTo(24, 10)
        p.lineTo(40, 10)
        p.moveTo(27, 10)
        p.lineTo(26, 30)
        p.moveTo(37, 10)
        p.lineTo(38, 30)
        p.moveTo(18, 32)
        p.lineTo(46, 32)
        p.moveTo(32, 32)
        p.lineTo(32, 54)
    elif tool is Tool.GEAR:
        p.addEllipse(QRectF(22, 22, 20, 20))
        for k in range(8):
            angle = k * 45
            inner = QPointF(32, 32) + _polar(angle, 14)
            outer = QPointF(32, 32) + _polar(angle, 22)
            p.moveTo(inner)
            p.lineTo(outer)
    elif tool is Tool.COLLAPSE_RIGHT:
        p.moveTo(22, 14)
        p.lineTo(40, 32)
        p.lineTo(22, 50)
    elif tool is Tool.COLLAPSE_LEFT:
        p.moveTo(42, 14)
        p.lineTo(24, 32)
        p.lineTo(42, 50)
    return p


def _polar(degrees: float, radius: float) -> QPointF:
    rad = math.radians(degrees)
    return QPointF(radius * math.cos(rad), radius * math.sin(rad))


def tool_icon(tool: Tool) -> QIcon:
    """A line icon in the current palette's text colour."""
    app = QApplication.instance()
    color = (
        app.palette().color(QPalette.ColorRole.WindowText).name()
        if isinstance(app, QApplication)
        else "#202124"
    )
    return _tool_icon(tool, color)


@cache
def _tool_icon(tool: Tool, color: str) -> QIcon:
    pm = QPixmap(_BASE, _BASE)
    pm.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pm)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    pen = QPen(QColor(color), 5)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    painter.drawPath(_tool_path(tool))
    painter.end()
    return QIcon(pm)


@cache
def app_icon() -> QIcon:
    """The window icon: a speech bubble with a check mark."""
    pm = QPixmap(_BASE, _BASE)
    pm.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pm)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor("#1f5fa8"))
    bubble = QPainterPath()
    bubble.addRoundedRect(QRectF(4, 6, 56, 42), 12, 12)
    bubble.moveTo(16, 46)
    bubble.lineTo(14, 60)
    bubble.lineTo(30, 46)
    painter.drawPath(bubble.simplified())
    pen = QPen(QColor("white"), 7)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    check = QPainterPath()
    check.moveTo(19, 27)
    check.lineTo(28, 36)
    check.lineTo(45, 18)
    painter.drawPath(check)
    painter.end()
    return QIcon(pm)
