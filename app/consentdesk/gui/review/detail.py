"""Detail pane: the full proof of one action.

The text exactly as the agent saw it with its hash check against the script
registry, the action's place in its call, the customer's history, the request
behind a request action, and the QA flags with Flag / Resolve.
"""

from __future__ import annotations

from datetime import tzinfo

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from consentdesk.domain import phone, rules
from consentdesk.domain.calendars import Calendar
from consentdesk.domain.review import ACTION_LABELS, ActionDetail, Flag, format_local
from consentdesk.gui import theme
from consentdesk.gui.review.models import FLAG_LOOK, ActionListModel
from consentdesk.gui.widgets import StateChip, section_title


def _table(name: str, model: ActionListModel) -> QTableView:
    view = QTableView()
    view.setAccessibleName(name)
    view.setModel(model)
    view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
    view.setEditTriggers(QTableView.EditTrigger.NoEditTriggers)
    view.verticalHeader().setVisible(False)
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    view.horizontalHeader().setStretchLastSection(True)
    view.setMinimumHeight(110)
    return view


class DetailPane(QScrollArea):
    """Signals:
    reveal_requested(): the lead wants the full number (a logged read).
    flag_requested(): flag this action.
    resolve_requested(object): resolve this flag (a :class:`Flag`).
    receipt_requested(): export a Kantara receipt for this customer.
    """

    reveal_requested = Signal()
    flag_requested = Signal()
    resolve_requested = Signal(object)
    receipt_requested = Signal()

    def __init__(self, *, tz: tzinfo, region: str = "DE", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Action detail")
        self.setWidgetResizable(True)
        self._tz = tz
        self._calendar = Calendar(tz, region)
        self.detail: ActionDetail | None = None
        self._number_shown = False
        body = QWidget()
        self.setWidget(body)
        v = QVBoxLayout(body)

        self.heading = section_title("Select an action to see its proof")
        v.addWidget(self.heading)
        self.facts = QLabel()
        self.facts.setWordWrap(True)
        self.facts.setAccessibleName("Action facts")
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        v.addWidget(self.facts)

        number_row = QHBoxLayout()
        self.number = QLabel()
        self.number.setAccessibleName("Customer number")
        self.reveal_button = QPushButton("&Reveal number")
        self.reveal_button.setToolTip("Show the full number (Alt+R); the read is logged")
        self.reveal_button.setAccessibleName("Reveal number")
        self.reveal_button.clicked.connect(self.reveal_requested)
        self.receipt_button = QPushButton("Consent recei&pt…")
        self.receipt_button.setToolTip(
            "Save a Kantara consent receipt for this customer (Alt+P); logged as a read"
        )
        self.receipt_button.setAccessibleName("Consent receipt")
        self.receipt_button.clicked.connect(self.receipt_requested)
        number_row.addWidget(self.number, 1)
        number_row.addWidget(self.reveal_button)
        number_row.addWidget(self.receipt_button)
        v.addLayout(number_row)

        self.check = StateChip()
        self.check.setAccessibleName("Script check")
        v.addWidget(self.check)
        v.addWidget(QLabel("Text exactly as the agent saw it:"))
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setAccessibleName("Text as read")
        fixed = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.text.setFont(QFont(fixed))
        self.text.setMinimumHeight(140)
        v.addWidget(self.text)

        v.addWidget(section_title("Timing within the call"))
        self.timing = QLabel()
        self.timing.setAccessibleName("Timing within the call")
        v.addWidget(self.timing)
        self.call_model = ActionListModel(tz=tz, parent=self)
        self.call_view = _table("Actions in this call", self.call_model)
        v.addWidget(self.call_view)

        self.request_label = QLabel()
        self.request_label.setWordWrap(True)
        self.request_label.setAccessibleName("Privacy request")
        v.addWidget(self.request_label)

        v.addWidget(section_title("Customer's history"))
        self.history_model = ActionListModel(tz=tz, parent=self)
        self.history_view = _table("Customer history", self.history_model)
        v.addWidget(self.history_view)

        v.addWidget(section_title("QA flags"))
        self.flags = QListWidget()
        self.flags.setAccessibleName("Flags")
        self.flags.setMaximumHeight(110)
        self.flags.currentItemChanged.connect(self._update_buttons)
        v.addWidget(self.flags)
        flag_row = QHBoxLayout()
        self.flag_button = QPushButton("&Flag…")
        self.flag_button.setToolTip("Flag this action for QA with a comment (Alt+F)")
        self.flag_button.setAccessibleName("Flag action")
        self.flag_button.clicked.connect(self.flag_requested)
        self.resolve_button = QPushButton("Re&solve flag…")
        self.resolve_button.setToolTip("Resolve the selected flag (Alt+S)")
        self.resolve_button.setAccessibleName("Resolve flag")
        self.resolve_button.clicked.connect(self._on_resolve)
        flag_row.addWidget(self.flag_button)
        flag_row.addWidget(self.resolve_button)
        flag_row.addStretch(1)
        v.addLayout(flag_row)
        self.hash = QLabel()
        self.hash.setWordWrap(True)
        self.hash.setAccessibleName("Ledger hash")
        self.hash.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        v.addWidget(self.hash)
        v.addStretch(1)
        self.show_detail(None)

    # -- filling

    def show_detail(self, detail: ActionDetail | None) -> None:
        self.detail = detail
        self._number_shown = False
        has = detail is not None
        for w in (self.reveal_button, self.receipt_button, self.flag_button):
            w.setEnabled(has)
        if detail is None:
            self.heading.setText("Select an action to see its proof")
            self.facts.clear()
            self.number.clear()
            self.text.clear()
            self.timing.clear()
            self.request_label.clear()
            self.hash.clear()
            self.check.set_state(theme.NOTICE, "No action selected.")
            self.call_model.set_rows([])
            self.history_model.set_rows([])
            self.flags.clear()
            self._update_buttons()
            return
        row = detail.row
        self.heading.setText(f"{ACTION_LABELS[row.kind]} · {row.what}")
        team = f" ({row.team})" if row.team else ""
        self.facts.setText(
            f"{format_local(row.at, self._tz, seconds=True)} · agent {row.agent}{team}"
            f" · call {row.call_id or '—'} · jurisdiction {str(row.jurisdiction or '—').upper()}"
            f" · script {row.script or '—'}"
        )
        self.number.setText(f"Customer {phone.mask(row.subject)}")
        self.receipt_button.setVisible(row.purpose is not None)
        look = theme.SUCCESS if detail.script_check.ok else theme.FAILURE
        self.check.set_state(look, detail.script_check.message)
        self.check.setProperty("verdict", detail.script_check.verdict.value)
        self.text.setPlainText(detail.notice.text if detail.notice else "(no script was read)")
        offset = detail.call_offset()
        if offset is None:
            self.timing.setText("No call id: recorded outside a call.")
        else:
            position = [a.event_id for a in detail.call_actions].index(row.event_id) + 1
            minutes, seconds = divmod(int(offset.total_seconds()), 60)
            self.timing.setText(
                f"Action {position} of {len(detail.call_actions)} recorded in this call,"
                f" {minutes:02d}:{seconds:02d} after the call's first capture."
            )
        self.call_model.set_rows(detail.call_actions)
        self.history_model.set_rows(detail.history, origin=row)
        if detail.request is not None:
            r = detail.request
            reason = f" — {r.status_reason}" if r.status_reason else ""
            self.request_label.setText(
                f"Request {r.reference}: {r.type}, {r.status}{reason}; due {r.due.isoformat()}"
                + (" (extended)" if r.extended else "")
                + "\n"
                + "\n".join(rules.explain(r, self._calendar))
            )
        else:
            self.request_label.clear()
        self.hash.setText(f"Ledger hash {detail.ledger_hash}")
        self.set_flags(detail.flags)

    def show_number(self, number: str) -> None:
        self._number_shown = True
        self.number.setText(f"Customer {phone.display(number)}")

    @property
    def number_shown(self) -> bool:
        return self._number_shown

    def set_flags(self, flags: tuple[Flag, ...]) -> None:
        self.flags.clear()
        for f in flags:
            when = format_local(f.raised_at, self._tz)
            if f.resolved:
                text = (
                    f"✓ Resolved: {f.comment} — raised by {f.raised_by} {when};"
                    f" resolved by {f.resolved_by}: {f.resolution or '(no note)'}"
                )
                look = theme.CLOSED
            else:
                text = f"⚠ Open: {f.comment} — raised by {f.raised_by} {when}"
                look = FLAG_LOOK
            item = QListWidgetItem(look.icon(), text)
            item.setData(Qt.ItemDataRole.UserRole, f)
            self.flags.addItem(item)
        open_flags = [i for i in range(self.flags.count()) if not self._flag_at(i).resolved]
        if open_flags:
            self.flags.setCurrentRow(open_flags[0])
        self._update_buttons()

    def _flag_at(self, row: int) -> Flag:
        flag = self.flags.item(row).data(Qt.ItemDataRole.UserRole)
        assert isinstance(flag, Flag)
        return flag

    def selected_flag(self) -> Flag | None:
        row = self.flags.currentRow()
        return self._flag_at(row) if row >= 0 else None

    def _update_buttons(self, *_args: object) -> None:
        flag = self.selected_flag()
        self.resolve_button.setEnabled(flag is not None and not flag.resolved)

    def _on_resolve(self) -> None:
        flag = self.selected_flag()
        if flag is not None and not flag.resolved:
            self.resolve_requested.emit(flag)
