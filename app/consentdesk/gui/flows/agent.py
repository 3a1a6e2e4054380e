"""Who is capturing: the agent id recorded with every capture and the name read to
customers in scripts, asked once (first capture) and kept in the settings."""

from __future__ import annotations

from PySide6.QtWidgets import QFormLayout, QLabel, QLineEdit, QWidget

from consentdesk.gui.desk import Desk
from consentdesk.gui.flows.base import FlowPage, make_button
from consentdesk.gui.tasks import describe_error

AGENT_KEY = "general.agent"
NAME_KEY = "general.agent_name"


def needs_agent_prompt(desk: Desk) -> bool:
    """The agent id or the name read in scripts is still missing."""
    return not desk.agent or not desk.agent_name


class AgentPrompt(FlowPage):
    """Asks for what is missing of the agent id (config general.agent; on the team
    server the signed-in user) and the agent's name as read in scripts."""

    title_text = "Who is capturing?"

    def __init__(self, desk: Desk, parent: QWidget | None = None) -> None:
        super().__init__(None, desk, parent)
        intro = QLabel(
            "Your agent id is recorded with every consent and request you capture. "
            "Your name is read to customers in the scripts (\u201cMy name is \u2026\u201d), "
            "so give it as you say it on the phone. Both are asked once and kept in your "
            "settings."
        )
        intro.setWordWrap(True)
        self.body.addWidget(intro)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.agent = QLineEdit(desk.agent)
        self.agent.setAccessibleName("Agent id")
        self.agent.setMaxLength(64)
        self.name = QLineEdit(desk.agent_name)
        self.name.setAccessibleName("Your name in scripts")
        self.name.setPlaceholderText("e.g. Tess Miller")
        self.name.setMaxLength(100)
        for edit, text in ((self.agent, "&Agent id"), (self.name, "Your &name")):
            edit.textChanged.connect(self.update_buttons)
            edit.returnPressed.connect(self.save)
            label = QLabel(text)
            label.setBuddy(edit)
            form.addRow(label, edit)
        self.body.addLayout(form)
        self.body.addStretch(1)
        self.save_button = make_button(
            "&Save and continue", "Save your agent id and name (Enter)", "Save"
        )
        self.save_button.clicked.connect(self.save)
        self.add_buttons(self.save_button, self.cancel_button)
        self.saved = False
        locked: list[str] = []
        if desk.identity is not None or desk.config.is_locked(AGENT_KEY):
            self.agent.setEnabled(False)  # the sign-in or the administrator decides it
            if not desk.agent:
                locked.append("agent id")
        if desk.config.is_locked(NAME_KEY):
            self.name.setEnabled(False)
            if not desk.agent_name:
                locked.append("agent name")
        if locked:
            self.banner.info(
                f"Managed by your administrator: no {' or '.join(locked)} is set for this "
                "desk. Ask IT to set it."
            )
        self.update_buttons()

    def first_focus(self) -> QWidget | None:
        return self.agent if self.agent.isEnabled() and not self.agent.text() else self.name

    @property
    def holds_work(self) -> bool:
        return False

    def update_buttons(self) -> None:
        self.save_button.setEnabled(
            bool(self.agent.text().strip())
            and bool(self.name.text().strip())
            and (self.agent.isEnabled() or self.name.isEnabled())
        )

    def save(self) -> None:
        agent, name = self.agent.text().strip(), self.name.text().strip()
        if not agent or not name:
            (self.agent if not agent else self.name).setFocus()
            return
        changes = [
            (key, value)
            for key, value, edit in ((AGENT_KEY, agent, self.agent), (NAME_KEY, name, self.name))
            if edit.isEnabled() and self.desk.config.get(key) != value
        ]
        try:
            self.desk.apply_settings(
                changes,
                on_failure=lambda exc: self.banner.error(
                    f"Used now but not saved: {describe_error(exc)}"
                ),
            )
        except ValueError as exc:
            self.banner.error(str(exc))
            return
        self.saved = True
        self.closed.emit()
