"""Small building blocks: inline status banner, section titles, state chips."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QFont, QKeyEvent, QResizeEvent, QTextOption
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStyle,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from consentdesk.gui import theme


def scaled_font(widget: QWidget, factor: float, *, bold: bool = False) -> QFont:
    """The widget's font scaled by *factor* (keeps the user's / screen's base size)."""
    font = QFont(widget.font())
    size = font.pointSizeF()
    if size > 0:
        font.setPointSizeF(size * factor)
    font.setBold(bold)
    return font


def section_title(text: str, parent: QWidget | None = None) -> QLabel:
    label = QLabel(text, parent)
    label.setFont(scaled_font(label, 1.0, bold=True))
    label.setAccessibleName(text)
    return label


def icon_label(look: theme.Look, size: int = 18) -> QLabel:
    label = QLabel()
    label.setPixmap(look.icon().pixmap(QSize(size, size)))
    label.setFixedSize(size, size)
    label.setAccessibleName(look.label)
    return label


class StateChip(QWidget):
    """Icon + word in the state colour (never colour alone)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self._icon = QLabel()
        self._icon.setFixedSize(18, 18)
        self._text = QLabel()
        self._text.setWordWrap(True)
        self._text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self._icon, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self._text, 1)

    def set_state(self, look: theme.Look, text: str) -> None:
        self._icon.setPixmap(look.icon().pixmap(QSize(18, 18)))
        self._text.setText(text)
        self._text.setStyleSheet(f"color: {look.color().name()};")
        self.setAccessibleName(text)

    def text(self) -> str:
        return self._text.text()


class Banner(QFrame):
    """Inline status: busy, failed (with Retry), recorded, or a note.

    Never a modal dialog: the agent is on the phone and must keep control.

    Signals:
        retry_requested(): the agent pressed Retry.
    """

    retry_requested = Signal()

    BUSY = "busy"
    ERROR = "error"
    SUCCESS = "success"
    INFO = "info"
    HIDDEN = "hidden"

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName(name)
        self.mode = self.HIDDEN
        self._retry_fn: Callable[[], None] | None = None
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 6, 8, 6)
        outer.setSpacing(4)
        row = QHBoxLayout()
        row.setSpacing(8)
        self.icon = QLabel()
        self.icon.setFixedSize(20, 20)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.retry = QPushButton("Retr&y")
        self.retry.setToolTip("Try again (Alt+Y)")
        self.retry.setAccessibleName("Retry")
        self.retry.clicked.connect(self._on_retry)
        self.dismiss = QToolButton()
        self.dismiss.setText("✕")
        self.dismiss.setToolTip("Dismiss this message")
        self.dismiss.setAccessibleName("Dismiss message")
        self.dismiss.clicked.connect(self.clear)
        row.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.text, 1)
        row.addWidget(self.retry, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.dismiss, 0, Qt.AlignmentFlag.AlignTop)
        outer.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # indeterminate: the worker gives no percentages
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(6)
        self.progress.setAccessibleName("Working")
        outer.addWidget(self.progress)
        self.clear()

    def _show(self, mode: str, look: theme.Look | None, text: str) -> None:
        self.mode = mode
        if look is not None:
            self.icon.setPixmap(look.icon().pixmap(QSize(20, 20)))
            color = look.color()
            tint = look.tint()
            self.setStyleSheet(
                f"#{self.objectName()} {{ background: rgba({tint.red()},{tint.green()},"
                f"{tint.blue()},{tint.alpha()}); border: 1px solid {color.name()};"
                " border-radius: 4px; }"
            )
        self.icon.setVisible(look is not None)
        self.text.setText(text)
        self.setAccessibleDescription(text)
        self.progress.setVisible(mode == self.BUSY)
        self.retry.setVisible(mode == self.ERROR and self._retry_fn is not None)
        self.dismiss.setVisible(mode in (self.SUCCESS, self.INFO, self.ERROR))
        self.setVisible(True)

    def busy(self, text: str) -> None:
        self._retry_fn = None
        self._show(self.BUSY, theme.NOTICE, text)

    def error(self, text: str, retry: Callable[[], None] | None = None) -> None:
        self._retry_fn = retry
        self._show(self.ERROR, theme.FAILURE, text)

    def success(self, text: str) -> None:
        self._retry_fn = None
        self._show(self.SUCCESS, theme.SUCCESS, text)

    def info(self, text: str) -> None:
        self._retry_fn = None
        self._show(self.INFO, theme.NOTICE, text)

    def clear(self) -> None:
        self.mode = self.HIDDEN
        self._retry_fn = None
        self.text.clear()
        self.setVisible(False)

    def _on_retry(self) -> None:
        fn = self._retry_fn
        if fn is not None:
            self.retry_requested.emit()
            fn()


class WrappingCheckBox(QCheckBox):
    """A check box whose label wraps, for long checklist items in a narrow window.

    The whole row (indicator and label) is clickable; ``full_text`` is the label.
    """

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.full_text = text
        self.setAccessibleName(text)
        style = self.style()
        indent = style.pixelMetric(QStyle.PixelMetric.PM_IndicatorWidth) + style.pixelMetric(
            QStyle.PixelMetric.PM_CheckBoxLabelSpacing
        )
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(indent, 1, 0, 1)
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        self.label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._layout.addWidget(self.label)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    def hitButton(self, pos: QPoint) -> bool:
        return self.rect().contains(pos)

    def sizeHint(self) -> QSize:
        return self._layout.sizeHint()

    def minimumSizeHint(self) -> QSize:
        return self._layout.minimumSize()

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._layout.heightForWidth(width)


class FittedText(QTextBrowser):
    """Read-only rich text that grows to its content and wraps long tokens (hashes,
    call ids) anywhere, so it never widens the narrow sidebar."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName(name)
        self.setReadOnly(True)
        self.setOpenLinks(False)
        self.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.document().documentLayout().documentSizeChanged.connect(self._fit)

    def _fit(self) -> None:
        height = int(self.document().size().height()) + 2 * self.frameWidth() + 4
        if self.height() != height:
            self.setFixedHeight(height)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.document().setTextWidth(self.viewport().width())
        self._fit()


class Divider(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.HLine)
        self.setFrameShadow(QFrame.Shadow.Sunken)


class ConfirmBar(QFrame):
    """An inline question with two answers, in place of a modal dialog (which would
    steal focus from the softphone). "Keep" is the safe answer and takes the focus;
    Esc keeps too."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("confirmBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName(name)
        box = QVBoxLayout(self)
        box.setContentsMargins(8, 6, 8, 6)
        box.setSpacing(6)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setStyleSheet(f"color: {theme.DUE_SOON.color().name()};")
        box.addWidget(self.text)
        row = QHBoxLayout()
        self.yes = QPushButton()
        self.no = QPushButton()
        row.addWidget(self.yes)
        row.addWidget(self.no)
        box.addLayout(row)
        self.yes.clicked.connect(self._yes)
        self.no.clicked.connect(self.dismiss)
        self._on_yes: Callable[[], None] | None = None
        self.hide()

    def ask(self, text: str, yes: str, no: str, on_yes: Callable[[], None]) -> None:
        self.text.setText(text)
        self.setAccessibleDescription(text)
        self.yes.setText(yes)
        self.yes.setAccessibleName(yes)
        self.no.setText(no)
        self.no.setAccessibleName(no)
        self._on_yes = on_yes
        self.show()
        self.no.setFocus(Qt.FocusReason.OtherFocusReason)

    @property
    def asking(self) -> bool:
        return self._on_yes is not None

    def dismiss(self) -> None:
        self._on_yes = None
        self.hide()

    def _yes(self) -> None:
        action, self._on_yes = self._on_yes, None
        self.hide()
        if action is not None:
            action()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.asking:
            event.accept()
            self.dismiss()
            return
        super().keyPressEvent(event)
