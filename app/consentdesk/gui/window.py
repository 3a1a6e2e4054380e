"""The sidebar window: docked to a screen edge, always on top, collapsible."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QRect, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QAbstractButton,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from consentdesk.domain.model import DomainError
from consentdesk.gui import theme
from consentdesk.gui.call_bar import WaitingBar
from consentdesk.gui.calls import Call, CallController
from consentdesk.gui.desk import Desk
from consentdesk.gui.panel import SHORTCUTS, CallerPanel
from consentdesk.gui.throttle import Throttle
from consentdesk.gui.widgets import StateChip, scaled_font
from consentdesk.gui.window_review import ReviewMixin
from consentdesk.gui.window_server import ServerBarMixin

# Incident mode and the review are loaded once the ledger is open, never at start-up.
if TYPE_CHECKING:
    from consentdesk.gui.incident_banner import IncidentBanner
    from consentdesk.gui.review.window import ReviewWindow
    from consentdesk.gui.settings import SettingsDialog

log = logging.getLogger("consentdesk.gui.window")

SIDEBAR_WIDTH = 380
STRIP_WIDTH = 48
GEOMETRY_KEY = "sidebar/geometry"
INCIDENT_POLL_MS = 60_000
REVIEW_SHORTCUT = "Ctrl+R"

# Extra settings pages: callables building (title, widget) pairs, added to the
# settings dialog after the built-in pages (the server sign-in page goes here).
SettingsPageFactory = Callable[[Desk], tuple[str, QWidget]]


class SidebarWindow(ServerBarMixin, ReviewMixin, QMainWindow):
    """The agent's sidebar for a whole shift.

    Signals:
        collapsed_changed(bool): the window was collapsed to a strip / expanded.
        first_painted(): once, after the window's first frame was painted; work
            that can wait (opening the ledger, connecting softphones) starts here.
    """

    collapsed_changed = Signal(bool)
    first_painted = Signal()

    def __init__(
        self,
        desk: Desk,
        calls: CallController,
        *,
        settings_pages: list[SettingsPageFactory] | None = None,
        incident_poll_ms: int = INCIDENT_POLL_MS,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.desk = desk
        self.calls = calls
        self.settings_pages: list[SettingsPageFactory] = list(settings_pages or [])
        self.incident_poll_ms = incident_poll_ms
        self.incident_banner: IncidentBanner | None = None
        self.review_window: ReviewWindow | None = None
        self.settings_dialog: SettingsDialog | None = None  # the last one opened
        self._side_windows_closed = False
        self._review_pending = False
        self.collapsed = False
        self._placed = False
        self._painted = False
        self._dock_side = str(desk.config.get("sidebar.dock"))
        self.setWindowTitle("Consent Desk")
        self.setWindowIcon(theme.app_icon())
        self.setAccessibleName("Consent Desk sidebar")
        self.setMinimumWidth(STRIP_WIDTH)

        self.stack = QStackedWidget()
        self.setCentralWidget(self.stack)
        self.full = QWidget()
        self.full.setAccessibleName("Sidebar")
        self.stack.addWidget(self.full)
        self.strip = self._build_strip()
        self.stack.addWidget(self.strip)

        box = QVBoxLayout(self.full)
        box.setContentsMargins(8, 8, 8, 8)
        box.setSpacing(6)
        box.addLayout(self._build_top_bar())
        box.addLayout(self._build_lookup())
        self.lookup_error = StateChip()
        self.lookup_error.setAccessibleName("Lookup error")
        self.lookup_error.hide()
        box.addWidget(self.lookup_error)
        self.review_error = StateChip()
        self.review_error.setAccessibleName("Review error")
        self.review_error.hide()
        box.addWidget(self.review_error)
        box.addWidget(self._build_server_bar())
        # The incident banner goes here once the ledger is open.
        self.incident_slot = QVBoxLayout()
        self.incident_slot.setContentsMargins(0, 0, 0, 0)
        box.addLayout(self.incident_slot)
        self.waiting_bar = WaitingBar(calls, switch=self.switch_to)
        box.addWidget(self.waiting_bar)
        self.panel = CallerPanel(desk, calls)
        box.addWidget(self.panel, 1)

        self._build_actions()
        self._update_arrows()
        self.on_top_button.setChecked(bool(desk.config.get("sidebar.always_on_top")))
        self.setWindowFlag(Qt.WindowType.WindowStaysOnTopHint, self.on_top_button.isChecked())
        self.on_top_button.toggled.connect(self.set_always_on_top)
        if desk.config.is_locked("sidebar.always_on_top"):
            self.on_top_button.setEnabled(False)
            self.on_top_button.setToolTip("Always on top: managed by your administrator")
        # A burst of calls brings the window forward at most ~30 times a second.
        self._bring_forward = Throttle(self.bring_forward, parent=self)
        calls.popped.connect(self._popped)
        calls.link_changed.connect(self._link_changed)
        calls.active_changed.connect(self._active_changed)
        desk.settings_changed.connect(self._settings_changed)
        desk.ready.connect(self._start_incidents)
        desk.server_changed.connect(self._show_server)
        # The capture is in the store (or its outbox): count it and try to send it.
        self.panel.captured.connect(lambda _outcome: desk.after_capture())
        self._refresh_review_access()
        self.setTabOrder(self.lookup, self.lookup_button)
        self.setTabOrder(self.lookup_button, self.manual_button)

    # --- building ------------------------------------------------------------------

    def _build_top_bar(self) -> QHBoxLayout:
        bar = QHBoxLayout()
        bar.setSpacing(4)
        icon = QLabel()
        icon.setPixmap(theme.app_icon().pixmap(QSize(22, 22)))
        icon.setAccessibleName("Consent Desk")
        title = QLabel("Consent Desk")
        title.setFont(scaled_font(title, 1.15, bold=True))
        bar.addWidget(icon)
        bar.addWidget(title)
        self.agent_label = QLabel()
        self.agent_label.setEnabled(False)
        self.agent_label.setAccessibleName("Signed in agent")
        bar.addWidget(self.agent_label, 1, Qt.AlignmentFlag.AlignRight)
        self.link = QLabel()
        self.link.setAccessibleName("Softphone link")
        self.link.hide()
        bar.addWidget(self.link)
        self.on_top_button = self._tool_button(
            theme.Tool.PIN, "Keep on top of other windows (Ctrl+T)", "Always on top"
        )
        self.on_top_button.setCheckable(True)
        self.settings_button = self._tool_button(theme.Tool.GEAR, "Settings (Ctrl+,)", "Settings")
        self.settings_button.clicked.connect(self.open_settings)
        self.review_button = QToolButton()
        self.review_button.setIcon(theme.ON_TRACK.icon())
        self.review_button.setIconSize(QSize(18, 18))
        self.review_button.setText("Review…")
        self.review_button.setToolTip(
            f"Review captured actions, incidents and the read log ({REVIEW_SHORTCUT})"
        )
        self.review_button.setAccessibleName("Review")
        self.review_button.setAutoRaise(True)
        self.review_button.setMinimumSize(QSize(28, 28))
        self.review_button.clicked.connect(self.open_review)
        self.collapse_button = self._tool_button(
            theme.Tool.COLLAPSE_RIGHT, "Collapse to a strip (F12)", "Collapse"
        )
        self.collapse_button.clicked.connect(lambda: self.set_collapsed(True))
        for b in (self.on_top_button, self.review_button, self.settings_button):
            bar.addWidget(b)
        bar.addWidget(self.collapse_button)
        self._refresh_agent()
        return bar

    def _tool_button(self, tool: theme.Tool, tip: str, name: str) -> QToolButton:
        b = QToolButton()
        b.setIcon(theme.tool_icon(tool))
        b.setIconSize(QSize(18, 18))
        b.setText(name)
        b.setToolTip(tip)
        b.setAccessibleName(name)
        b.setAutoRaise(True)
        b.setMinimumSize(QSize(28, 28))
        return b

    def _build_lookup(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(4)
        self.lookup = QLineEdit()
        self.lookup.setPlaceholderText("Number, any format (Ctrl+L)")
        self.lookup.setToolTip("Type a number and press Enter to look the customer up (Ctrl+L)")
        self.lookup.setAccessibleName("Look up a number")
        self.lookup.setClearButtonEnabled(True)
        self.lookup.returnPressed.connect(self.look_up)
        self.lookup.textEdited.connect(lambda _t: self.lookup_error.hide())
        self.lookup.textChanged.connect(self._name_clear_button)
        self.lookup_button = QPushButton("Look up")
        self.lookup_button.setToolTip("Show this customer without a call (Enter)")
        self.lookup_button.setAccessibleName("Look up")
        self.lookup_button.clicked.connect(self.look_up)
        self.manual_button = QPushButton("Manual call")
        self.manual_button.setToolTip(
            "Start a call the softphone did not report; captures get its call id (Ctrl+M)"
        )
        self.manual_button.setAccessibleName("Manual call")
        self.manual_button.clicked.connect(self.start_manual_call)
        row.addWidget(self.lookup, 1)
        row.addWidget(self.lookup_button)
        row.addWidget(self.manual_button)
        return row

    def _name_clear_button(self) -> None:
        # Qt makes the line edit's clear button on demand, without a name.
        for button in self.lookup.findChildren(QToolButton):
            if not button.accessibleName():
                button.setAccessibleName("Clear the number")
                button.setToolTip("Clear the number")

    def _build_strip(self) -> QWidget:
        strip = QWidget()
        strip.setAccessibleName("Collapsed sidebar")
        box = QVBoxLayout(strip)
        box.setContentsMargins(4, 8, 4, 8)
        self.expand_button = self._tool_button(
            theme.Tool.COLLAPSE_LEFT, "Expand the sidebar (F12)", "Expand"
        )
        self.expand_button.clicked.connect(lambda: self.set_collapsed(False))
        self.strip_call = QLabel()
        self.strip_call.setAccessibleName("Caller on screen")
        self.strip_call.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        box.addWidget(self.expand_button, 0, Qt.AlignmentFlag.AlignHCenter)
        box.addWidget(self.strip_call, 0, Qt.AlignmentFlag.AlignHCenter)
        # Collapsed, the agent still sees that an incident is open.
        self.strip_incident = QLabel()
        self.strip_incident.setAccessibleName("Data incident")
        self.strip_incident.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.strip_incident.hide()
        box.addWidget(self.strip_incident, 0, Qt.AlignmentFlag.AlignHCenter)
        box.addStretch(1)
        return strip

    def _build_actions(self) -> None:
        def act(name: str, keys: str, slot: Callable[[], object]) -> QAction:
            action = QAction(name, self)
            action.setShortcut(QKeySequence(keys))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(lambda _=False: slot())
            self.addAction(action)
            return action

        p = self.panel
        self.actions_by_name = {
            "lookup": act("Look up a number", "Ctrl+L", self.focus_lookup),
            "manual": act("Manual call", "Ctrl+M", self.start_manual_call),
            "consent": act("Ask consent", SHORTCUTS["consent"], self._via(p.consent_button)),
            "withdraw": act("Withdraw", SHORTCUTS["withdraw"], self._via(p.withdraw_button)),
            "request": act("Privacy request", SHORTCUTS["request"], self._via(p.request_button)),
            "verify": act("Check identity", SHORTCUTS["verify"], self._via(p.header.verify)),
            "reload": act("Reload caller", SHORTCUTS["reload"], self.panel.reload),
            "end": act("End or close caller", SHORTCUTS["end"], self.panel.end_or_close),
            "on_top": act("Always on top", "Ctrl+T", self.on_top_button.toggle),
            "settings": act("Settings", "Ctrl+,", self.open_settings),
            "review": act("Review…", REVIEW_SHORTCUT, self.open_review),
            "collapse": act("Collapse or expand", "F12", self.toggle_collapsed),
            "switch": act("Switch to waiting call", "Ctrl+Tab", self.switch_to_waiting),
        }

    @staticmethod
    def _via(button: QAbstractButton) -> Callable[[], None]:
        """A shortcut that does what *button* does, and nothing while the button is not
        on screen or not available (collapsed, a form open, nothing to withdraw…)."""

        def press() -> None:
            if button.isVisible() and button.isEnabled():
                button.click()

        return press

    # --- lookup and manual calls -------------------------------------------------------

    def focus_lookup(self) -> None:
        if self.collapsed:
            self.set_collapsed(False)
        self.lookup.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.lookup.selectAll()

    def _parsed_lookup(self) -> str | None:
        from consentdesk.domain import phone  # libphonenumber's metadata loads on first use

        text = self.lookup.text()
        try:
            number = phone.normalize(text, self.desk.region)
        except DomainError as exc:
            self.lookup_error.set_state(theme.FAILURE, str(exc).capitalize())
            self.lookup_error.show()
            self.lookup.setFocus()
            return None
        self.lookup_error.hide()
        return number

    def look_up(self) -> None:
        number = self._parsed_lookup()
        if number is not None:
            self.panel.guard("Looking up another number", lambda: self.calls.look_up(number))

    def start_manual_call(self) -> None:
        active = self.calls.active
        if (
            not self.lookup.text().strip()
            and active is not None
            and active.is_lookup
            and active.number
        ):
            number = active.number  # turn the lookup into a call
            self.panel.guard("Starting a call", lambda: self.calls.manual_call(number))
            return
        number = self._parsed_lookup()
        if number is None:
            return

        def start() -> None:
            self.calls.manual_call(number)
            self.lookup.clear()

        self.panel.guard("Starting a call", start)

    # --- calls ---------------------------------------------------------------------

    def _active_changed(self, call: Call | None) -> None:
        if call is None:
            self.strip_call.clear()
            self.strip_call.setToolTip("")
            return
        self.strip_call.setPixmap(theme.LINK_UP.icon().pixmap(QSize(24, 24)))
        self.strip_call.setToolTip("A caller is on screen: expand to see them (F12)")

    def switch_to_waiting(self) -> None:
        waiting = self.calls.waiting
        if waiting and waiting[0].call_id is not None:
            self.switch_to(waiting[0].call_id)

    def switch_to(self, call_id: str) -> None:
        """Show a waiting caller; with a form open, only once the agent agreed to drop it."""
        self.panel.guard("Switching to another caller", lambda: self.calls.switch_to(call_id))

    def _popped(self, _call: Call) -> None:
        self._bring_forward.poke()

    def bring_forward(self) -> None:
        """Show the caller without taking keyboard focus from the softphone."""
        if self.collapsed:
            self.set_collapsed(False)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating, True)
        if self.isMinimized():
            self.showNormal()
        elif not self.isVisible():
            self.show()
        self.raise_()

    def _link_changed(self, up: bool, detail: str) -> None:
        look = theme.LINK_UP if up else theme.LINK_DOWN
        self.link.setPixmap(look.icon().pixmap(QSize(18, 18)))
        text = look.label + (f": {detail}" if detail else "")
        self.link.setToolTip(text)
        self.link.setAccessibleName(text)
        self.link.show()

    # --- window behaviour ---------------------------------------------------------------

    def set_always_on_top(self, on: bool) -> None:
        if bool(self.windowFlags() & Qt.WindowType.WindowStaysOnTopHint) == on:
            return
        visible = self.isVisible()
        self.setWindowFlag(Qt.WindowType.WindowStaysOnTopHint, on)
        if visible:
            self.show()  # changing window flags hides the window
        config = self.desk.config
        if config.get("sidebar.always_on_top") != on and not config.is_locked(
            "sidebar.always_on_top"
        ):
            self.desk.apply_settings([("sidebar.always_on_top", on)])

    def dock_rect(self, *, width: int | None = None) -> QRect:
        """The window's client rect so that its frame fills the docked edge, full height."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        area = screen.availableGeometry()
        frame, inner = self.frameGeometry(), self.geometry()
        left, top = inner.left() - frame.left(), inner.top() - frame.top()
        right, bottom = frame.right() - inner.right(), frame.bottom() - inner.bottom()
        outer_width = min((width or SIDEBAR_WIDTH) + left + right, area.width())
        x = (
            area.left()
            if self.desk.config.get("sidebar.dock") == "left"
            else (area.right() - outer_width + 1)
        )
        return QRect(
            x + left, area.top() + top, outer_width - left - right, area.height() - top - bottom
        )

    def dock(self) -> None:
        self.setGeometry(self.dock_rect(width=STRIP_WIDTH if self.collapsed else SIDEBAR_WIDTH))

    def set_collapsed(self, collapsed: bool) -> None:
        if collapsed == self.collapsed:
            return
        self.collapsed = collapsed
        self.stack.setCurrentWidget(self.strip if collapsed else self.full)
        width = STRIP_WIDTH if collapsed else SIDEBAR_WIDTH
        self.setMinimumWidth(STRIP_WIDTH)
        self.setMaximumWidth(STRIP_WIDTH if collapsed else 16_777_215)
        geo = self.geometry()
        rect = self.dock_rect(width=width)
        rect.setTop(geo.top())
        rect.setHeight(geo.height())
        self.setGeometry(rect)
        self._update_arrows()
        (self.expand_button if collapsed else self.lookup).setFocus()
        self.collapsed_changed.emit(collapsed)

    def _update_arrows(self) -> None:
        """Collapse points at the docked edge, expand away from it."""
        right = self.desk.config.get("sidebar.dock") != "left"
        toward, away = theme.Tool.COLLAPSE_RIGHT, theme.Tool.COLLAPSE_LEFT
        if not right:
            toward, away = away, toward
        self.collapse_button.setIcon(theme.tool_icon(toward))
        self.expand_button.setIcon(theme.tool_icon(away))

    def toggle_collapsed(self) -> None:
        self.set_collapsed(not self.collapsed)

    def showEvent(self, event: QShowEvent) -> None:
        if not self._placed:
            self._placed = True
            saved = QSettings().value(GEOMETRY_KEY)
            if isinstance(saved, QRect) and self._on_a_screen(saved):
                self.setGeometry(saved)
            else:
                self.dock()
                # The frame's size is known only once the window is up: fit again then.
                QTimer.singleShot(0, self.dock)
        super().showEvent(event)

    def event(self, event: QEvent) -> bool:
        handled = super().event(event)
        if not self._painted and event.type() == QEvent.Type.Paint:
            self._painted = True
            QTimer.singleShot(0, self.first_painted.emit)  # after this frame is out
        return handled

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.collapsed:
            QSettings().setValue(GEOMETRY_KEY, self.geometry())
        self.close_side_windows()
        super().closeEvent(event)

    @staticmethod
    def _on_a_screen(rect: QRect) -> bool:
        """A remembered place is used only if a screen still shows most of it."""
        for screen in QGuiApplication.screens():
            seen = screen.availableGeometry().intersected(rect)
            if seen.width() * seen.height() >= rect.width() * rect.height() // 2:
                return True
        return False

    # --- settings ----------------------------------------------------------------------

    def open_settings(self, *, page: str | None = None) -> None:
        """Open the settings dialog, on the page titled *page* if given."""
        from consentdesk.gui.settings import SettingsDialog

        dialog = SettingsDialog(self.desk, self)
        for factory in self.settings_pages:
            title, widget = factory(self.desk)
            index = dialog.add_page(title, widget)
            if page is not None and title == page:
                dialog.tabs.setCurrentIndex(index)
        self.settings_dialog = dialog
        dialog.open()

    def open_server_settings(self) -> None:
        from consentdesk.gui.settings import TEAM_SERVER

        self.open_settings(page=TEAM_SERVER)

    def _settings_changed(self) -> None:
        self._refresh_agent()
        self._refresh_review_access()
        on_top = bool(self.desk.config.get("sidebar.always_on_top"))
        if self.on_top_button.isChecked() != on_top:
            self.on_top_button.setChecked(on_top)
        self.calls.clear_after_seconds = int(self.desk.config.get("sidebar.clear_after_seconds"))
        side = str(self.desk.config.get("sidebar.dock"))
        if side != self._dock_side:
            self._dock_side = side
            self._update_arrows()
            if self.isVisible():
                self.dock()

    def _refresh_agent(self) -> None:
        identity = self.desk.identity
        if identity is not None:
            self.agent_label.setText(f"Signed in as {identity.name}")
            return
        agent = self.desk.agent
        self.agent_label.setText(f"Agent {agent}" if agent else "")

    # --- incident mode and review ----------------------------------------------------------

    def _start_incidents(self) -> None:
        """Once the ledger is open: show open incidents, polled in the background."""
        if self._side_windows_closed:
            return
        if self.incident_banner is not None:
            # The store may have been reopened (sign-in): ask it again.
            self.incident_banner.available = True
            self.incident_banner.start()
            return
        from consentdesk.gui.incident_banner import INCIDENT, IncidentBanner

        banner = IncidentBanner(self.desk, self.calls, poll_ms=self.incident_poll_ms)
        self.incident_banner = banner
        self.incident_slot.addWidget(banner)
        self.strip_incident.setPixmap(INCIDENT.icon().pixmap(QSize(24, 24)))
        self.strip_incident.setToolTip(f"{INCIDENT.label}: expand to read the script (F12)")
        banner.changed.connect(self._incidents_changed)
        banner.start()

    def _incidents_changed(self) -> None:
        banner = self.incident_banner
        self.strip_incident.setVisible(banner is not None and bool(banner.incidents))

    def close_side_windows(self) -> None:
        """Stop incident polling and close the review window, before the worker (and
        the backend they share) shuts down. Safe to call twice."""
        self._side_windows_closed = True
        if self.incident_banner is not None:
            self.incident_banner.stop()
        self._close_review()
