"""Team server sign-in: server URL, token or enrollment code, Sign in / Sign out / Test
connection.

An agent types the short one-time code their lead issued (``consentdesk enroll-code
create``); the desk trades it for its own token (:mod:`consentdesk.stores.enrollment`),
so nobody pastes secrets around.

Signing in also makes the signed-in user the agent recorded with captures
(``general.agent``), since the server records a capture only in its token's name,
and keeps the agent's name as read to customers in scripts (``general.agent_name``):
the login is an id, not a name to introduce oneself with.

A page for the settings dialog (``SettingsDialog.add_page``). The token goes
only into the OS keyring (:mod:`consentdesk.platform.secrets`); where there is no
keyring the page says so and the desk uses ``CONSENTDESK_TOKEN`` instead. A URL
the site administrator locked is shown but cannot be edited. Every network and
keyring call runs on the desk's worker (:mod:`consentdesk.gui.tasks`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from consentdesk.domain.backend import BackendError
from consentdesk.domain.review import Viewer
from consentdesk.gui import theme
from consentdesk.gui.desk import Desk
from consentdesk.gui.tasks import describe_error
from consentdesk.gui.widgets import StateChip
from consentdesk.platform import secrets
from consentdesk.platform.config import ConfigError
from consentdesk.stores.enrollment import enroll, looks_like_code
from consentdesk.stores.http_backend import check_server_url, probe_server

MANAGED = "Managed by your administrator"
URL_KEY = "server.url"
AGENT_KEY = "general.agent"
NAME_KEY = "general.agent_name"


def describe_viewer(viewer: Viewer) -> str:
    team = f", team {viewer.team}" if viewer.team else ""
    return f"{viewer.name} ({viewer.role}{team})"


class SignInPage(QWidget):
    """Signs the desk in to the team ledger server.

    Signals:
        signed_in(object): the server accepted the token (a ``Viewer``); it is stored.
        signed_out(): the token was removed from the keyring.
    """

    signed_in = Signal(object)
    signed_out = Signal()

    def __init__(self, desk: Desk, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.setAccessibleName("Team server sign-in")
        box = QVBoxLayout(self)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        box.addLayout(form)

        self.url = QLineEdit(str(desk.config.get(URL_KEY)))
        self.url.setPlaceholderText("https://ledger.example.com")
        self.url.setAccessibleName("Server address")
        url_label = QLabel("&Server")
        url_label.setBuddy(self.url)
        self.managed = QLabel(f"🔒 {MANAGED}")
        self.managed.setObjectName("managed:server.url")
        self.managed.setAccessibleName(f"Server address: {MANAGED}")
        if desk.config.is_locked(URL_KEY):
            self.url.setEnabled(False)
            self.url.setToolTip(MANAGED)
            holder = QWidget()
            inner = QVBoxLayout(holder)
            inner.setContentsMargins(0, 0, 0, 0)
            inner.addWidget(self.url)
            inner.addWidget(self.managed)
            form.addRow(url_label, holder)
        else:
            self.managed.hide()
            form.addRow(url_label, self.url)

        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("Enrollment code (ABCD-EFGH) or token from your lead")
        self.token.setAccessibleName("Enrollment code or sign-in token")
        token_label = QLabel("&Code or token")
        token_label.setBuddy(self.token)
        form.addRow(token_label, self.token)

        self.agent_name = QLineEdit(str(desk.config.get(NAME_KEY)))
        self.agent_name.setPlaceholderText("As you say it to customers")
        self.agent_name.setAccessibleName("Your name in scripts")
        self.agent_name.setToolTip('Read to customers in the scripts: "My name is …"')
        self.agent_name.setMaxLength(100)
        self.agent_name.setEnabled(not desk.config.is_locked(NAME_KEY))
        name_label = QLabel("Your &name")
        name_label.setBuddy(self.agent_name)
        form.addRow(name_label, self.agent_name)

        buttons = QHBoxLayout()
        self.sign_in_button = QPushButton("Sign &in")
        self.sign_out_button = QPushButton("Sign &out")
        self.test_button = QPushButton("Test &connection")
        for button in (self.sign_in_button, self.sign_out_button, self.test_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        box.addLayout(buttons)
        self.sign_in_button.clicked.connect(self.sign_in)
        self.sign_out_button.clicked.connect(self.sign_out)
        self.test_button.clicked.connect(self.test_connection)

        self.status = StateChip()
        self.status.setAccessibleName("Sign-in status")
        box.addWidget(self.status)
        box.addStretch(1)
        self.refresh()

    # --- what the desk knows ------------------------------------------------------

    def refresh(self) -> None:
        """Show whether this desk holds a token for the configured server."""
        url = self.url.text().strip()
        if not url:
            self.status.set_state(theme.NOTICE, "Not signed in: captures stay on this computer")
            return

        def look_up() -> tuple[bool, bool]:
            available = secrets.keyring_available()
            stored = available and secrets.get_token(url) is not None
            return available, stored

        self._run(look_up, self._show_state, "sign-in state")

    def _show_state(self, state: tuple[bool, bool]) -> None:
        available, stored = state
        if not available:
            source = (
                "using CONSENTDESK_TOKEN from the environment"
                if secrets.env_token()
                else f"set {secrets.TOKEN_ENV} in the environment to sign in"
            )
            self.status.set_state(theme.NOTICE, f"No OS keyring on this computer: {source}")
            self.sign_in_button.setEnabled(False)
            self.sign_out_button.setEnabled(False)
        elif stored:
            self.status.set_state(theme.SUCCESS, f"Signed in to {_host(self.url.text())}")
        else:
            self.status.set_state(theme.NOTICE, "Not signed in")

    # --- actions ------------------------------------------------------------------

    def sign_in(self) -> None:
        url, token = self.url.text().strip(), self.token.text().strip()
        name = self.agent_name.text().strip()
        if not token:
            self._fail_text("Paste the token or type the enrollment code your lead gave you")
            return
        try:
            url = check_server_url(url)
        except BackendError as exc:
            self._fail(exc)
            return
        if not name and self.agent_name.isEnabled():
            self._fail_text("Give your name as you say it to customers: the scripts read it")
            self.agent_name.setFocus()
            return
        ca_bundle = str(self.desk.config.get("server.ca_bundle")) or None

        def work() -> Viewer:
            if looks_like_code(token):
                # The code is spent here: keep the token it buys at once, and only in
                # the keyring, so a failing check below does not lose it.
                secret, _ = enroll(url, token, ca_bundle=ca_bundle)
                secrets.set_token(url, secret)
                return probe_server(url, secret, ca_bundle=ca_bundle)
            viewer = probe_server(url, token, ca_bundle=ca_bundle)
            secrets.set_token(url, token)
            return viewer

        def done(viewer: Viewer) -> None:
            self.token.clear()
            # Captures name the signed-in user: the server refuses any other agent.
            wanted = [(URL_KEY, url), (AGENT_KEY, viewer.name), (NAME_KEY, name)]
            cfg = self.desk.config
            changes = [(k, v) for k, v in wanted if not cfg.is_locked(k) and cfg.get(k) != v]
            if changes:
                try:
                    self.desk.apply_settings(changes, on_failure=self._fail)
                except ConfigError as exc:
                    self._fail(exc)
                    return
            self.status.set_state(theme.SUCCESS, f"Signed in as {describe_viewer(viewer)}")
            self.signed_in.emit(viewer)

        self.status.set_state(theme.NOTICE, "Signing in…")
        self._run(work, done, "sign in")

    def sign_out(self) -> None:
        url = self.url.text().strip()
        if not url:
            return

        def done(_: Any) -> None:
            self.status.set_state(theme.NOTICE, "Signed out: the token was removed")
            self.signed_out.emit()

        self._run(lambda: secrets.delete_token(url), done, "sign out")

    def test_connection(self) -> None:
        url, typed = self.url.text().strip(), self.token.text().strip()
        try:
            url = check_server_url(url)
        except BackendError as exc:
            self._fail(exc)
            return
        ca_bundle = str(self.desk.config.get("server.ca_bundle")) or None

        def work() -> Viewer:
            # A code is one-time: testing must not spend it, so test the stored token.
            usable = typed if typed and not looks_like_code(typed) else None
            token = usable or secrets.resolve_token(url)
            if not token:
                raise BackendError("not signed in: paste a token first")
            return probe_server(url, token, ca_bundle=ca_bundle)

        def done(viewer: Viewer) -> None:
            text = f"Connected to {_host(url)} as {describe_viewer(viewer)}"
            self.status.set_state(theme.SUCCESS, text)

        self.status.set_state(theme.NOTICE, "Testing the connection…")
        self._run(work, done, "test connection")

    # --- plumbing -------------------------------------------------------------------

    def _run(self, fn: Callable[[], Any], done: Callable[[Any], None], label: str) -> None:
        self._set_busy(True)

        def succeeded(result: Any) -> None:
            self._set_busy(False)
            done(result)

        def failed(exc: BaseException) -> None:
            self._set_busy(False)
            self._fail(exc)

        self.desk.runner.run(fn, on_success=succeeded, on_failure=failed, label=label)

    def _set_busy(self, busy: bool) -> None:
        for button in (self.sign_in_button, self.sign_out_button, self.test_button):
            button.setEnabled(not busy)

    def _fail(self, exc: BaseException) -> None:
        self._fail_text(describe_error(exc))

    def _fail_text(self, text: str) -> None:
        self.status.set_state(theme.FAILURE, text)


def _host(url: str) -> str:
    return urlsplit(url.strip()).netloc or url
