"""Consent and withdrawal flows."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from consentdesk.domain.model import (
    CellStatus,
    Channel,
    ConsentState,
    LawfulBasis,
    Purpose,
    SubjectStatus,
)
from consentdesk.domain.scripts import (
    RenderedScript,
    ScriptKind,
)
from consentdesk.gui import labels
from consentdesk.gui.desk import Desk
from consentdesk.gui.flows.base import (
    CaptureFlow,
    FlowEnv,
    make_button,
    pairs_phrase,
)
from consentdesk.gui.widgets import WrappingCheckBox, section_title


class ConsentFlow(CaptureFlow):
    """Ask for consent: purposes and channels, the script, Agreed / Declined / unsure."""

    title_text = "Ask for consent"
    kind = ScriptKind.CONSENT

    def __init__(
        self,
        env: FlowEnv,
        *,
        purposes: Sequence[str] = (),
        channels: Sequence[Channel] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(env, parent)
        self.purpose_boxes: dict[str, WrappingCheckBox] = {}
        self.channel_boxes: dict[Channel, QCheckBox] = {}
        offered = [p for p in env.desk.visible_purposes() if p.lawful_basis == LawfulBasis.CONSENT]
        self.purposes = {p.id: p for p in offered}
        self.body.addWidget(section_title("Purposes"))
        for p in offered:
            box = WrappingCheckBox(p.title)
            box.setToolTip(p.description)
            box.setAccessibleName(f"Purpose {p.title}")
            box.setChecked(p.id in purposes)
            box.toggled.connect(self._choice_changed)
            self.purpose_boxes[p.id] = box
            self.body.addWidget(box)
        self.body.addWidget(section_title("Channels"))
        grid = QGridLayout()
        used = [ch for ch in Channel if any(ch in p.channels for p in offered)]
        for i, ch in enumerate(used):
            channel_box = QCheckBox(labels.CHANNELS[ch])
            channel_box.setAccessibleName(f"Channel {labels.CHANNELS[ch]}")
            channel_box.setChecked(ch in channels)
            channel_box.toggled.connect(self._choice_changed)
            self.channel_boxes[ch] = channel_box
            grid.addWidget(channel_box, i // 3, i % 3)
        self.body.addLayout(grid)
        self.scope = QLabel()
        self.scope.setWordWrap(True)
        self.scope.setAccessibleName("What will be recorded")
        self.body.addWidget(self.scope)
        self.add_script_section()
        self.body.addStretch(1)
        self.agreed = make_button(
            "&Agreed", "Customer agreed: record consent given (Alt+A)", "Agreed"
        )
        self.declined = make_button(
            "&Declined", "Customer declined: record a refusal (Alt+D)", "Declined"
        )
        self.unsure = make_button(
            "&Unsure", "Customer is unsure: record nothing (Alt+U)", "Customer unsure"
        )
        self.agreed.clicked.connect(lambda: self.answer(ConsentState.GIVEN))
        self.declined.clicked.connect(lambda: self.answer(ConsentState.REFUSED))
        self.unsure.clicked.connect(self.customer_unsure)
        self.answer_buttons = (self.agreed, self.declined)
        # One row: the answers stay on screen with the whole script above them.
        self.add_buttons(self.agreed, self.declined, self.unsure, self.cancel_button, columns=4)
        self.refresh()

    def first_focus(self) -> QWidget | None:
        return self.read_aloud if self.pairs() else next(iter(self.purpose_boxes.values()), None)

    def selected_purposes(self) -> list[Purpose]:
        return [self.purposes[pid] for pid, box in self.purpose_boxes.items() if box.isChecked()]

    def selected_channels(self) -> list[Channel]:
        return [ch for ch, box in self.channel_boxes.items() if box.isChecked()]

    def pairs(self) -> list[tuple[str, Channel]]:
        chans = self.selected_channels()
        return [(p.id, ch) for p in self.selected_purposes() for ch in chans if ch in p.channels]

    def _choice_changed(self) -> None:
        self.refresh()

    def render_script(self) -> RenderedScript | None:
        pairs = self.pairs()
        titles = {p.id: p.title for p in self.purposes.values()}
        self.scope.setText(
            f"Records {len(pairs)} answer{'s' if len(pairs) != 1 else ''}: "
            f"{pairs_phrase(titles, pairs)}"
            if pairs
            else "Tick at least one purpose and a channel it uses."
        )
        if not pairs:
            return None
        purposes = [p for p in self.selected_purposes() if any(pp == p.id for pp, _ in pairs)]
        channels = [ch for ch in self.selected_channels() if any(c == ch for _, c in pairs)]
        return self.render_for(purposes, channels)

    def set_inputs_enabled(self, enabled: bool) -> None:
        self.unsure.setEnabled(enabled)
        super().set_inputs_enabled(enabled)

    def customer_unsure(self) -> None:
        self.nothing_recorded.emit("Customer unsure — nothing recorded.")
        self.closed.emit()

    def answer(self, state: ConsentState) -> None:
        catalogue = self.desk.catalogue
        if catalogue is None:
            return
        what = "consent given" if state == ConsentState.GIVEN else "consent refused"
        self.capture(
            catalogue,
            state,
            what,
            busy="Recording the customer's answer…",
            label="capture consent",
        )


class WithdrawalFlow(CaptureFlow):
    """Withdraw consent per purpose and channel, or a whole group, with the script."""

    title_text = "Withdraw consent"
    kind = ScriptKind.WITHDRAWAL

    def __init__(
        self,
        env: FlowEnv,
        *,
        cells: Sequence[tuple[str, Channel]] = (),
        group: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(env, parent)
        catalogue = env.desk.catalogue
        assert catalogue is not None
        self.catalogue = catalogue
        self.boxes: dict[tuple[str, Channel], WrappingCheckBox] = {}
        given = withdrawable_cells(env.status, env.desk)
        self.body.addWidget(section_title("Consents to withdraw"))
        if not given:
            none = QLabel("No consent is currently given — there is nothing to withdraw.")
            none.setWordWrap(True)
            self.body.addWidget(none)
        groups: dict[str, list[CellStatus]] = {}
        for cell in given:
            groups.setdefault(catalogue.get(cell.purpose).group, []).append(cell)
        for grp, cells_in_group in groups.items():
            title = labels.group_title(grp)
            head = QHBoxLayout()
            head.addWidget(QLabel(f"<b>{title}</b>"), 1)
            select_all = QPushButton(f"Select all ({len(cells_in_group)})")
            select_all.setFlat(True)
            select_all.setToolTip(f"Tick every {title.lower()} consent")
            select_all.setAccessibleName(f"Select all {title}")
            select_all.clicked.connect(lambda _=False, g=grp: self.select_group(g))
            head.addWidget(select_all)
            self.body.addLayout(head)
            for cell in cells_in_group:
                p = catalogue.get(cell.purpose)
                since = f" (given {labels.short_date(cell.event.at)})" if cell.event else ""
                box = WrappingCheckBox(f"{p.title} — {labels.CHANNELS[cell.channel]}{since}")
                box.setAccessibleName(f"Withdraw {p.title} by {labels.CHANNELS[cell.channel]}")
                key = (cell.purpose, cell.channel)
                box.setChecked(key in cells or (group is not None and p.group == group))
                box.toggled.connect(self.refresh)
                self.boxes[key] = box
                self.body.addWidget(box)
        self.add_script_section()
        self.body.addStretch(1)
        self.record = make_button(
            "Record &withdrawal", "Customer withdraws: record it now (Alt+W)", "Record withdrawal"
        )
        self.record.clicked.connect(self.withdraw)
        self.answer_buttons = (self.record,)
        self.add_buttons(self.record, self.cancel_button)
        self.refresh()

    def first_focus(self) -> QWidget | None:
        return self.read_aloud if self.selected() else next(iter(self.boxes.values()), None)

    def select_group(self, group: str) -> None:
        for (purpose, _), box in self.boxes.items():
            if self.catalogue.get(purpose).group == group:
                box.setChecked(True)

    def selected(self) -> list[tuple[str, Channel]]:
        return [key for key, box in self.boxes.items() if box.isChecked()]

    pairs = selected

    def render_script(self) -> RenderedScript | None:
        chosen = self.selected()
        if not chosen:
            return None
        purposes = [self.catalogue.get(p) for p in dict.fromkeys(p for p, _ in chosen)]
        channels = [ch for ch in Channel if any(c == ch for _, c in chosen)]
        return self.render_for(purposes, channels)

    def withdraw(self) -> None:
        self.capture(
            self.catalogue,
            ConsentState.WITHDRAWN,
            "consent withdrawn",
            busy="Recording the withdrawal…",
            label="capture withdrawal",
        )


def withdrawable_cells(status: SubjectStatus, desk: Desk) -> list[CellStatus]:
    """Cells where consent is currently given, in catalogue order."""
    visible = {p.id for p in desk.visible_purposes()}
    return [c for c in status.cells if c.state == ConsentState.GIVEN and c.purpose in visible]
