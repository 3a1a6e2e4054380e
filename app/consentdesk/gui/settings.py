"""Settings dialog: dock side, always on top, clear delay, languages, agent.

Keys the site administrator locked are shown, disabled, as managed. Other
pages (the team server sign-in, :func:`team_server_page`) are added with
:meth:`SettingsDialog.add_page`.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from consentdesk.gui import theme
from consentdesk.gui.desk import Desk
from consentdesk.gui.tasks import describe_error
from consentdesk.gui.widgets import StateChip
from consentdesk.platform.config import ConfigError

MANAGED = "Managed by your administrator"
FROM_SIGN_IN = "From your team server sign-in"
TEAM_SERVER = "&Team server"


def team_server_page(desk: Desk) -> tuple[str, QWidget]:
    """The team server sign-in page; signing in or out reopens the desk's backend."""
    # Imported when the dialog opens: it pulls in the HTTP client and the keyring.
    from consentdesk.gui.signin import SignInPage

    page = SignInPage(desk)
    page.signed_in.connect(lambda _viewer: desk.reopen())
    page.signed_out.connect(desk.reopen)
    return TEAM_SERVER, page


class SettingsDialog(QDialog):
    """Edits the user's settings; writes them on the worker, closes once saved."""

    def __init__(self, desk: Desk, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.setWindowTitle("Consent Desk settings")
        self.setAccessibleName("Settings")
        self.setMinimumWidth(420)
        self.fields: dict[str, QWidget] = {}
        box = QVBoxLayout(self)
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Settings pages")
        box.addWidget(self.tabs)
        self.tabs.addTab(self._sidebar_page(), "&Sidebar")
        self.tabs.addTab(self._agent_page(), "&Agent")
        self.error = StateChip()
        self.error.setAccessibleName("Settings error")
        self.error.hide()
        box.addWidget(self.error)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        box.addWidget(self.buttons)

    # --- pages ------------------------------------------------------------------------

    def add_page(self, title: str, page: QWidget) -> int:
        """Add a page of another component (e.g. server sign-in) after the built-in ones."""
        page.setAccessibleName(title.replace("&", ""))
        return self.tabs.addTab(page, title)

    def _form(self) -> tuple[QWidget, QFormLayout]:
        page = QWidget()
        form = QFormLayout(page)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        return page, form

    def _row(
        self,
        form: QFormLayout,
        key: str,
        label: str,
        widget: QWidget,
        tip: str,
        *,
        set_by: str | None = None,
    ) -> None:
        """One setting; locked by the administrator, or *set_by* something other than
        this dialog (shown the same way, and never saved from here)."""
        widget.setAccessibleName(label.replace("&", ""))
        widget.setToolTip(tip)
        if set_by is None:
            self.fields[key] = widget
        caption = QLabel(label)
        caption.setBuddy(widget)
        reason = MANAGED if self.desk.config.is_locked(key) else set_by
        if reason is not None:
            widget.setEnabled(False)
            widget.setToolTip(f"{reason}. {tip}")
            holder = QWidget()
            inner = QVBoxLayout(holder)
            inner.setContentsMargins(0, 0, 0, 0)
            inner.setSpacing(2)
            inner.addWidget(widget)
            note = QLabel(f"🔒 {reason}")
            note.setObjectName(f"{'managed' if reason == MANAGED else 'set-by'}:{key}")
            note.setAccessibleName(f"{label.replace('&', '')}: {reason}")
            note.setEnabled(False)
            inner.addWidget(note)
            form.addRow(caption, holder)
        else:
            form.addRow(caption, widget)

    def _sidebar_page(self) -> QWidget:
        cfg = self.desk.config
        page, form = self._form()
        dock = QComboBox()
        dock.addItem("Right", "right")
        dock.addItem("Left", "left")
        dock.setCurrentIndex(dock.findData(cfg.get("sidebar.dock")))
        self._row(form, "sidebar.dock", "&Dock to screen edge", dock, "Where the sidebar sits")
        on_top = QCheckBox("Keep above other windows")
        on_top.setChecked(bool(cfg.get("sidebar.always_on_top")))
        self._row(form, "sidebar.always_on_top", "Always on &top", on_top, "Ctrl+T in the sidebar")
        clear = QSpinBox()
        clear.setRange(0, 3600)
        clear.setSuffix(" s")
        clear.setValue(int(cfg.get("sidebar.clear_after_seconds")))
        self._row(
            form,
            "sidebar.clear_after_seconds",
            "&Clear caller after",
            clear,
            "Seconds the caller stays on screen after hang-up",
        )
        return page

    def _agent_page(self) -> QWidget:
        cfg = self.desk.config
        page, form = self._form()
        identity = self.desk.identity
        # On the team server the token says who records; the setting is not used there.
        agent = QLineEdit(identity.name if identity else str(cfg.get("general.agent")))
        agent.setMaxLength(64)
        self._row(
            form,
            "general.agent",
            "Agent &id",
            agent,
            "Recorded with every capture",
            set_by=FROM_SIGN_IN if identity else None,
        )
        name = QLineEdit(str(cfg.get("general.agent_name")))
        name.setMaxLength(100)
        self._row(form, "general.agent_name", "Agent &name", name, "Read to customers in scripts")
        langs = QLineEdit(", ".join(cfg.get("general.languages")))
        self._row(
            form,
            "general.languages",
            "&Languages",
            langs,
            "Script languages offered, first is the default, e.g. en, de",
        )
        return page

    # --- saving ---------------------------------------------------------------------

    def values(self) -> list[tuple[str, Any]]:
        """The changed, unlocked settings as (key, value)."""
        out: list[tuple[str, Any]] = []
        cfg = self.desk.config
        for key, widget in self.fields.items():
            if cfg.is_locked(key):
                continue
            value: Any
            if isinstance(widget, QComboBox):
                value = widget.currentData()
            elif isinstance(widget, QCheckBox):
                value = widget.isChecked()
            elif isinstance(widget, QSpinBox):
                value = widget.value()
            elif key == "general.languages" and isinstance(widget, QLineEdit):
                value = [p.strip() for p in widget.text().replace(";", ",").split(",") if p.strip()]
            elif isinstance(widget, QLineEdit):
                value = widget.text().strip()
            else:
                continue
            current = cfg.get(key)
            if (tuple(value) if isinstance(value, list) else value) != current:
                out.append((key, value))
        return out

    def save(self) -> None:
        values = self.values()
        if not values:
            self.accept()
            return
        try:
            self.desk.apply_settings(values, on_saved=self.accept, on_failure=self._failed)
        except ConfigError as exc:
            self._show_error(str(exc))
            return
        self.buttons.setEnabled(False)

    def _failed(self, exc: BaseException) -> None:
        self.buttons.setEnabled(True)
        self._show_error(f"Settings apply now but could not be saved: {describe_error(exc)}")

    def _show_error(self, text: str) -> None:
        self.error.set_state(theme.FAILURE, text)
        self.error.show()
