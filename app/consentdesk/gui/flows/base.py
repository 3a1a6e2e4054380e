"""What every capture flow shares: the caller it was started for, the page frame
(title, body, banner, buttons), the script section and the capture of consent events.

A flow shows the disclosure script and records nothing until the agent records
the customer's answer. The records are built (with their ids and times) when
the answer is given and then sent to the backend on the worker; a retry sends
the very same records, which the backend accepts idempotently. "Recorded" is
only said once the backend has returned its receipt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from consentdesk.domain.backend import Backend
from consentdesk.domain.capture import consent_event
from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.model import (
    Channel,
    CollectionMethod,
    ConsentEvent,
    ConsentState,
    DomainError,
    PrivacyRequest,
    Purpose,
    Receipt,
    RequestType,
    SubjectStatus,
)
from consentdesk.domain.scripts import (
    RenderedScript,
    Script,
    ScriptKind,
    covers,
    render,
    script_context,
    select_script,
)
from consentdesk.gui import labels
from consentdesk.gui.caller_view import in_our_records
from consentdesk.gui.calls import Call, CallController
from consentdesk.gui.desk import Desk
from consentdesk.gui.flows.layout import FlowColumn, ShortcutGuard, guard_shortcuts
from consentdesk.gui.flows.script_view import ScriptView
from consentdesk.gui.tasks import describe_error
from consentdesk.gui.widgets import Banner, ConfirmBar, scaled_font

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
    def known(self) -> bool:
        """The caller is in our records (else: a new caller, nothing to match)."""
        return in_our_records(self.status)

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
        outer.setSpacing(4)
        head = self.head = QHBoxLayout()
        title = QLabel(self.title_text)
        title.setFont(scaled_font(title, 1.25, bold=True))
        title.setAccessibleName(self.title_text)
        hint = QLabel("Esc cancels")
        hint.setFont(scaled_font(hint, 0.85))
        hint.setEnabled(False)
        head.addWidget(title, 1)
        head.addWidget(hint, 0, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        outer.addLayout(head)
        self._guard = ShortcutGuard(self)
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
        self.column = FlowColumn(self.scroll_area)
        outer.addWidget(self.column, 1)
        self.banner = Banner(f"{self.title_text} status")
        outer.addWidget(self.banner)
        self.question = ConfirmBar(f"{self.title_text}: discard?")
        outer.addWidget(self.question)
        self.buttons = QGridLayout()
        self.buttons.setSpacing(6)
        outer.addLayout(self.buttons)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Cancel and record nothing (Esc)")
        self.cancel_button.setAccessibleName("Cancel")
        self.cancel_button.clicked.connect(self.cancel)

    # --- flow control ------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        guard_shortcuts(self, self._guard)
        super().showEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            event.accept()
            if self.question.asking:
                self.question.dismiss()  # Esc on the question keeps the form
            else:
                self.cancel()
            return
        super().keyPressEvent(event)

    @property
    def holds_work(self) -> bool:
        """Closing this page would throw away something the agent prepared."""
        return True

    @property
    def call_ended(self) -> bool:
        """The call this form was opened on has ended (after-call work)."""
        env = self.env
        if env is None or env.call_id is None:
            return False
        active = env.calls.active
        return active is not None and active.call_id == env.call_id and not active.is_live

    def cancel(self) -> None:
        """Esc / Cancel: leave without recording (not while a record is in flight);
        after the call has ended, only once the agent confirmed the discard."""
        if self.in_flight:
            self.banner.busy("Still recording — wait for the ledger to confirm.")
            return
        if self.holds_work and self.call_ended:
            self.ask_discard("The call has ended.")
            return
        self.nothing_recorded.emit("Cancelled — nothing recorded.")
        self.closed.emit()

    def ask_discard(self, reason: str, then: Callable[[], None] | None = None) -> None:
        """Ask before throwing the form away; on yes, close it and run *then*."""
        if self.in_flight:
            self.banner.busy("Still recording — wait for the ledger to confirm.")
            return
        self.question.ask(
            f"{reason} Discard this form? Nothing in it is recorded.",
            "Discard form",
            "Keep form",
            lambda: self._discard(then),
        )

    def _discard(self, then: Callable[[], None] | None) -> None:
        self.nothing_recorded.emit("Form discarded — nothing recorded.")
        self.closed.emit()
        if then is not None:
            then()

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
        self.script_view.seen_changed.connect(self._script_seen)
        self.read_aloud = QCheckBox("I have &read the text above aloud")
        self.read_aloud.setAccessibleName("Read aloud")
        self.read_aloud.toggled.connect(self._read_aloud_toggled)
        self.script_region = QWidget()
        self.script_region.setAccessibleName("Read to the customer")
        region = QVBoxLayout(self.script_region)
        region.setContentsMargins(0, 4, 0, 0)
        region.setSpacing(4)
        region.addWidget(self.script_view, 1)
        region.addWidget(self.read_aloud)
        self._script_seen(False)

    def add_script_section(self) -> None:
        """The language in the title row; the script and its tick below the choices,
        with all the height they need (script first)."""
        lang_label = QLabel("&Language")
        lang_label.setBuddy(self.language)
        self.head.insertWidget(1, lang_label)
        self.head.insertWidget(2, self.language)
        self.column.set_script(self.script_region, self.script_height)

    def script_height(self, width: int) -> int:
        region = self.script_region.layout()
        assert region is not None
        m = region.contentsMargins()
        tick = self.read_aloud.sizeHint().height()
        return self.script_view.needed_height(width) + region.spacing() + tick + m.top()

    def _script_seen(self, seen: bool) -> None:
        """The tick is given only once every line of the script has been on screen."""
        self.read_aloud.setEnabled(seen and not self.in_flight)
        self.read_aloud.setToolTip(
            "Tick once the customer has heard the whole text"
            if seen
            else "Available once the whole script has been on screen: scroll through it"
        )

    def _read_aloud_toggled(self, checked: bool) -> None:
        if checked and not self.script_view.seen_all:
            self.read_aloud.setChecked(False)  # never ticked for text not shown
            return
        self.update_buttons()

    def set_inputs_enabled(self, enabled: bool) -> None:
        super().set_inputs_enabled(enabled)
        self.script_region.setEnabled(enabled)
        self._script_seen(self.script_view.seen_all)

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
            problem = str(exc)
            if "{{agent_name}}" in problem and not self.desk.agent_name:
                problem = (
                    "This script says your name to the customer, and no name is set: "
                    "give it in Settings (Agent name) first."
                )
            self.script_view.show_script(None, problem)
        else:
            self.script_view.show_script(rendered)
        self.read_aloud.setChecked(False)
        self.column.arrange()
        QTimer.singleShot(0, self.column, self.column.arrange)  # again, once laid out
        self.update_buttons()

    def render_script(self) -> RenderedScript | None:
        raise NotImplementedError

    def update_buttons(self) -> None:
        raise NotImplementedError

    @property
    def ready(self) -> bool:
        return self.script_view.rendered is not None and self.read_aloud.isChecked()


def capture_all(events: Sequence[ConsentEvent], number: str) -> Callable[[Backend], Any]:
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

        self.submit(capture_all(events, self.env.number), busy=busy, done=done, label=label)
