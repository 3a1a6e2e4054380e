"""History of the selected purpose under the consent grid, with the proof of the
selected record and the way to correct it."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QModelIndex, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QListView,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from consentdesk.domain.model import Channel, ConsentEvent, ConsentState
from consentdesk.gui.caller_view import proof_html
from consentdesk.gui.delegates import TwoLineDelegate
from consentdesk.gui.desk import Desk
from consentdesk.gui.models import EventRole, HistoryModel
from consentdesk.gui.tasks import describe_error
from consentdesk.gui.widgets import FittedText, section_title


class HistoryBox(QFrame):
    """The records of one purpose (read once per caller on the worker, then cached).

    Signals:
        correct_requested(): the agent wants to correct the selected record.
    """

    correct_requested = Signal()

    def __init__(self, desk: Desk, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.setAccessibleName("History")
        self._events: list[ConsentEvent] | None = None
        self._key: object = None  # which caller (panel generation) the cache is for
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 6, 0, 0)
        box.setSpacing(4)
        self.title = section_title("History")
        box.addWidget(self.title)
        self.model = HistoryModel(self)
        self.view = QListView()
        self.view.setModel(self.model)
        self.view.setItemDelegate(TwoLineDelegate(self.view))
        self.view.setAccessibleName("History of the selected purpose")
        self.view.setWordWrap(True)
        self.view.setUniformItemSizes(False)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setMinimumHeight(self.fontMetrics().lineSpacing() * 7)
        self.view.selectionModel().currentChanged.connect(self._event_changed)
        box.addWidget(self.view)
        self.proof = FittedText("Proof of the selected record")
        box.addWidget(self.proof)
        self.correct_button = QPushButton("Correct this record…")
        self.correct_button.setToolTip("Record a correction with a reason (the record stays)")
        self.correct_button.setAccessibleName("Correct this record")
        self.correct_button.clicked.connect(self.correct_requested)
        box.addWidget(self.correct_button)
        self.hide()

    def forget(self) -> None:
        """The caller's records changed: read them again next time."""
        self._events = None

    def clear(self) -> None:
        self._events = None
        self.model.clear()
        self.hide()
        self.proof.clear()

    def show_purpose(
        self, purpose: str, number: str | None, key: object, channel: Channel | None
    ) -> None:
        """Show *purpose*'s records for caller *number*; *key* names the caller on
        screen, so that an answer for an earlier caller is dropped."""
        catalogue = self.desk.catalogue
        title = catalogue.get(purpose).title if catalogue else purpose
        self.title.setText(f"History: {title}")
        self.show()
        if self._events is not None and self._key == key:
            self._fill(purpose, channel)
            return
        if number is None:
            return
        self._key = key
        self._events = None
        self.proof.setPlainText("Loading history…")

        def loaded(events: Sequence[ConsentEvent]) -> None:
            if self._key == key:
                self._events = list(events)
                self._fill(purpose, channel)

        def failed(exc: BaseException) -> None:
            if self._key == key:
                self.proof.setPlainText(f"History not loaded: {describe_error(exc)}")

        self.desk.runner.call(
            lambda b: b.history(number), on_success=loaded, on_failure=failed, label="history"
        )

    def _fill(self, purpose: str, channel: Channel | None) -> None:
        events = [e for e in self._events or () if e.purpose == purpose]
        self.model.set_events(events)
        line = self.fontMetrics().lineSpacing()
        rows = sum(self.view.sizeHintForRow(r) for r in range(len(events))) + 8
        self.view.setFixedHeight(max(line * 3, min(rows, line * 12)))
        if events:
            row = next(
                (r for r in range(len(events)) if self.model.event_at(r).channel == channel), 0
            )
            self.view.setCurrentIndex(self.model.index(row))
        else:
            self.proof.setPlainText("Never asked: no record for this purpose yet.")
            self.correct_button.hide()

    def _event_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        event = current.data(EventRole) if current.isValid() else None
        if not isinstance(event, ConsentEvent):
            self.proof.clear()
            self.correct_button.hide()
            return
        self.proof.setHtml(proof_html(event))
        self.correct_button.setVisible(event.state != ConsentState.VOID)

    def selected_event(self) -> ConsentEvent | None:
        event = self.view.currentIndex().data(EventRole)
        return event if isinstance(event, ConsentEvent) else None
