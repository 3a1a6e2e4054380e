"""The review window's small dialogs: flag comments, request status moves, incidents.

Each dialog builds its core record when OK is pressed; a record the domain
refuses keeps the dialog open with the reason shown inline. Dialogs are opened
with ``open()`` (window-modal, never blocking the event loop).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import tzinfo
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from consentdesk.domain.calendars import Calendar
from consentdesk.domain.incident import (
    AuthorityNotified,
    Incident,
    IncidentClosed,
    IncidentOpened,
    check_incident_note,
    parse_local_time,
)
from consentdesk.domain.model import DomainError, Purpose, RequestChange, RequestStatus, utcnow
from consentdesk.domain.request_queue import needs_confirmation
from consentdesk.domain.review import (
    REASON_REQUIRED,
    QueueItem,
    allowed_moves,
    format_local,
    lead_move,
)


class _RecordDialog(QDialog):
    """OK builds the record; a DomainError shows inline and keeps the dialog open."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setAccessibleName(title)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.result_record: Any = None
        self.layout_ = QVBoxLayout(self)
        self.form = QFormLayout()
        self.layout_.addLayout(self.form)
        self.error = QLabel()
        self.error.setObjectName("dialog-error")
        self.error.setWordWrap(True)
        self.error.setAccessibleName("Problem")
        self.error.setVisible(False)
        self.layout_.addWidget(self.error)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.layout_.addWidget(self.buttons)

    def build(self) -> Any:
        raise NotImplementedError

    def accept(self) -> None:
        try:
            self.result_record = self.build()
        except DomainError as exc:
            self.error.setText(f"⚠ {exc}")
            self.error.setVisible(True)
            return
        super().accept()

    def ok_button(self) -> Any:
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok)


def _text_box(name: str, placeholder: str = "") -> QPlainTextEdit:
    box = QPlainTextEdit()
    box.setAccessibleName(name)
    box.setPlaceholderText(placeholder)
    box.setTabChangesFocus(True)
    box.setMinimumHeight(70)
    return box


class CommentDialog(_RecordDialog):
    """Asks for a comment and builds a record from it (a flag, its resolution)."""

    def __init__(
        self,
        title: str,
        prompt: str,
        make: Callable[[str], Any],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(title, parent)
        self.make = make
        self.comment_box = _text_box(prompt)
        self.form.addRow(prompt, self.comment_box)

    def build(self) -> Any:
        return self.make(self.comment_box.toPlainText())


class MoveRequestDialog(_RecordDialog):
    """Move a privacy request to its next status, with a reason where the law asks."""

    def __init__(
        self, item: QueueItem, *, by: str, calendar: Calendar, parent: QWidget | None = None
    ) -> None:
        super().__init__(f"Move request {item.request.reference}", parent)
        self.item = item
        self.by = by
        self.calendar = calendar
        clock = QLabel(item.clock)
        clock.setWordWrap(True)
        clock.setAccessibleName("Statutory clock")
        self.form.addRow("Statutory clock", clock)
        self.status_box = QComboBox()
        self.status_box.setAccessibleName("New status")
        for status in allowed_moves(item.request):
            self.status_box.addItem(str(status), status.value)
        self.form.addRow("New &status", self.status_box)
        self.reason_box = QLineEdit()
        self.reason_box.setAccessibleName("Reason")
        self.form.addRow("&Reason", self.reason_box)
        # CCPA Regs §7021: recording how receipt was confirmed stops that clock.
        self.confirm_box = QLineEdit()
        self.confirm_box.setAccessibleName("Receipt confirmed via")
        self.confirm_box.setPlaceholderText("e.g. email, letter — empty if not confirmed yet")
        if needs_confirmation(item.request):
            self.status_box.insertItem(0, "(status unchanged)", None)
            self.status_box.setCurrentIndex(0)
            self.form.addRow("Receipt &confirmed via", self.confirm_box)
        else:
            self.confirm_box.hide()
        self.status_box.currentIndexChanged.connect(self._update)
        self._update()

    def _update(self) -> None:
        needed = self.status_box.currentData() in REASON_REQUIRED
        self.reason_box.setPlaceholderText("required" if needed else "optional")

    def build(self) -> RequestChange:
        value = self.status_box.currentData()
        how = self.confirm_box.text() if needs_confirmation(self.item.request) else None
        if value is None and not (how or "").strip():
            if self.status_box.count() == 0:
                raise DomainError("this request cannot move any further")
            raise DomainError("choose a new status or say how receipt was confirmed")
        return lead_move(
            self.item.request,
            RequestStatus(value) if value is not None else None,
            by=self.by,
            reason=self.reason_box.text(),
            cal=self.calendar,
            confirmation=how,
        )


class OpenIncidentDialog(_RecordDialog):
    """Open an incident: what happened, when we became aware, scope and the agent script."""

    def __init__(
        self, purposes: Sequence[Purpose], *, by: str, tz: tzinfo, parent: QWidget | None = None
    ) -> None:
        super().__init__("Open incident", parent)
        self.by = by
        self.tz = tz
        self.title_box = QLineEdit()
        self.title_box.setAccessibleName("Incident title")
        self.form.addRow("&Title", self.title_box)
        self.what_box = _text_box("What happened")
        self.form.addRow("What &happened", self.what_box)
        self.aware_box = QLineEdit(format_local(utcnow(), tz).rsplit(" ", 1)[0])
        self.aware_box.setAccessibleName("Became aware at")
        self.aware_box.setToolTip(
            f"Local time in {tz} (YYYY-MM-DD HH:MM), or with a UTC offset such as +01:00"
        )
        self.form.addRow(f"&Aware since ({tz})", self.aware_box)
        self.purpose_list = QListWidget()
        self.purpose_list.setAccessibleName("Affected purposes")
        for p in purposes:
            item = QListWidgetItem(p.title)
            item.setData(Qt.ItemDataRole.UserRole, p.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.purpose_list.addItem(item)
        self.purpose_list.setMaximumHeight(120)
        self.form.addRow("Affected &purposes", self.purpose_list)
        self.regions_box = QLineEdit()
        self.regions_box.setAccessibleName("Affected regions")
        self.regions_box.setPlaceholderText("e.g. DE, AT, US-CA")
        self.form.addRow("Affected &regions", self.regions_box)
        self.script_box = _text_box("Approved agent script", "What agents say to callers")
        self.form.addRow("Agent &script", self.script_box)

    def checked_purposes(self) -> tuple[str, ...]:
        out = []
        for i in range(self.purpose_list.count()):
            item = self.purpose_list.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(str(item.data(Qt.ItemDataRole.UserRole)))
        return tuple(out)

    def build(self) -> IncidentOpened:
        return IncidentOpened(
            incident_id=uuid.uuid4(),
            title=self.title_box.text(),
            what_happened=self.what_box.toPlainText(),
            aware_at=parse_local_time(self.aware_box.text(), self.tz),
            purposes=self.checked_purposes(),
            regions=tuple(r for r in self.regions_box.text().replace(";", ",").split(",")),
            script=self.script_box.toPlainText(),
            by=self.by,
        )


class NotifyDialog(_RecordDialog):
    """Record when and to whom the supervisory authority was notified."""

    def __init__(
        self, incident: Incident, *, by: str, tz: tzinfo, parent: QWidget | None = None
    ) -> None:
        super().__init__("Record authority notification", parent)
        self.incident = incident
        self.by = by
        self.tz = tz
        deadline = QLabel(f"72 hours end {format_local(incident.deadline, tz)}")
        deadline.setAccessibleName("Deadline")
        self.form.addRow("Deadline", deadline)
        self.when_box = QLineEdit(format_local(utcnow(), tz).rsplit(" ", 1)[0])
        self.when_box.setAccessibleName("Notified at")
        self.form.addRow(f"&Notified at ({tz})", self.when_box)
        self.authority_box = QLineEdit()
        self.authority_box.setAccessibleName("Supervisory authority")
        self.form.addRow("&Authority", self.authority_box)
        self.ref_box = QLineEdit()
        self.ref_box.setAccessibleName("Authority reference")
        self.form.addRow("Authority &reference", self.ref_box)
        self.delay_box = _text_box("Reasons for delay", "Required when notified after 72 hours")
        self.form.addRow("Reasons for &delay", self.delay_box)

    def build(self) -> AuthorityNotified:
        note = AuthorityNotified(
            incident_id=self.incident.incident_id,
            notified_at=parse_local_time(self.when_box.text(), self.tz),
            authority=self.authority_box.text(),
            by=self.by,
            authority_ref=self.ref_box.text() or None,
            delay_reason=self.delay_box.toPlainText() or None,
        )
        check_incident_note(note, [self.incident])
        return note


class CloseIncidentDialog(_RecordDialog):
    def __init__(self, incident: Incident, *, by: str, parent: QWidget | None = None) -> None:
        super().__init__(f"Close incident: {incident.opened.title}", parent)
        self.incident = incident
        self.by = by
        self.summary_box = _text_box("Closing summary", "What was done; the record stays")
        self.form.addRow("&Summary", self.summary_box)

    def build(self) -> IncidentClosed:
        return IncidentClosed(self.incident.incident_id, self.summary_box.toPlainText(), by=self.by)
