"""Correction of a record, and the identity check of a call."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QButtonGroup,
    QLabel,
    QLineEdit,
    QRadioButton,
    QWidget,
)

from consentdesk.domain import rules
from consentdesk.domain.capture import consent_event
from consentdesk.domain.model import (
    ConsentEvent,
    ConsentState,
    DomainError,
    Receipt,
    SubjectStatus,
)
from consentdesk.domain.scripts import RenderedScript, rendered_notice
from consentdesk.gui import labels
from consentdesk.gui.flows.base import (
    GENERAL_CHECK,
    FlowEnv,
    FlowPage,
    Outcome,
    capture_all,
    make_button,
    receipts_word,
)
from consentdesk.gui.widgets import WrappingCheckBox, section_title


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
            capture_all([event], self.env.number),
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
