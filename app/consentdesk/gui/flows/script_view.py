"""The rendered disclosure script as the agent sees it, and whether all of it has
been on screen (the read-aloud tick waits for that)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from consentdesk.domain.scripts import Block, RenderedScript
from consentdesk.gui import theme
from consentdesk.gui.flows.layout import shown_rect
from consentdesk.gui.widgets import scaled_font

VERBATIM_MARK = "▌"
BLOCK_SPACING = 6
TRACK_MS = 150


class ScriptText(QLabel):
    """A paragraph of the script: exactly as tall as its text at the given width (a
    wrapped QLabel otherwise claims the height of a narrower layout as its minimum)."""

    def minimumSizeHint(self) -> QSize:
        return QSize(super().minimumSizeHint().width(), 0)


class ScriptView(QFrame):
    """The rendered disclosure: plain paragraphs, and verbatim passages marked with
    a bar. The text scrolls only where the screen is too small for all of it.

    Signals:
        seen_changed(bool): whether every line of the script has been on screen
            since it was last rendered.
    """

    seen_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("scriptView")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName("Disclosure script")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 4, 4, 4)
        outer.setSpacing(4)
        self.rendered: RenderedScript | None = None
        self.caption = QLabel()
        self.caption.setFont(scaled_font(self.caption, 0.85))
        self.caption.setWordWrap(True)
        outer.addWidget(self.caption)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setAccessibleName("Script text")
        self.content = QWidget()
        self._layout = QVBoxLayout(self.content)
        self._layout.setContentsMargins(0, 0, 4, 0)
        self._layout.setSpacing(BLOCK_SPACING)
        self._layout.addStretch(1)
        self.scroll.setWidget(self.content)
        outer.addWidget(self.scroll, 1)
        self._blocks: list[ScriptText] = []
        self._seen: list[tuple[int, int]] = []  # content rows that were on screen
        self.seen_all = False
        self.scroll.verticalScrollBar().valueChanged.connect(self.track)
        # Events say most changes (scrolling, resizing, showing); the timer catches
        # the rest (a window moved on screen, a layout settling) until all is seen.
        self._poll = QTimer(self)
        self._poll.setInterval(TRACK_MS)
        self._poll.timeout.connect(self.track)
        for watched in (self.scroll.viewport(), self.content):
            watched.installEventFilter(self)

    # --- content --------------------------------------------------------------------

    def show_script(self, rendered: RenderedScript | None, problem: str = "") -> None:
        for w in self._blocks:
            self._layout.removeWidget(w)
            w.deleteLater()
        self._blocks.clear()
        self.rendered = rendered
        self._seen = []
        self._set_seen(False)
        if rendered is None:
            self.caption.setText(problem or "Choose what the customer is asked about.")
            self.setAccessibleDescription(self.caption.text())
            self.scroll.hide()
            self._poll.stop()
            return
        s = rendered.script
        self.caption.setText(
            f"{s.id} v{s.version} · {s.language.upper()} · {VERBATIM_MARK} read word for word"
        )
        self.caption.setToolTip(f"Script {s.id}, version {s.version}; SHA-256 {rendered.sha256}")
        for i, block in enumerate(rendered.blocks):
            label = self._block_label(block)
            self._layout.insertWidget(i, label)
            self._blocks.append(label)
        self.scroll.show()
        self.scroll.verticalScrollBar().setValue(0)
        self.setAccessibleDescription(rendered.text)
        QTimer.singleShot(0, self, self.track)  # once laid out
        self._poll.start()

    def _block_label(self, block: Block) -> ScriptText:
        text = ScriptText(block.text)
        text.setWordWrap(True)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)  # as tall as the text at this width, no taller
        text.setSizePolicy(policy)
        if not block.verbatim:
            text.setAccessibleName("Script paragraph")
            return text
        color = theme.NOTICE.color()
        text.setObjectName("verbatim")
        text.setStyleSheet(
            f"#verbatim {{ border-left: 4px solid {color.name()}; padding-left: 6px;"
            f" background: rgba({color.red()}, {color.green()}, {color.blue()}, 22); }}"
        )
        text.setAccessibleName("Read word for word")
        return text

    def needed_height(self, width: int) -> int:
        """Height that shows the whole script (caption included) at *width*."""
        outer = self.layout()
        assert outer is not None
        m = outer.contentsMargins()
        inner = width - m.left() - m.right() - 2 * self.frameWidth()
        height = self.caption.heightForWidth(inner)
        if self.rendered is not None:
            text_width = inner - self._layout.contentsMargins().right()
            for b in self._blocks:
                b.ensurePolished()  # the verbatim bar and padding narrow the text
            blocks = sum(b.heightForWidth(text_width) for b in self._blocks)
            height += outer.spacing() + blocks + BLOCK_SPACING * max(len(self._blocks) - 1, 0)
        # A line to spare: a scroll bar that appears on a near miss narrows the text,
        # which then needs more lines, and the script would scroll after all.
        spare = self.fontMetrics().lineSpacing()
        return height + m.top() + m.bottom() + 2 * self.frameWidth() + spare

    # --- has all of it been on screen? --------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.Resize, QEvent.Type.Show, QEvent.Type.Paint):
            QTimer.singleShot(0, self, self.track)
        return False

    def track(self) -> None:
        """Note which rows of the text are on screen now (clipped by every parent)."""
        if self.rendered is None or self.seen_all or not self.content.isVisible():
            return
        shown = shown_rect(self.scroll.viewport())
        if shown.isEmpty():
            return
        offset = self.scroll.verticalScrollBar().value()
        self._seen.append((shown.top() + offset, shown.bottom() + 1 + offset))
        self._seen = _merged(self._seen)
        text_bottom = max((b.geometry().bottom() + 1 for b in self._blocks), default=0)
        first = self._seen[0]
        if first[0] <= 0 and first[1] >= text_bottom:
            self._set_seen(True)

    @property
    def seen_to(self) -> int:
        """How far down (in pixels of text) the script has been on screen from its top."""
        first = self._seen[0] if self._seen else (1, 0)
        return first[1] if first[0] <= 0 else 0

    def _set_seen(self, seen: bool) -> None:
        if seen:
            self._poll.stop()
        if seen != self.seen_all:
            self.seen_all = seen
            self.seen_changed.emit(seen)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
