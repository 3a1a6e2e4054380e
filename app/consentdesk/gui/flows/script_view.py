"""The rendered disclosure script as the agent sees it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from consentdesk.domain.scripts import (
    Block,
    RenderedScript,
)
from consentdesk.gui import theme
from consentdesk.gui.widgets import scaled_font


class ScriptView(QFrame):
    """The rendered disclosure: plain paragraphs, and verbatim passages marked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("scriptView")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName("Disclosure script")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(10, 8, 10, 8)
        self._layout.setSpacing(8)
        self.rendered: RenderedScript | None = None
        self.caption = QLabel()
        self.caption.setFont(scaled_font(self.caption, 0.85))
        self.caption.setWordWrap(True)
        self._layout.addWidget(self.caption)
        self._blocks: list[QWidget] = []

    def show_script(self, rendered: RenderedScript | None, problem: str = "") -> None:
        for w in self._blocks:
            self._layout.removeWidget(w)
            w.deleteLater()
        self._blocks.clear()
        self.rendered = rendered
        if rendered is None:
            self.caption.setText(problem or "Choose what the customer is asked about.")
            self.setAccessibleDescription(self.caption.text())
            return
        s = rendered.script
        self.caption.setText(
            f"Script {s.id} · version {s.version} · {s.language.upper()} · "
            f"SHA-256 {rendered.sha256[:12]}…"
        )
        for block in rendered.blocks:
            widget = self._block_widget(block)
            self._layout.addWidget(widget)
            self._blocks.append(widget)
        self.setAccessibleDescription(rendered.text)

    def _block_widget(self, block: Block) -> QWidget:
        text = QLabel(block.text)
        text.setWordWrap(True)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        text.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        if not block.verbatim:
            text.setAccessibleName("Script paragraph")
            return text
        frame = QFrame()
        frame.setObjectName("verbatim")
        color = theme.NOTICE.color().name()
        frame.setStyleSheet(f"#verbatim {{ border-left: 4px solid {color}; padding-left: 6px; }}")
        box = QVBoxLayout(frame)
        box.setContentsMargins(8, 2, 0, 2)
        box.setSpacing(2)
        tag = QLabel("▶ READ WORD FOR WORD")
        tag.setFont(scaled_font(tag, 0.8, bold=True))
        tag.setStyleSheet(f"color: {color};")
        text.setFont(scaled_font(text, 1.0, bold=True))
        text.setAccessibleName("Read word for word")
        box.addWidget(tag)
        box.addWidget(text)
        frame.setAccessibleName("Verbatim passage")
        return frame
