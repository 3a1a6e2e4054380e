"""The privacy request flow and its reference read-back."""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from consentdesk.domain import rules
from consentdesk.domain.backend import Backend
from consentdesk.domain.capture import MAX_NOTE_CHARS, privacy_request
from consentdesk.domain.model import (
    DomainError,
    Jurisdiction,
    NewRequest,
    PrivacyRequest,
    RequestType,
    SubjectStatus,
    Verification,
    VerificationResult,
)
from consentdesk.domain.references import new_reference
from consentdesk.domain.scripts import (
    RenderedScript,
    ScriptKind,
    render,
    script_context,
)
from consentdesk.gui import labels, theme
from consentdesk.gui.flows.base import (
    FlowEnv,
    Outcome,
    ScriptedFlow,
    make_button,
)
from consentdesk.gui.widgets import WrappingCheckBox, scaled_font, section_title


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
        known = self.env.known
        items = (
            rules.verification_checklist(j, t) if known else rules.unknown_caller_checklist(j, t)
        )
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
                + ("" if known else " Not in our records: there is no account to match.")
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
        self.column.set_script(None, None)  # the script was read; the reference matters now
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

    @property
    def holds_work(self) -> bool:
        return self.result is None  # once recorded, only the reference is on screen

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
