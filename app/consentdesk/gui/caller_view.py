"""Parts of the caller panel: the caller header, the consent grid and the proof text."""

from __future__ import annotations

import html
from datetime import datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QModelIndex,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from consentdesk.domain.model import ConsentEvent, SubjectStatus, utcnow
from consentdesk.gui import labels, theme
from consentdesk.gui.calls import Call
from consentdesk.gui.delegates import CellDelegate, scaled_font_for
from consentdesk.gui.desk import Desk
from consentdesk.gui.models import (
    ConsentGridModel,
)
from consentdesk.gui.widgets import StateChip, scaled_font
from consentdesk.telephony.events import CallPhase

# The capture flows (and the capture rules they pull in) are imported where a
# flow starts, so that start-up paints the window without them.
if TYPE_CHECKING:
    pass

SHORTCUTS = {
    "consent": "Ctrl+G",
    "withdraw": "Ctrl+W",
    "request": "Ctrl+P",
    "verify": "Ctrl+I",
    "reload": "F5",
    "end": "Ctrl+E",
}


class ConsentGrid(QTableView):
    """The purposes × channels grid, sized to its content (the panel scrolls)."""

    def __init__(self, model: ConsentGridModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setItemDelegate(CellDelegate(self))
        self.setAccessibleName("Consent grid")
        self.setAccessibleDescription("Purposes by channel. Select a cell to see its history.")
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWordWrap(True)
        self.setShowGrid(True)
        self.setTabKeyNavigation(False)
        self.setCornerButtonEnabled(False)
        corner = self.findChild(QAbstractButton, "qt_tableview_cornerbutton")
        if corner is not None:
            corner.setAccessibleName("Consent grid corner")
        hh = self.horizontalHeader()
        hh.setAccessibleName("Channels")
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        hh.setFont(scaled_font_for(hh.font(), 0.85))
        vh = self.verticalHeader()
        vh.setAccessibleName("Purposes")
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vh.setDefaultAlignment(
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter | Qt.TextFlag.TextWordWrap
        )
        vh.setFont(scaled_font_for(vh.font(), 0.85))
        model.modelReset.connect(self._fit)

    def _fit(self) -> None:
        fm = self.fontMetrics()
        option = QStyleOptionViewItem()
        option.font = self.font()
        cell = self.itemDelegate().sizeHint(option, QModelIndex()).height()
        row = max(fm.lineSpacing() * 3 + 10, cell)
        vh = self.verticalHeader()
        vh.setDefaultSectionSize(row)
        vh.setFixedWidth(max(84, fm.horizontalAdvance("M") * 8))
        height = self.horizontalHeader().sizeHint().height() + row * self.model().rowCount()
        self.setFixedHeight(height + 2 * self.frameWidth())

    def sizeHint(self) -> QSize:
        return QSize(340, self.height())


class CallerHeader(QFrame):
    """Who is on the line: name, number (dialled and normalised), identity, timer.

    Signals:
        end_requested(): End (manual call) / Close (lookup or ended call).
        verify_requested(): the agent wants to check identity.
    """

    end_requested = Signal()
    verify_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("callerHeader")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName("Caller")
        box = QVBoxLayout(self)
        box.setContentsMargins(10, 8, 10, 8)
        box.setSpacing(3)
        self.name = QLabel()
        self.name.setFont(scaled_font(self.name, 1.35, bold=True))
        self.name.setWordWrap(True)
        self.name.setAccessibleName("Caller name")
        self.number = QLabel()
        self.number.setFont(scaled_font(self.number, 1.1))
        self.number.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.number.setAccessibleName("Caller number")
        self.dialled = QLabel()
        self.dialled.setWordWrap(True)
        self.dialled.setEnabled(False)
        self.dialled.setAccessibleName("Number as dialled")
        self.customer = QLabel()
        self.customer.setAccessibleName("Customer reference")
        # While a form is open, name and number share one line (the script needs room).
        self.summary = QLabel()
        self.summary.setFont(scaled_font(self.summary, 1.05, bold=True))
        self.summary.setWordWrap(True)
        self.summary.setAccessibleName("Caller")
        self.summary.hide()
        box.addWidget(self.summary)
        box.addWidget(self.name)
        box.addWidget(self.number)
        box.addWidget(self.dialled)
        box.addWidget(self.customer)
        self.unknown = False
        self.record = StateChip()
        self.record.setAccessibleName("Customer record")
        self.record.set_state(
            theme.NOTICE, "New caller: no profile, consent or request for this number"
        )
        self.record.hide()
        box.addWidget(self.record)
        ident = QHBoxLayout()
        self.identity = StateChip()
        self.identity.setAccessibleName("Identity verification")
        self.verify = QPushButton("Check &identity…")
        self.verify.setToolTip(f"Run the identity checklist ({SHORTCUTS['verify']})")
        self.verify.setAccessibleName("Check identity")
        self.verify.clicked.connect(self.verify_requested)
        ident.addWidget(self.identity, 1)
        ident.addWidget(self.verify)
        box.addLayout(ident)
        callrow = QHBoxLayout()
        self.call_state = StateChip()
        self.call_state.setAccessibleName("Call")
        self.end = QPushButton("End")
        self.end.setAccessibleName("End or close")
        self.end.clicked.connect(self.end_requested)
        callrow.addWidget(self.call_state, 1)
        callrow.addWidget(self.end)
        box.addLayout(callrow)
        self.call: Call | None = None
        self.compact = False
        self._details: dict[QWidget, bool] = {}  # shown unless compact
        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self._tick)

    def show_call(self, call: Call, status: SubjectStatus | None = None) -> None:
        """Show *call*; *status* (once read) says who the customer is, or that the
        number is not in our records."""
        self.call = call
        subject = status.subject if status is not None else None
        name = subject.display_name if subject else None
        customer_ref = subject.customer_ref if subject else None
        unknown = status is not None and not in_our_records(status)
        if call.number is None:
            self.name.setText(call.display_name or "Withheld number")
            self.number.setText("No number sent — look the caller up below")
            self.dialled.setText(f"As sent: {call.raw_number}" if call.raw_number else "")
        else:
            from consentdesk.domain import phone  # phone metadata loads with the first caller

            display = phone.display(call.number)
            # The number is never shown a second time as if it were a name.
            if name or call.display_name:
                self.name.setText(name or call.display_name)
            elif unknown:
                self.name.setText("Not in our records")
            else:
                self.name.setText("No name on file" if status is not None else "")
            self.number.setText(display)
            raw = call.raw_number.strip()
            self.dialled.setText(
                f"As dialled: {raw}" if raw and raw != call.number and raw != display else ""
            )
        self.customer.setText(f"Customer {customer_ref}" if customer_ref else "")
        self.unknown = unknown
        if call.verified_by:
            self.identity.set_state(theme.VERIFIED, f"Identity verified: {call.verified_by}")
        elif unknown:
            self.identity.set_state(theme.NOTICE, "No customer account to check identity against")
        else:
            self.identity.set_state(theme.UNVERIFIED, "Identity not verified on this call")
        shown_name = self.name.text()
        self.summary.setText(
            f"{shown_name} · {self.number.text()}" if shown_name else self.number.text()
        )
        self._details = {
            self.name: bool(shown_name),  # no blank line while the status loads
            self.number: True,
            self.dialled: bool(self.dialled.text()),
            self.customer: bool(customer_ref),
            self.record: unknown,
            self.identity: True,
            self.verify: not call.verified_by and call.number is not None and not unknown,
        }
        self._apply_details()
        if call.is_lookup:
            self.end.setText("Close")
            self.end.setToolTip(f"Take this caller off the screen ({SHORTCUTS['end']})")
        elif call.is_manual and call.is_live:
            self.end.setText("End call")
            self.end.setToolTip(f"End this manual call ({SHORTCUTS['end']})")
        else:
            self.end.setText("Close")
            self.end.setToolTip(f"Take this caller off the screen now ({SHORTCUTS['end']})")
        self._tick()
        if call.phase == CallPhase.ANSWERED:
            self.timer.start()
        else:
            self.timer.stop()

    def set_compact(self, compact: bool) -> None:
        """While a form is open: name, number and call only (the script needs the room)."""
        self.compact = compact
        self._apply_details()

    def _apply_details(self) -> None:
        for widget, wanted in self._details.items():
            widget.setVisible(wanted and not self.compact)
        self.summary.setVisible(self.compact)

    def _tick(self) -> None:
        call = self.call
        if call is None:
            return
        if call.is_lookup:
            self.call_state.set_state(theme.NOTICE, "Lookup — not on a call")
            return
        if call.phase == CallPhase.INCOMING:
            self.call_state.set_state(theme.LINK_UP, "Incoming call — ringing")
            return
        start = call.answered_at or call.incoming_at or utcnow()
        end: datetime = call.ended_at or utcnow()
        elapsed = labels.duration(int((end - start).total_seconds()))
        if call.phase == CallPhase.ENDED:
            self.call_state.set_state(theme.CLOSED, f"Call ended after {elapsed}")
        else:
            source = " (manual)" if call.is_manual else ""
            self.call_state.set_state(theme.LINK_UP, f"On call{source} · {elapsed}")

    def elapsed_text(self) -> str:
        return self.call_state.text()


def customer_language(status: SubjectStatus, desk: Desk) -> str:
    """The language the customer was last addressed in, else the desk's first."""
    events = [c.event for c in status.cells if c.event is not None]
    offered = desk.languages or ("en",)
    if events:
        latest = max(events, key=lambda e: e.at)
        if latest.notice.language in offered:
            return latest.notice.language
    return offered[0]


def proof_html(event: ConsentEvent) -> str:
    """The proof of one record: script, version, hash, text as read, agent, call, time."""
    e = html.escape
    n = event.notice
    look = theme.STATE_LOOKS[event.state]
    rows = [
        ("State", f"{look.label} · {labels.CHANNELS[event.channel]}"),
        ("Time", labels.date_time(event.at)),
        ("Script", f"{n.script_id} v{n.version} ({n.language.upper()})"),
        ("SHA-256", n.sha256),
        ("Agent", event.agent),
        ("Call", event.call_id or "no call"),
        ("How", labels.METHODS[event.method]),
        ("Basis", f"{event.lawful_basis} · {event.jurisdiction.upper()}"),
    ]
    if event.valid_until is not None:
        rows.append(("Valid until", labels.date_time(event.valid_until)))
    if event.corrects is not None:
        rows.append(("Corrects", f"{event.corrects} — {event.correction_reason or ''}"))
    table = "".join(
        f"<tr><td style='padding-right:8px'><b>{e(k)}</b></td><td>{e(v)}</td></tr>" for k, v in rows
    )
    text = "<br>".join(e(line) for line in n.text.splitlines())
    return (
        f"<table cellspacing=0 cellpadding=1>{table}</table>"
        f"<p><b>Text as read:</b><br><i>{text}</i></p>"
    )


def in_our_records(status: SubjectStatus) -> bool:
    """Whether the caller is known here: a customer profile, any consent record or
    any privacy request for the number. Otherwise the caller is plainly unknown
    (not "a customer who was never asked")."""
    subject = status.subject
    return bool(
        subject.customer_ref
        or subject.display_name
        or status.requests
        or any(cell.event is not None for cell in status.cells)
    )
