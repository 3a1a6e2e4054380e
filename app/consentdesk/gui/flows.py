"""Capture flows shown in the caller panel: consent, withdrawal, privacy request,
correction, identity check and the one-time agent id prompt.

A flow shows the disclosure script and records nothing until the agent records
the customer's answer. The records are built (with their ids and times) when
the answer is given and then sent to the backend on the worker; a retry sends
the very same records, which the backend accepts idempotently. "Recorded" is
only said once the backend has returned its receipt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from consentdesk.domain import rules
from consentdesk.domain.backend import Backend
from consentdesk.domain.capture import MAX_NOTE_CHARS, consent_event, privacy_request
from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.model import (
    CellStatus,
    Channel,
    CollectionMethod,
    ConsentEvent,
    ConsentState,
    DomainError,
    Jurisdiction,
    LawfulBasis,
    NewRequest,
    PrivacyRequest,
    Purpose,
    Receipt,
    RequestType,
    SubjectStatus,
    Verification,
    VerificationResult,
)
from consentdesk.domain.references import new_reference
from consentdesk.domain.scripts import (
    Block,
    RenderedScript,
    Script,
    ScriptKind,
    covers,
    render,
    rendered_notice,
    script_context,
    select_script,
)
from consentdesk.gui import labels, theme
from consentdesk.gui.calls import Call, CallController
from consentdesk.gui.desk import Desk
from consentdesk.gui.tasks import describe_error
from consentdesk.gui.widgets import Banner, WrappingCheckBox, scaled_font, section_title

log = logging.getLogger("consentdesk.gui.flows")

GENERAL_CHECK = RequestType.ACCESS  # the identity check of the call uses the access checklist


@dataclass(frozen=True, slots=True)
class FlowEnv:
    """Everything a flow needs about the caller it was started for."""

    desk: Desk
    calls: CallController
    call: Call
    number: str
    status: SubjectStatus
    language: str

    @property
    def call_id(self) -> str | None:
        return self.call.call_id

    @property
    def method(self) -> CollectionMethod:
        return (
            CollectionMethod.AGENT_ASSISTED if self.call.is_lookup else CollectionMethod.VERBAL_CALL
        )

    @property
    def customer_name(self) -> str | None:
        return self.status.subject.display_name or self.call.display_name or None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a flow recorded, for the panel's confirmation and refresh."""

    summary: str
    status: SubjectStatus | None = None
    receipts: tuple[Receipt, ...] = ()
    request: PrivacyRequest | None = None
    language: str | None = None
    verified_by: str | None = None
    events: tuple[ConsentEvent, ...] = field(default=())


def receipts_word(receipts: Sequence[Receipt]) -> str:
    """'Recorded', or 'Saved' when the records still wait in an outbox to sync."""
    if any(getattr(r, "pending", False) for r in receipts):
        return "Saved on this desk (will sync)"
    return "Recorded"


def pairs_phrase(catalogue_titles: dict[str, str], pairs: Sequence[tuple[str, Channel]]) -> str:
    by_purpose: dict[str, list[str]] = {}
    for purpose, channel in pairs:
        by_purpose.setdefault(purpose, []).append(labels.CHANNELS[channel])
    return "; ".join(
        f"{catalogue_titles.get(p, p)} by {', '.join(chs)}" for p, chs in by_purpose.items()
    )


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


class FlowPage(QWidget):
    """Frame of a flow: title, scrolling body, inline banner, buttons.

    Esc cancels. Subclasses fill ``self.body`` and ``self.buttons``.

    Signals:
        closed(): the flow is over and the caller panel returns.
        recorded(object): an :class:`Outcome`, after the backend confirmed it.
        nothing_recorded(str): the flow ended without a record (why).
    """

    closed = Signal()
    recorded = Signal(object)
    nothing_recorded = Signal(str)

    title_text = ""

    def __init__(self, env: FlowEnv | None, desk: Desk, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.env = env
        self.desk = desk
        self.in_flight = False
        self._clear_token = object()
        self.setAccessibleName(self.title_text)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(6)
        head = QHBoxLayout()
        title = QLabel(self.title_text)
        title.setFont(scaled_font(title, 1.25, bold=True))
        title.setAccessibleName(self.title_text)
        hint = QLabel("Esc cancels")
        hint.setFont(scaled_font(hint, 0.85))
        hint.setEnabled(False)
        head.addWidget(title, 1)
        head.addWidget(hint, 0, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        outer.addLayout(head)
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        inner = QWidget()
        self.body = QVBoxLayout(inner)
        self.body.setContentsMargins(0, 0, 4, 0)
        self.body.setSpacing(8)
        self.scroll_area.setWidget(inner)
        self.inputs = inner
        outer.addWidget(self.scroll_area, 1)
        self.banner = Banner(f"{self.title_text} status")
        outer.addWidget(self.banner)
        self.buttons = QGridLayout()
        self.buttons.setSpacing(6)
        outer.addLayout(self.buttons)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Cancel and record nothing (Esc)")
        self.cancel_button.setAccessibleName("Cancel")
        self.cancel_button.clicked.connect(self.cancel)

    # --- flow control ------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            event.accept()
            self.cancel()
            return
        super().keyPressEvent(event)

    def cancel(self) -> None:
        """Esc / Cancel: leave without recording (not while a record is in flight)."""
        if self.in_flight:
            self.banner.busy("Still recording — wait for the ledger to confirm.")
            return
        self.nothing_recorded.emit("Cancelled — nothing recorded.")
        self.closed.emit()

    def submit(
        self,
        job: Callable[[Backend], Any],
        *,
        busy: str,
        done: Callable[[Any], None],
        label: str,
    ) -> None:
        """Run *job* on the worker; keep the caller on screen until it returns."""
        self.in_flight = True
        self.set_inputs_enabled(False)
        self.banner.busy(busy)
        if self.env is not None:
            self.env.calls.block_clear(self._clear_token)

        def finish() -> None:
            self.in_flight = False
            if self.env is not None:
                self.env.calls.unblock_clear(self._clear_token)

        def ok(result: Any) -> None:
            finish()
            self.banner.clear()
            done(result)

        def failed(exc: BaseException) -> None:
            finish()
            self.set_inputs_enabled(True)
            retry = lambda: self.submit(job, busy=busy, done=done, label=label)  # noqa: E731
            self.banner.error(f"Not recorded: {describe_error(exc)}", retry)
            self.banner.retry.setFocus()

        self.desk.runner.call(job, on_success=ok, on_failure=failed, label=label)

    def set_inputs_enabled(self, enabled: bool) -> None:
        self.inputs.setEnabled(enabled)

    def add_buttons(self, *buttons: QPushButton, columns: int = 2) -> None:
        for i, button in enumerate(buttons):
            self.buttons.addWidget(button, i // columns, i % columns)

    def first_focus(self) -> QWidget | None:
        return None


def make_button(text: str, tooltip: str, name: str, *, primary: bool = False) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tooltip)
    button.setAccessibleName(name)
    button.setMinimumHeight(button.sizeHint().height() + 6)
    if primary:
        button.setDefault(False)
        button.setAutoDefault(False)
    return button


class ScriptedFlow(FlowPage):
    """A flow that reads a script: language choice, script view, read-aloud tick."""

    kind: ScriptKind = ScriptKind.CONSENT

    def __init__(self, env: FlowEnv, parent: QWidget | None = None) -> None:
        super().__init__(env, env.desk, parent)
        self.env: FlowEnv = env
        self.language = QComboBox()
        self.language.setAccessibleName("Script language")
        self.language.setToolTip("Language the customer is addressed in")
        for code in dict.fromkeys((env.language, *env.desk.languages)):
            self.language.addItem(code.upper(), code)
        self.language.currentIndexChanged.connect(self.refresh)
        self.script_view = ScriptView()
        self.read_aloud = QCheckBox("I have &read the text above aloud")
        self.read_aloud.setToolTip("Tick once the customer has heard the whole text (Alt+R)")
        self.read_aloud.setAccessibleName("Read aloud")
        self.read_aloud.toggled.connect(self.update_buttons)

    def add_script_section(self) -> None:
        row = QHBoxLayout()
        row.addWidget(section_title("Read to the customer"), 1)
        lang_label = QLabel("&Language")
        lang_label.setBuddy(self.language)
        row.addWidget(lang_label)
        row.addWidget(self.language)
        self.body.addLayout(row)
        self.body.addWidget(self.script_view)
        self.body.addWidget(self.read_aloud)

    @property
    def chosen_language(self) -> str:
        return str(self.language.currentData())

    def pick_script(self, candidates: Sequence[Script], **criteria: Any) -> Script:
        return select_script(
            candidates,
            kind=self.kind,
            language=self.chosen_language,
            fallback=self.desk.fallback_languages,
            jurisdiction=criteria.pop("jurisdiction", self.desk.jurisdiction),
            **criteria,
        )

    def refresh(self) -> None:
        """Re-render the script after any choice changed; the tick must be given again."""
        try:
            rendered = self.render_script()
        except DomainError as exc:
            self.script_view.show_script(None, str(exc))
        else:
            self.script_view.show_script(rendered)
        self.read_aloud.setChecked(False)
        self.update_buttons()

    def render_script(self) -> RenderedScript | None:
        raise NotImplementedError

    def update_buttons(self) -> None:
        raise NotImplementedError

    @property
    def ready(self) -> bool:
        return self.script_view.rendered is not None and self.read_aloud.isChecked()


def _capture_all(events: Sequence[ConsentEvent], number: str) -> Callable[[Backend], Any]:
    def job(backend: Backend) -> tuple[tuple[Receipt, ...], SubjectStatus]:
        receipts = tuple(backend.capture(e) for e in events)
        return receipts, backend.status(number)

    return job


class CaptureFlow(ScriptedFlow):
    """A scripted flow that records one consent event per chosen (purpose, channel) pair."""

    answer_buttons: tuple[QPushButton, ...] = ()

    def pairs(self) -> list[tuple[str, Channel]]:
        raise NotImplementedError

    def render_for(
        self, purposes: Sequence[Purpose], channels: Sequence[Channel]
    ) -> RenderedScript:
        """Render the script that covers every purpose, for these purposes and channels."""
        candidates = [s for s in self.desk.scripts if all(covers(s, p.id) for p in purposes)]
        script = self.pick_script(candidates)
        return render(
            script,
            script_context(
                language=script.language,
                company=self.desk.company,
                agent_name=self.desk.agent_name,
                customer_name=self.env.customer_name,
                purposes=purposes,
                channels=channels,
            ),
        )

    def update_buttons(self) -> None:
        ok = self.ready and bool(self.pairs()) and not self.in_flight
        for button in self.answer_buttons:
            button.setEnabled(ok)

    def set_inputs_enabled(self, enabled: bool) -> None:
        super().set_inputs_enabled(enabled)
        self.cancel_button.setEnabled(enabled)
        if enabled:
            self.update_buttons()
        else:
            for button in self.answer_buttons:
                button.setEnabled(False)

    def capture(
        self, catalogue: Catalogue, state: ConsentState, what: str, *, busy: str, label: str
    ) -> None:
        """Record *state* for every chosen pair; the summary reads "<what> — <scope>"."""
        rendered = self.script_view.rendered
        if not self.ready or rendered is None:
            return
        chosen = self.pairs()
        try:
            events = [
                consent_event(
                    catalogue=catalogue,
                    purpose=purpose,
                    channel=channel,
                    state=state,
                    rendered=rendered,
                    agent=self.desk.agent,
                    jurisdiction=self.desk.jurisdiction,
                    call_id=self.env.call_id,
                    method=self.env.method,
                    subject=self.env.number,
                )
                for purpose, channel in chosen
            ]
        except DomainError as exc:
            self.banner.error(f"Not recorded: {exc}")
            return
        scope = pairs_phrase({p.id: p.title for p in catalogue}, chosen)
        language = self.chosen_language

        def done(result: tuple[tuple[Receipt, ...], SubjectStatus]) -> None:
            receipts, status = result
            n = len(receipts)
            self.recorded.emit(
                Outcome(
                    summary=f"{receipts_word(receipts)}: {what} — {scope} "
                    f"({n} record{'s' if n != 1 else ''}).",
                    status=status,
                    receipts=receipts,
                    language=language,
                    events=tuple(events),
                )
            )
            self.closed.emit()

        self.submit(_capture_all(events, self.env.number), busy=busy, done=done, label=label)


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
            "Customer &unsure", "Customer is unsure: record nothing (Alt+U)", "Customer unsure"
        )
        self.agreed.clicked.connect(lambda: self.answer(ConsentState.GIVEN))
        self.declined.clicked.connect(lambda: self.answer(ConsentState.REFUSED))
        self.unsure.clicked.connect(self.customer_unsure)
        self.answer_buttons = (self.agreed, self.declined)
        self.add_buttons(self.agreed, self.declined, self.unsure, self.cancel_button)
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


class RequestFlow(ScriptedFlow):
    """Take a privacy request: type, identity checklist, due date, note; then the
    reference, large, to read back."""

    title_text = "Privacy request"
    kind = ScriptKind.REQUEST

    def __init__(
        self,
        env: FlowEnv,
        *,
        request_type: RequestType | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(env, parent)
        self.result: PrivacyRequest | None = None
        self.due_date: date = env.desk.today()
        # Made now: the script read to the caller already names the reference.
        self.reference_text = new_reference()
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.jurisdiction = QComboBox()
        self.jurisdiction.setAccessibleName("Jurisdiction")
        for j in Jurisdiction:
            self.jurisdiction.addItem(labels.JURISDICTIONS[j], j)
        self.jurisdiction.setCurrentIndex(self.jurisdiction.findData(env.desk.jurisdiction))
        self.type = QComboBox()
        self.type.setAccessibleName("Request type")
        self.type.setToolTip("What the customer asks for")
        j_label = QLabel("&Jurisdiction")
        j_label.setBuddy(self.jurisdiction)
        t_label = QLabel("&Type")
        t_label.setBuddy(self.type)
        form.addRow(t_label, self.type)
        form.addRow(j_label, self.jurisdiction)
        self.body.addLayout(form)
        self.reference_preview = reference_label(self.reference_text)
        self.body.addWidget(self.reference_preview)
        self.due = QLabel()
        self.due.setWordWrap(True)
        self.due.setAccessibleName("Due date")
        self.due.setFont(scaled_font(self.due, 1.0, bold=True))
        self.body.addWidget(self.due)
        self.body.addWidget(section_title("Identity check"))
        self.checklist_box = QVBoxLayout()
        self.body.addLayout(self.checklist_box)
        self.checks: list[WrappingCheckBox] = []
        self.no_check = QLabel()
        self.no_check.setWordWrap(True)
        self.body.addWidget(self.no_check)
        self.add_script_section()
        note_label = QLabel("&Note (optional)")
        self.note = QPlainTextEdit()
        self.note.setAccessibleName("Note")
        self.note.setPlaceholderText("What exactly the customer asked for")
        self.note.setTabChangesFocus(True)
        self.note.setFixedHeight(self.note.fontMetrics().lineSpacing() * 4 + 12)
        note_label.setBuddy(self.note)
        self.body.addWidget(note_label)
        self.body.addWidget(self.note)
        self.body.addStretch(1)
        self.record = make_button(
            "Record &request",
            "Record the request and show its reference (Alt+R)",
            "Record request",
        )
        self.read_aloud.setText("I have read the text above &aloud")
        self.read_aloud.setToolTip("Tick once the customer has heard the whole text (Alt+A)")
        self.record.clicked.connect(self.record_request)
        self.add_buttons(self.record, self.cancel_button)
        self.jurisdiction.currentIndexChanged.connect(self._jurisdiction_changed)
        self.type.currentIndexChanged.connect(self._type_changed)
        self._fill_types(request_type)

    def first_focus(self) -> QWidget | None:
        return self.type

    @property
    def chosen_jurisdiction(self) -> Jurisdiction:
        return Jurisdiction(self.jurisdiction.currentData())

    @property
    def chosen_type(self) -> RequestType | None:
        data = self.type.currentData()
        return RequestType(data) if data is not None else None

    def _fill_types(self, preferred: RequestType | None = None) -> None:
        current = preferred or self.chosen_type
        self.type.blockSignals(True)
        self.type.clear()
        for t in rules.rule_for(self.chosen_jurisdiction).request_types:
            self.type.addItem(labels.REQUEST_TYPES[t], t)
        index = self.type.findData(current) if current is not None else -1
        self.type.setCurrentIndex(max(index, 0))
        self.type.blockSignals(False)
        self._type_changed()

    def _jurisdiction_changed(self) -> None:
        self._fill_types()

    def _type_changed(self) -> None:
        for box in self.checks:
            self.checklist_box.removeWidget(box)
            box.deleteLater()
        self.checks = []
        t = self.chosen_type
        j = self.chosen_jurisdiction
        if t is None:
            return
        items = rules.verification_checklist(j, t)
        verified = self.env.call.verified_by
        for item in items:
            box = WrappingCheckBox(item)
            box.setChecked(bool(verified))
            box.toggled.connect(self.update_buttons)
            self.checklist_box.addWidget(box)
            self.checks.append(box)
        if items:
            self.no_check.setText(
                f"Identity already checked on this call ({verified})."
                if verified
                else "Tick each point the caller confirmed. Without all ticks the request is "
                "recorded with its identity still to be verified."
            )
        else:
            self.no_check.setText(
                f"No identity verification is needed for {labels.REQUEST_TYPES[t].lower()} "
                f"under {rules.rule_for(j).title}."
            )
        today = self.desk.today()
        due = rules.due_date(j, t, today, cal=self.desk.calendar)
        ack = rules.acknowledge_by(j, t, today, self.desk.calendar)
        text = f"Answer due by {labels.long_date(due)} ({(due - today).days} days; "
        text += f"{rules.rule_for(j).citation})"
        if ack is not None:
            text += f". Confirm receipt by {labels.long_date(ack)}"
        self.due.setText(text + ".")
        self.due_date = due
        self.refresh()

    def render_script(self) -> RenderedScript | None:
        t = self.chosen_type
        if t is None:
            return None
        script = self.pick_script(
            self.desk.scripts, request_type=t, jurisdiction=self.chosen_jurisdiction
        )
        return render(
            script,
            script_context(
                language=script.language,
                company=self.desk.company,
                agent_name=self.desk.agent_name,
                customer_name=self.env.customer_name,
                reference=self.reference_text,
                due=self.due_date,
            ),
        )

    def update_buttons(self) -> None:
        self.record.setEnabled(self.ready and self.chosen_type is not None and not self.in_flight)

    def set_inputs_enabled(self, enabled: bool) -> None:
        super().set_inputs_enabled(enabled)
        self.cancel_button.setEnabled(enabled)
        if enabled:
            self.update_buttons()
        else:
            self.record.setEnabled(False)

    def verification(self) -> Verification | None:
        t, j = self.chosen_type, self.chosen_jurisdiction
        assert t is not None
        if not rules.needs_verification(j, t):
            return Verification("not required", VerificationResult.NOT_REQUIRED, self.desk.agent)
        if self.checks and all(b.isChecked() for b in self.checks):
            method = "; ".join(b.full_text for b in self.checks)
            return Verification(method, VerificationResult.PASSED, self.desk.agent)
        return None

    def record_request(self) -> None:
        rendered = self.script_view.rendered
        t = self.chosen_type
        if not self.ready or rendered is None or t is None:
            return
        note = self.note.toPlainText()
        if len(note) > MAX_NOTE_CHARS:
            self.banner.error(f"The note is over {MAX_NOTE_CHARS} characters.")
            return
        verification = self.verification()
        try:
            new = privacy_request(
                subject=self.env.number,
                type=t,
                jurisdiction=self.chosen_jurisdiction,
                agent=self.desk.agent,
                call_id=self.env.call_id,
                note=note,
                verification=verification,
                rendered=rendered,
                reference=self.reference_text,
                tz=self.desk.calendar.tz,
            )
        except DomainError as exc:
            self.banner.error(f"Not recorded: {exc}")
            return
        language = self.chosen_language
        verified_by = (
            "request checklist"
            if verification is not None and verification.result == VerificationResult.PASSED
            else None
        )

        def job(backend: Backend) -> tuple[PrivacyRequest, SubjectStatus]:
            return backend.create_request(new), backend.status(self.env.number)

        def done(result: tuple[PrivacyRequest, SubjectStatus]) -> None:
            request, status = result
            self.result = request
            pending = " (identity still to be verified)" if verification is None else ""
            self.recorded.emit(
                Outcome(
                    summary=f"Recorded: {labels.REQUEST_TYPES[request.type]} request "
                    f"{request.reference}, due {labels.long_date(request.due)}{pending}.",
                    status=status,
                    request=request,
                    language=language,
                    verified_by=verified_by,
                )
            )
            self.show_reference(request, new)

        self.submit(job, busy="Recording the request…", done=done, label="create request")

    def show_reference(self, request: PrivacyRequest, new: NewRequest) -> None:
        """Swap the form for the reference, large, to read back to the caller."""
        body = QWidget()
        box = QVBoxLayout(body)
        box.setSpacing(10)
        done_title = QLabel(f"✔ Recorded: {labels.REQUEST_TYPES[request.type]} request")
        done_title.setFont(scaled_font(done_title, 1.1, bold=True))
        done_title.setStyleSheet(f"color: {theme.SUCCESS.color().name()};")
        box.addWidget(done_title)
        box.addWidget(QLabel("Read this reference back to the caller:"))
        self.reference = reference_label(request.reference)
        box.addWidget(self.reference)
        facts = QLabel(
            f"Answer due by {labels.long_date(request.due)} "
            f"({labels.days_left_text(request.days_left(self.desk.today()))})."
            + ("" if new.verification is not None else " Identity still to be verified.")
        )
        facts.setWordWrap(True)
        box.addWidget(facts)
        box.addStretch(1)
        old = self.scroll_area.takeWidget()
        if old is not None:
            old.deleteLater()
        self.scroll_area.setWidget(body)
        self.inputs = body
        self.record.hide()
        self.cancel_button.setText("&Done")
        self.cancel_button.setToolTip("Back to the caller (Esc)")
        self.cancel_button.setAccessibleName("Done")
        self.cancel_button.setEnabled(True)
        self.cancel_button.setFocus()

    def cancel(self) -> None:
        if self.result is not None and not self.in_flight:
            self.closed.emit()  # after recording, Done/Esc just returns
            return
        super().cancel()


def reference_label(reference: str) -> QLabel:
    """The request reference, large and monospaced, to read back character by character."""
    label = QLabel(reference)
    label.setObjectName("reference")
    font = scaled_font(label, 1.9, bold=True)
    font.setFamilies(["DejaVu Sans Mono", "Consolas", "Menlo", "monospace"])
    label.setFont(font)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setAccessibleName("Request reference")
    label.setAccessibleDescription(" ".join(reference))
    label.setToolTip("Read back character by character")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setFrameShape(QFrame.Shape.StyledPanel)
    label.setMinimumHeight(label.sizeHint().height() + 12)
    return label


class CorrectionFlow(FlowPage):
    """Correct a mistaken event: a new event naming it, with a reason. Never a delete."""

    title_text = "Correct a record"

    def __init__(self, env: FlowEnv, event: ConsentEvent, parent: QWidget | None = None) -> None:
        super().__init__(env, env.desk, parent)
        self.env: FlowEnv = env
        self.target = event
        catalogue = env.desk.catalogue
        assert catalogue is not None
        p = catalogue.get(event.purpose)
        what = QLabel(
            f"{p.title} by {labels.CHANNELS[event.channel]}: "
            f"{labels.STATE_VERBS[event.state]} on {labels.date_time(event.at)} "
            f"by {event.agent} (script {event.notice.script_id} v{event.notice.version})."
        )
        what.setWordWrap(True)
        self.body.addWidget(section_title("Record to correct"))
        self.body.addWidget(what)
        self.body.addWidget(section_title("What is right"))
        self.choice = QButtonGroup(self)
        self.options: dict[ConsentState, QRadioButton] = {}
        void = QRadioButton("Recorded by mistake — make it &void")
        void.setAccessibleName("Void")
        self.options[ConsentState.VOID] = void
        for state in (ConsentState.GIVEN, ConsentState.REFUSED, ConsentState.WITHDRAWN):
            if state != event.state:
                self.options[state] = QRadioButton(f"It should be: {labels.STATE_VERBS[state]}")
                self.options[state].setAccessibleName(f"Should be {labels.STATE_VERBS[state]}")
        for radio in self.options.values():
            self.choice.addButton(radio)
            radio.toggled.connect(self.update_buttons)
            self.body.addWidget(radio)
        reason_label = QLabel("&Reason (required)")
        self.reason = QLineEdit()
        self.reason.setAccessibleName("Reason")
        self.reason.setPlaceholderText("e.g. wrong channel ticked")
        self.reason.setMaxLength(500)
        self.reason.textChanged.connect(self.update_buttons)
        reason_label.setBuddy(self.reason)
        self.body.addWidget(reason_label)
        self.body.addWidget(self.reason)
        note = QLabel("The original record stays in the ledger; this correction is added after it.")
        note.setWordWrap(True)
        note.setEnabled(False)
        self.body.addWidget(note)
        self.body.addStretch(1)
        self.record = make_button(
            "Record &correction", "Add the correction to the ledger (Alt+C)", "Record correction"
        )
        self.record.clicked.connect(self.record_correction)
        self.add_buttons(self.record, self.cancel_button)
        self.update_buttons()

    def first_focus(self) -> QWidget | None:
        return self.options[ConsentState.VOID]

    def chosen_state(self) -> ConsentState | None:
        return next((s for s, r in self.options.items() if r.isChecked()), None)

    def update_buttons(self) -> None:
        self.record.setEnabled(
            self.chosen_state() is not None
            and bool(self.reason.text().strip())
            and not self.in_flight
        )

    def set_inputs_enabled(self, enabled: bool) -> None:
        super().set_inputs_enabled(enabled)
        self.cancel_button.setEnabled(enabled)
        if enabled:
            self.update_buttons()
        else:
            self.record.setEnabled(False)

    def _cited_script(self) -> RenderedScript:
        """The original notice, as the script that was read then."""
        n = self.target.notice
        script = next(
            (
                s
                for s in self.desk.scripts
                if (s.id, s.version, s.language) == (n.script_id, n.version, n.language)
            ),
            None,
        )
        if script is None:
            raise DomainError(f"script {n.script_id} v{n.version} ({n.language}) is not published")
        return rendered_notice(script, n)

    def record_correction(self) -> None:
        state = self.chosen_state()
        catalogue = self.desk.catalogue
        reason = self.reason.text().strip()
        if state is None or not reason or catalogue is None:
            return
        try:
            event = consent_event(
                catalogue=catalogue,
                purpose=self.target.purpose,
                channel=self.target.channel,
                state=state,
                rendered=self._cited_script(),
                agent=self.desk.agent,
                jurisdiction=self.target.jurisdiction,
                call_id=self.env.call_id,
                method=self.env.method,
                subject=self.target.subject,
                corrects=self.target.event_id,
                reason=reason,
            )
        except DomainError as exc:
            self.banner.error(f"Not recorded: {exc}")
            return

        def done(result: tuple[tuple[Receipt, ...], SubjectStatus]) -> None:
            receipts, status = result
            self.recorded.emit(
                Outcome(
                    summary=f"{receipts_word(receipts)}: correction — the record is now "
                    f"{labels.STATE_VERBS[state]} ({reason}).",
                    status=status,
                    receipts=receipts,
                    events=(event,),
                )
            )
            self.closed.emit()

        self.submit(
            _capture_all([event], self.env.number),
            busy="Recording the correction…",
            done=done,
            label="capture correction",
        )


class VerifyFlow(FlowPage):
    """Check the caller's identity for this call (kept with the call, not recorded)."""

    title_text = "Check identity"

    def __init__(self, env: FlowEnv, parent: QWidget | None = None) -> None:
        super().__init__(env, env.desk, parent)
        self.env: FlowEnv = env
        intro = QLabel("Ask the caller and tick each point they confirm.")
        intro.setWordWrap(True)
        self.body.addWidget(intro)
        self.checks: list[WrappingCheckBox] = []
        for item in rules.verification_checklist(env.desk.jurisdiction, GENERAL_CHECK):
            box = WrappingCheckBox(item)
            box.toggled.connect(self.update_buttons)
            self.checks.append(box)
            self.body.addWidget(box)
        self.body.addStretch(1)
        self.confirm = make_button(
            "Mark as &verified", "All points confirmed (Alt+V)", "Mark as verified"
        )
        self.confirm.clicked.connect(self.mark_verified)
        self.add_buttons(self.confirm, self.cancel_button)
        self.update_buttons()

    def first_focus(self) -> QWidget | None:
        return self.checks[0] if self.checks else self.confirm

    def update_buttons(self) -> None:
        self.confirm.setEnabled(all(b.isChecked() for b in self.checks))

    def mark_verified(self) -> None:
        self.env.calls.set_verified("security questions")
        self.nothing_recorded.emit("Identity verified by security questions (for this call).")
        self.closed.emit()


class AgentPrompt(FlowPage):
    """Asked once: the agent id recorded with every capture (config general.agent)."""

    title_text = "Who is capturing?"

    def __init__(self, desk: Desk, parent: QWidget | None = None) -> None:
        super().__init__(None, desk, parent)
        intro = QLabel(
            "Your agent id is recorded with every consent and request you capture. "
            "It is asked once and kept in your settings."
        )
        intro.setWordWrap(True)
        self.body.addWidget(intro)
        label = QLabel("&Agent id")
        self.agent = QLineEdit()
        self.agent.setAccessibleName("Agent id")
        self.agent.setMaxLength(64)
        self.agent.textChanged.connect(self.update_buttons)
        self.agent.returnPressed.connect(self.save)
        label.setBuddy(self.agent)
        self.body.addWidget(label)
        self.body.addWidget(self.agent)
        self.body.addStretch(1)
        self.save_button = make_button("&Save and continue", "Save the agent id (Enter)", "Save")
        self.save_button.clicked.connect(self.save)
        self.add_buttons(self.save_button, self.cancel_button)
        self.saved = False
        self.update_buttons()
        if desk.config.is_locked("general.agent"):
            self.agent.setEnabled(False)
            self.banner.info(
                "Managed by your administrator: no agent id is set for this desk. "
                "Ask IT to set one."
            )

    def first_focus(self) -> QWidget | None:
        return self.agent

    def update_buttons(self) -> None:
        self.save_button.setEnabled(bool(self.agent.text().strip()) and self.agent.isEnabled())

    def save(self) -> None:
        agent = self.agent.text().strip()
        if not agent:
            return
        try:
            self.desk.apply_settings(
                [("general.agent", agent)],
                on_failure=lambda exc: self.banner.error(
                    f"Agent id is used now but was not saved: {describe_error(exc)}"
                ),
            )
        except ValueError as exc:
            self.banner.error(str(exc))
            return
        self.saved = True
        self.closed.emit()
