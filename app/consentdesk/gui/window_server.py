"""The team server's state in the sidebar: sign-in trouble (with a way to Settings),
captures waiting to sync, whether the server can be reached."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from consentdesk.gui import theme
from consentdesk.gui.desk import UNREACHABLE, Desk
from consentdesk.gui.widgets import StateChip


class ServerBarMixin:
    """The server bar of :class:`~consentdesk.gui.window.SidebarWindow`."""

    desk: Desk

    # Provided by the window: its settings dialog and the agent label.
    open_server_settings: Callable[[], None]
    _refresh_agent: Callable[[], None]

    def _build_server_bar(self) -> QFrame:
        """The team server's state: sign-in trouble (with a way to Settings), captures
        waiting to sync, whether the server can be reached. Hidden on the embedded ledger."""
        bar = QFrame()
        bar.setObjectName("serverBar")
        bar.setAccessibleName("Team server")
        box = QVBoxLayout(bar)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(4)
        problem_row = QHBoxLayout()
        self.server_problem = StateChip()
        self.server_problem.setAccessibleName("Team server sign-in")
        self.server_settings_button = QPushButton("Open Settings…")
        self.server_settings_button.setToolTip("Sign in to the team server (Ctrl+,)")
        self.server_settings_button.setAccessibleName("Open Settings")
        self.server_settings_button.clicked.connect(self.open_server_settings)
        problem_row.addWidget(self.server_problem, 1)
        problem_row.addWidget(self.server_settings_button, 0, Qt.AlignmentFlag.AlignTop)
        self.server_problem_row = QWidget()
        self.server_problem_row.setLayout(problem_row)
        problem_row.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.server_problem_row)
        waiting_row = QHBoxLayout()
        waiting_row.setContentsMargins(0, 0, 0, 0)
        self.sync_waiting = StateChip()
        self.sync_waiting.setAccessibleName("Waiting to sync")
        self.send_now_button = QPushButton("Send now")
        self.send_now_button.setToolTip("Try to send the waiting captures to the team server now")
        self.send_now_button.setAccessibleName("Send now")
        self.send_now_button.clicked.connect(self.desk.sync_now)
        waiting_row.addWidget(self.sync_waiting, 1)
        waiting_row.addWidget(self.send_now_button, 0, Qt.AlignmentFlag.AlignTop)
        self.sync_waiting_row = QWidget()
        self.sync_waiting_row.setLayout(waiting_row)
        box.addWidget(self.sync_waiting_row)
        self.sync_offline = StateChip()
        self.sync_offline.setAccessibleName("Team server reachable")
        box.addWidget(self.sync_offline)
        self.sync_refused = StateChip()
        self.sync_refused.setAccessibleName("Refused by the team server")
        box.addWidget(self.sync_refused)
        self.server_bar = bar
        self._show_server()
        return bar

    def _show_server(self) -> None:
        state = self.desk.server
        self.server_problem_row.setVisible(state.problem is not None)
        if state.problem is not None:
            self.server_problem.set_state(theme.FAILURE, state.problem)
        self.sync_waiting_row.setVisible(state.waiting > 0)
        self.sync_waiting.set_state(theme.DUE_SOON, f"{state.waiting} waiting to sync")
        offline = state.unreachable or state.sync_error is not None
        self.sync_offline.setVisible(offline)
        if state.unreachable:
            self.sync_offline.set_state(theme.NOTICE, UNREACHABLE)
        elif state.sync_error is not None:
            text = f"Not sent yet: {state.sync_error} — captures are kept and will be sent"
            self.sync_offline.set_state(theme.NOTICE, text)
        self.sync_refused.setVisible(state.refused > 0)
        records = "capture" if state.refused == 1 else "captures"
        self.sync_refused.set_state(
            theme.FAILURE,
            f"{state.refused} {records} refused by the team server — kept on this desk; "
            "tell your team lead",
        )
        self.server_bar.setVisible(
            state.problem is not None or state.waiting > 0 or offline or state.refused > 0
        )
        self._refresh_agent()
