"""The caller panel: header, consent grid with history and proof, privacy requests,
and the capture flows that open in its place."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QItemSelectionModel,
    QModelIndex,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from consentdesk.domain.basis import Offer, basis_info
from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.model import (
    Channel,
    ConsentEvent,
    ConsentState,
    RequestType,
    SubjectStatus,
)
from consentdesk.gui import labels
from consentdesk.gui.caller_view import (
    SHORTCUTS,
    CallerHeader,
    ConsentGrid,
    customer_language,
    in_our_records,
    proof_html,
)
from consentdesk.gui.calls import Call, CallController
from consentdesk.gui.delegates import TwoLineDelegate
from consentdesk.gui.desk import Desk
from consentdesk.gui.history_box import HistoryBox
from consentdesk.gui.models import (
    ChannelRole,
    ConsentGridModel,
    PurposeRole,
    RequestsModel,
)
from consentdesk.gui.tasks import describe_error
from consentdesk.gui.widgets import Banner, section_title

# The capture flows (and the capture rules they pull in) are imported where a
# flow starts, so that start-up paints the window without them.
if TYPE_CHECKING:
    from consentdesk.domain.backend import Backend
    from consentdesk.gui.flows import FlowEnv, FlowPage, Outcome

log = logging.getLogger("consentdesk.gui.panel")

__all__ = ["SHORTCUTS", "CallerPanel", "customer_language", "proof_html"]


class CallerPanel(QWidget):
    """Everything about the caller on screen, and the flows that capture.

    Signals:
        caller_shown(str): the caller's status is on screen (E.164 number).
        busy_changed(bool): a load for this panel is running.
        captured(object): a flow's :class:`Outcome` after the backend confirmed it.
    """

    caller_shown = Signal(str)
    busy_changed = Signal(bool)
    captured = Signal(object)

    def __init__(self, desk: Desk, calls: CallController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.calls = calls
        self.call: Call | None = None
        self.status: SubjectStatus | None = None
        self.language = desk.languages[0] if desk.languages else "en"
        self.flow: FlowPage | None = None
        self._pending_flow: Callable[[], FlowPage | None] | None = None
        self._gen = 0
        self._stale = False  # the backend was reopened since the status was read
        self._hold = object()  # this panel's hold on the caller while a flow is open
        self.setAccessibleName("Caller panel")

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(6)
        self.pages = QStackedWidget()
        outer.addWidget(self.pages, 1)

        # page: nobody on screen
        self.empty = QLabel(
            "No caller on screen.\n\nIncoming calls appear here. Type a number above to look "
            "a customer up (Enter) or to start a manual call (Ctrl+M)."
        )
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.empty.setAccessibleName("No caller")
        self.empty.setMargin(12)
        self.pages.addWidget(self.empty)

        # page: a caller
        self.caller_page = caller_page = QWidget()
        cbox = QVBoxLayout(caller_page)
        cbox.setContentsMargins(0, 0, 0, 0)
        cbox.setSpacing(6)
        self.header = CallerHeader()
        self.header.end_requested.connect(self.end_or_close)
        self.header.verify_requested.connect(self.start_verify)
        cbox.addWidget(self.header)
        self.banner = Banner("Caller status")
        cbox.addWidget(self.banner)
        self.inner = QStackedWidget()
        cbox.addWidget(self.inner, 1)
        self.pages.addWidget(caller_page)

        self.body_scroll = QScrollArea()
        self.body_scroll.setWidgetResizable(True)
        self.body_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.body_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        self.body = QVBoxLayout(body)
        self.body.setContentsMargins(0, 0, 4, 0)
        self.body.setSpacing(6)
        self.body_scroll.setWidget(body)
        self.inner.addWidget(self.body_scroll)
        self.flow_holder = QStackedWidget()
        self.inner.addWidget(self.flow_holder)

        self.body.addWidget(section_title("Consents"))
        self.grid_model = ConsentGridModel(self)
        self.grid = ConsentGrid(self.grid_model)
        self.grid.selectionModel().currentChanged.connect(self._cell_changed)
        self.body.addWidget(self.grid)
        # In place of a grid of "Not asked" for a number we know nothing about.
        self.unknown_note = QLabel(
            "Not in our records: no customer profile, consent or privacy request is held "
            "for this number. A new caller can still give consent or make a privacy request."
        )
        self.unknown_note.setWordWrap(True)
        self.unknown_note.setAccessibleName("Not in our records")
        self.unknown_note.hide()
        self.body.addWidget(self.unknown_note)

        actions = QHBoxLayout()
        actions.setSpacing(6)
        self.consent_button = QPushButton("Ask consent")
        self.consent_button.setToolTip(
            f"Ask for consent, preselected from the chosen cell ({SHORTCUTS['consent']})"
        )
        self.consent_button.setAccessibleName("Ask consent")
        self.consent_button.clicked.connect(lambda: self.start_consent())
        self.withdraw_button = QToolButton()
        self.withdraw_button.setText("Withdraw")
        self.withdraw_button.setToolTip(
            f"Withdraw the chosen consent; the arrow offers whole groups ({SHORTCUTS['withdraw']})"
        )
        self.withdraw_button.setAccessibleName("Withdraw")
        self.withdraw_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.withdraw_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.withdraw_button.clicked.connect(lambda: self.start_withdrawal())
        self.withdraw_menu = QMenu(self.withdraw_button)
        self.withdraw_menu.setAccessibleName("Withdraw a whole group")
        self.withdraw_menu.aboutToShow.connect(self._fill_withdraw_menu)
        self.withdraw_button.setMenu(self.withdraw_menu)
        self.request_button = QPushButton("Privacy request")
        self.request_button.setToolTip(
            f"Take an access, erasure or other privacy request ({SHORTCUTS['request']})"
        )
        self.request_button.setAccessibleName("Privacy request")
        self.request_button.clicked.connect(lambda: self.start_request())
        for b in (self.consent_button, self.withdraw_button, self.request_button):
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            b.setMinimumHeight(b.sizeHint().height() + 6)
            actions.addWidget(b)
        self.body.addLayout(actions)

        self.requests_title = section_title("Privacy requests")
        self.body.addWidget(self.requests_title)
        self.requests_model = RequestsModel(self)
        self.requests = QListView()
        self.requests.setModel(self.requests_model)
        self.requests.setItemDelegate(TwoLineDelegate(self.requests))
        self.requests.setAccessibleName("Privacy requests")
        self.requests.setWordWrap(True)
        self.requests.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.requests.setIconSize(QSize(20, 20))
        self.requests.setSpacing(2)
        self.body.addWidget(self.requests)
        self.no_requests = QLabel("No privacy requests.")
        self.no_requests.setEnabled(False)
        self.body.addWidget(self.no_requests)
        # history of the selected cell's purpose, with proof
        self.history_box = HistoryBox(desk)
        self.history_box.correct_requested.connect(self.start_correction)
        self.history_model = self.history_box.model
        self.history = self.history_box.view
        self.proof = self.history_box.proof
        self.correct_button = self.history_box.correct_button
        self.body.addWidget(self.history_box)

        self.body.addStretch(1)

        self.calls.active_changed.connect(self.set_call)
        self.calls.active_updated.connect(self.update_call)
        self.desk.ready.connect(self._desk_ready)
        self.desk.load_failed.connect(self._desk_failed)
        self.desk.reopening.connect(self._desk_reopening)
        self._set_actions_enabled(False)
        self.pages.setCurrentWidget(self.empty)

    # --- caller on screen ------------------------------------------------------

    def set_call(self, call: Call | None) -> None:
        same_caller = (
            call is not None
            and self.call is not None
            and call.number == self.call.number
            and call.call_id == self.call.call_id
        )
        self.call = call
        if not same_caller:
            self._close_flow()
            self.banner.clear()
            self.status = None
            self.grid_model.clear()
            self.requests_model.clear()
            self.history_box.clear()
        if call is None:
            self.header.timer.stop()
            self.pages.setCurrentWidget(self.empty)
            self._set_actions_enabled(False)
            return
        self.pages.setCurrentWidget(self.caller_page)
        self.header.show_call(call)
        if not same_caller:
            self.inner.setCurrentWidget(self.body_scroll)
            self.reload()

    def update_call(self, call: Call) -> None:
        if self.call is None or call.call_id != self.call.call_id:
            return
        ended_now = self.call.is_live and not call.is_live
        self.call = call
        if ended_now and self.flow is not None and self.flow.holds_work:
            self.banner.info(
                "The call has ended. The form stays until you record the answer or discard it."
            )
        self.header.show_call(call, self.status)

    def reload(self) -> None:
        """Fetch the caller's status on the worker (a logged read); stale answers
        are dropped."""
        call = self.call
        if call is None or call.number is None:
            self._set_actions_enabled(False)
            return
        if not self.desk.loaded:
            if self.desk.load_error is not None:
                self._desk_failed(self.desk.load_error)
            else:
                self.banner.busy("Opening the ledger…")
            return  # _desk_ready reloads
        self._gen += 1
        gen = self._gen
        number = call.number
        self.banner.busy("Loading the caller's consents…")
        self.busy_changed.emit(True)

        def shown(status: SubjectStatus) -> None:
            if gen != self._gen:
                return
            self.busy_changed.emit(False)
            self.banner.clear()
            self.apply_status(status)
            self.caller_shown.emit(number)

        def failed(exc: BaseException) -> None:
            if gen != self._gen:
                return
            self.busy_changed.emit(False)
            self.banner.error(f"Could not load the caller: {describe_error(exc)}", self.reload)

        viewer, call_id = self.desk.viewer(), call.call_id

        def fetch(backend: Backend) -> SubjectStatus:
            # The lookup and its read-log record are one task on the worker.
            from consentdesk.stores.review_access import lookup_status

            return lookup_status(backend, viewer, number, call_id=call_id)

        self.desk.runner.call(fetch, on_success=shown, on_failure=failed, label="status")

    def _desk_ready(self) -> None:
        if self.call is not None and (self.status is None or self._stale):
            self._stale = False
            self.reload()

    def _desk_reopening(self) -> None:
        # Signed in or out: what is on screen came from the store being closed.
        self._stale = True
        self._set_actions_enabled(False)
        if self.call is not None:
            self.banner.busy("Opening the ledger…")

    def _desk_failed(self, message: str) -> None:
        if self.call is not None:
            on_server = self.desk.on_server
            where = (
                "The team server cannot be used" if on_server else "The ledger could not be opened"
            )
            self.banner.error(f"{where}: {message}", self._retry_desk)

    def _retry_desk(self) -> None:
        self.banner.busy("Opening the ledger…")
        self.desk.load()

    def apply_status(self, status: SubjectStatus) -> None:
        catalogue = self.desk.catalogue
        if catalogue is None or self.call is None or status.subject.number != self.call.number:
            return
        current = self.grid.currentIndex()
        keep = (current.data(PurposeRole), current.data(ChannelRole)) if current.isValid() else None
        if self.status is None:
            self.language = customer_language(status, self.desk)
        self.status = status
        visible = {p.id for p in self.desk.visible_purposes()}
        shown_purposes = tuple(
            p
            for p in catalogue
            if p.id in visible
            or any(c.purpose == p.id and c.state != ConsentState.UNKNOWN for c in status.cells)
        )
        self.grid_model.set_status(Catalogue(shown_purposes), status.cells)
        self.requests_model.set_requests(
            status.requests, today=self.desk.today(), calendar=self.desk.calendar
        )
        self._fit_requests()
        self.header.show_call(self.call, status)
        known = in_our_records(status)
        self.grid.setVisible(known)
        self.unknown_note.setVisible(not known)
        self.requests_title.setVisible(known)
        if not known:
            self.requests.hide()
            self.no_requests.hide()
            self.history_box.hide()
        self._set_actions_enabled(True)
        if keep is not None:
            index = self.grid_model.index_for(keep[0], keep[1])
            if index.isValid():
                self.grid.selectionModel().setCurrentIndex(
                    index, QItemSelectionModel.SelectionFlag.ClearAndSelect
                )

    def _fit_requests(self) -> None:
        rows = self.requests_model.rowCount()
        self.requests.setVisible(rows > 0)
        self.no_requests.setVisible(rows == 0)
        if rows:
            height = sum(self.requests.sizeHintForRow(r) + 4 for r in range(rows))
            self.requests.setFixedHeight(height + 2 * self.requests.frameWidth() + 4)

    def _set_actions_enabled(self, enabled: bool) -> None:
        ok = enabled and self.desk.loaded and self.call is not None and self.call.number is not None
        self.consent_button.setEnabled(ok)
        self.request_button.setEnabled(ok)
        # Nothing is given (an unknown caller, or all withdrawn): nothing to withdraw.
        status = self.status
        visible = {p.id for p in self.desk.visible_purposes()}
        can_withdraw = (
            ok
            and status is not None
            and any(c.state == ConsentState.GIVEN and c.purpose in visible for c in status.cells)
        )
        self.withdraw_button.setEnabled(can_withdraw)
        self.withdraw_button.setToolTip(
            f"Withdraw the chosen consent; the arrow offers whole groups ({SHORTCUTS['withdraw']})"
            if can_withdraw
            else f"No consent is given, so there is nothing to withdraw ({SHORTCUTS['withdraw']})"
        )

    @property
    def can_capture(self) -> bool:
        return self.status is not None and self.flow is None and self.desk.loaded

    # --- history -----------------------------------------------------------------

    def selected_cell(self) -> tuple[str, Channel] | None:
        index = self.grid.currentIndex()
        if not index.isValid() or not (index.flags() & Qt.ItemFlag.ItemIsEnabled):
            return None
        return str(index.data(PurposeRole)), Channel(index.data(ChannelRole))

    def _cell_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        cell = self.selected_cell()
        if cell is None:
            self.history_box.hide()
            return
        self._show_history(cell[0])

    def _show_history(self, purpose: str) -> None:
        cell = self.selected_cell()
        number = self.call.number if self.call is not None else None
        self.history_box.show_purpose(purpose, number, self._gen, cell[1] if cell else None)

    def selected_event(self) -> ConsentEvent | None:
        return self.history_box.selected_event()

    # --- flows -------------------------------------------------------------------

    def _env(self) -> FlowEnv | None:
        from consentdesk.gui.flows import FlowEnv

        if self.call is None or self.call.number is None or self.status is None:
            return None
        return FlowEnv(
            desk=self.desk,
            calls=self.calls,
            call=self.call,
            number=self.call.number,
            status=self.status,
            language=self.language,
        )

    def _open(self, make: Callable[[FlowEnv], FlowPage]) -> FlowPage | None:
        from consentdesk.gui.flows import AgentPrompt, needs_agent_prompt

        if self.flow is not None or self._env() is None or not self.desk.loaded:
            return None

        def build() -> FlowPage | None:
            env = self._env()
            return make(env) if env is not None else None

        if needs_agent_prompt(self.desk):
            self._pending_flow = build
            self._show_flow(AgentPrompt(self.desk))
            return self.flow
        page = build()
        if page is not None:
            self._show_flow(page)
        return page

    def _show_flow(self, page: FlowPage) -> None:
        self.flow = page
        self.calls.hold(self._hold)
        self.header.set_compact(True)
        self.flow_holder.addWidget(page)
        self.flow_holder.setCurrentWidget(page)
        self.inner.setCurrentWidget(self.flow_holder)
        page.closed.connect(lambda p=page: self._flow_closed(p))
        page.recorded.connect(self._recorded)
        page.nothing_recorded.connect(self._nothing_recorded)
        self.banner.clear()
        focus = page.first_focus()
        (focus or page).setFocus(Qt.FocusReason.OtherFocusReason)

    def _flow_closed(self, page: FlowPage) -> None:
        from consentdesk.gui.flows import AgentPrompt

        if page is not self.flow:
            return
        self._close_flow()
        if isinstance(page, AgentPrompt) and page.saved and self._pending_flow is not None:
            pending, self._pending_flow = self._pending_flow, None
            nxt = pending()
            if nxt is not None:
                self._show_flow(nxt)
            return
        self._pending_flow = None
        self.grid.setFocus(Qt.FocusReason.OtherFocusReason)

    def _close_flow(self) -> None:
        page, self.flow = self.flow, None
        if page is None:
            return
        self.inner.setCurrentWidget(self.body_scroll)
        self.flow_holder.removeWidget(page)
        page.deleteLater()
        self.header.set_compact(False)
        self.calls.release(self._hold)  # may start clearing an ended call

    # --- after-call work: nothing prepared is thrown away unasked ----------------------

    def guard(self, what: str, proceed: Callable[[], None]) -> bool:
        """Run *proceed* (which replaces the caller on screen) now if no open form
        would be lost; else ask in the form first. True if it ran now."""
        flow = self.flow
        if flow is None or not flow.holds_work:
            if flow is not None:
                self._pending_flow = None
                self._close_flow()  # nothing to lose; its hold on the caller goes with it
            proceed()
            return True
        flow.ask_discard(f"{what} closes the open form.", proceed)
        return False

    def end_or_close(self) -> None:
        """End (a manual call: the form stays for after-call work) or close the caller."""
        active = self.calls.active
        if active is not None and active.is_manual and active.is_live:
            self.calls.end_active()
            return
        self.guard("Closing this caller", self.calls.end_active)

    def _recorded(self, outcome: Outcome) -> None:
        self.captured.emit(outcome)
        if outcome.language:
            self.language = outcome.language
        if outcome.verified_by and self.call is not None and not self.call.verified_by:
            self.calls.set_verified(outcome.verified_by)
        status = outcome.status
        if (
            status is not None
            and self.call is not None
            and status.subject.number == self.call.number
        ):
            self.history_box.forget()
            self.apply_status(status)
            self.banner.success(outcome.summary)
            cell = self.selected_cell()
            if cell is not None and self.history_box.isVisible():
                self._show_history(cell[0])
        else:
            self.banner.success(f"For the previous caller — {outcome.summary}")

    def _nothing_recorded(self, message: str) -> None:
        self.banner.info(message)

    def start_consent(self) -> FlowPage | None:
        from consentdesk.gui.flows import ConsentFlow

        cell = self.selected_cell()
        if cell is not None and self.desk.catalogue is not None:
            # Lawful basis drives the capture: where the caller has a right to
            # object instead of a consent to give, the objection is offered.
            offer = basis_info(self.desk.catalogue.get(cell[0])).offer
            if offer == Offer.OBJECTION:
                return self.start_request(request_type=RequestType.OBJECTION)
        purposes = [cell[0]] if cell else []
        channels = [cell[1]] if cell else []
        return self._open(lambda env: ConsentFlow(env, purposes=purposes, channels=channels))

    def start_withdrawal(self, *, group: str | None = None) -> FlowPage | None:
        from consentdesk.gui.flows import WithdrawalFlow

        if not self.withdraw_button.isEnabled():
            return None  # Ctrl+W with nothing given: no form that can only say so
        cell = self.selected_cell()
        cells = [cell] if cell and group is None else []
        return self._open(lambda env: WithdrawalFlow(env, cells=cells, group=group))

    def start_request(self, *, request_type: RequestType | None = None) -> FlowPage | None:
        from consentdesk.gui.flows import RequestFlow

        return self._open(lambda env: RequestFlow(env, request_type=request_type))

    def start_correction(self) -> FlowPage | None:
        from consentdesk.gui.flows import CorrectionFlow

        event = self.selected_event()
        if event is None:
            return None
        return self._open(lambda env: CorrectionFlow(env, event))

    def start_verify(self) -> FlowPage | None:
        from consentdesk.gui.flows import VerifyFlow

        if self.call is None or self.call.verified_by or self.header.unknown:
            return None  # no account to check an unknown caller against
        return self._open(lambda env: VerifyFlow(env))

    def _fill_withdraw_menu(self) -> None:
        from consentdesk.gui.flows import withdrawable_cells

        self.withdraw_menu.clear()
        catalogue = self.desk.catalogue
        if self.status is None or catalogue is None:
            return
        groups: dict[str, int] = {}
        for cell in withdrawable_cells(self.status, self.desk):
            g = catalogue.get(cell.purpose).group
            groups[g] = groups.get(g, 0) + 1
        if not groups:
            action = self.withdraw_menu.addAction("Nothing is currently given")
            action.setEnabled(False)
            return
        for g, n in groups.items():
            action = QAction(f"All {labels.group_title(g).lower()} ({n})", self.withdraw_menu)
            action.triggered.connect(lambda _=False, grp=g: self.start_withdrawal(group=grp))
            self.withdraw_menu.addAction(action)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.grid.hasFocus():
            self.start_consent()
            return
        super().keyPressEvent(event)
