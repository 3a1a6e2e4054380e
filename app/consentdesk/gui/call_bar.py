"""The call bar: calls waiting or on hold, and how many more are ringing.

Rows are created once (at most :data:`~consentdesk.gui.calls.MAX_WAITING`)
and reused; a burst of call events redraws the bar at most ~30 times a second.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from consentdesk.gui.calls import Call, CallController
from consentdesk.gui.throttle import Throttle


def caller_label(call: Call) -> str:
    """How a waiting caller is named in the bar (never logged)."""
    if call.display_name:
        return call.display_name
    if call.number:
        from consentdesk.domain import phone

        return phone.display(call.number)
    return "Withheld"


class _Row(QWidget):
    def __init__(self, bar: WaitingBar) -> None:
        super().__init__()
        self.call_id: str | None = None
        line = QHBoxLayout(self)
        line.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.button = QPushButton("Switch")
        self.button.setToolTip("Show this caller (Ctrl+Tab)")
        self.button.clicked.connect(lambda _=False: bar.switch_to(self.call_id))
        line.addWidget(self.label, 1)
        line.addWidget(self.button)

    def show_call(self, call: Call) -> None:
        who = caller_label(call)
        self.call_id = call.call_id
        self.label.setText(f"⏸ {'On hold' if call.answered_at else 'Waiting'}: {who}")
        self.button.setAccessibleName(f"Switch to {who}")
        self.button.setEnabled(call.call_id is not None)
        self.show()


class WaitingBar(QFrame):
    """Shows ``calls.waiting`` and ``calls.surplus``; hidden when both are empty."""

    def __init__(
        self,
        calls: CallController,
        parent: QWidget | None = None,
        *,
        switch: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(parent)
        self.calls = calls
        # The window's switch asks first when a capture form is open.
        self._switch = switch or calls.switch_to
        self.setObjectName("waitingBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName("Calls waiting")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(8, 4, 8, 4)
        self._rows: list[_Row] = []
        self.surplus_label = QLabel()
        self.surplus_label.setAccessibleName("More calls ringing")
        self.surplus_label.hide()
        self._layout.addWidget(self.surplus_label)
        self.hide()
        self.refresh = Throttle(self.render, parent=self)
        calls.waiting_changed.connect(lambda _waiting: self.refresh.poke())

    def render(self) -> None:
        """Draw the current list now (normally via the throttled :attr:`refresh`)."""
        waiting = self.calls.waiting
        while len(self._rows) < len(waiting):
            row = _Row(self)
            self._layout.insertWidget(len(self._rows), row)
            self._rows.append(row)
        for i, row in enumerate(self._rows):
            if i < len(waiting):
                row.show_call(waiting[i])
            else:
                row.call_id = None
                row.hide()
        surplus = self.calls.surplus
        self.surplus_label.setText(
            f"+ {surplus} more {'call' if surplus == 1 else 'calls'} ringing (not listed)"
        )
        self.surplus_label.setVisible(surplus > 0)
        self.setVisible(bool(waiting) or surplus > 0)

    def switch_buttons(self) -> list[QPushButton]:
        """The Switch button of each listed call, newest first."""
        return [row.button for row in self._rows if row.call_id is not None]

    def switch_to(self, call_id: str | None) -> None:
        if call_id is not None:
            self._switch(call_id)
