"""The team lead's review window: actions, privacy-request queue, figures, read log
and incidents, with CSV / ISO 27560 export and the ledger integrity check.

Every store call runs through :class:`consentdesk.gui.tasks.TaskRunner`: one
runner for what the lead is waiting on (pages, proof, flags), one for the long
jobs (exports, figures, the integrity walk) so they never hold up the table.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from PySide6.QtCore import QDate, QModelIndex, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from consentdesk import __version__
from consentdesk.domain.calendars import Calendar
from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.export import (
    KANTARA_SCHEMA,
    TS27560_SCHEMA,
    Controller,
    customers_requests,
    ts27560_records,
    view_rows,
    write_actions_csv,
    write_json,
)
from consentdesk.domain.kantara import find_event, kantara_receipt
from consentdesk.domain.model import Channel, Jurisdiction, utcnow
from consentdesk.domain.review import (
    ACTION_LABELS,
    ActionDetail,
    ActionKind,
    Figures,
    Flag,
    FlagAction,
    FlagNote,
    IntegrityReport,
    Page,
    PageResult,
    QueueBucket,
    QueueItem,
    ReadLogEntry,
    ReadLogFilter,
    ReviewFilter,
    ReviewSource,
    Viewer,
    local_days,
    parse_search,
    raise_flag,
    resolve_flag,
)
from consentdesk.gui import theme
from consentdesk.gui.review.charts import BarChart, Series, percent
from consentdesk.gui.review.detail import DetailPane
from consentdesk.gui.review.dialogs import CommentDialog, MoveRequestDialog
from consentdesk.gui.review.incidents import IncidentPanel
from consentdesk.gui.review.models import ActionTableModel, ReadLogModel, RequestQueueModel
from consentdesk.gui.tasks import TaskRunner, describe_error
from consentdesk.gui.widgets import Banner, StateChip, section_title

log = logging.getLogger("consentdesk.gui.review")

READ_LOG_PAGE = 200
FIGURE_PERIODS = (("Last 7 days", 7), ("Last 14 days", 14), ("Last 30 days", 30))
MAX_AGENT_SERIES = 6


class SourceHolder:
    """Opens the review source on first use, on whichever worker asks first."""

    def __init__(self, open_source: Callable[[], ReviewSource]) -> None:
        self._open = open_source
        self._lock = threading.Lock()
        self._source: ReviewSource | None = None

    def get(self) -> ReviewSource:
        with self._lock:
            if self._source is None:
                self._source = self._open()
            return self._source

    def close(self) -> None:
        with self._lock:
            source, self._source = self._source, None
        if source is not None:
            source.close()


def _combo(name: str, items: Sequence[tuple[str, Any]]) -> QComboBox:
    box = QComboBox()
    box.setAccessibleName(name)
    box.setToolTip(name)
    for text, data in items:
        box.addItem(text, data)
    return box


class ReviewWindow(QMainWindow):
    """Team-lead review on a :class:`ReviewSource` (embedded ledger or team server)."""

    def __init__(
        self,
        open_source: Callable[[], ReviewSource],
        viewer: Viewer,
        *,
        region: str,
        controller: Controller,
        tz: tzinfo,
        clock: Callable[[], datetime] = utcnow,
        page_size: int = 200,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._page_size = page_size
        self.viewer = viewer
        self.region = region
        self.controller = controller
        self.tz = tz
        self.clock = clock
        self.catalogue: Catalogue | None = None
        self._holder = SourceHolder(open_source)
        self._tasks = TaskRunner(name="review-worker", parent=self)
        self._slow = TaskRunner(name="review-slow-worker", parent=self)
        self._closed = False
        team = f", team {viewer.team}" if viewer.team else ""
        self.setWindowTitle(f"Consent Desk review — {viewer.name} ({viewer.role}{team})")
        self.setAccessibleName("Consent Desk review")
        self._fit_to_screen(1280, 820)

        central = QWidget()
        self.setCentralWidget(central)
        outer = QVBoxLayout(central)
        self.banner = Banner("review-banner")
        outer.addWidget(self.banner)
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Review sections")
        outer.addWidget(self.tabs, 1)

        self._build_toolbar()
        self._build_actions_tab()
        self._build_requests_tab()
        self._build_figures_tab()
        self._build_read_log_tab()
        self.incidents = IncidentPanel(self.call, viewer, tz=tz, clock=clock)
        self.tabs.addTab(self.incidents, "&Incidents")
        self.tabs.currentChanged.connect(self._on_tab)
        self._tasks.busy_changed.connect(self._on_busy)
        self.statusBar().showMessage(f"Signed in as {viewer.name} ({viewer.role}{team})")
        self._start()

    def _fit_to_screen(self, width: int, height: int) -> None:
        """*width* × *height*, or less on a smaller screen (1366×768 laptops)."""
        screen = self.screen()
        if screen is not None:
            room = screen.availableGeometry()
            # The window frame and title bar come on top of the size asked for.
            width = min(width, room.width() - 16)
            height = min(height, room.height() - 48)
        self.resize(width, height)

    # -- background work

    def call(
        self,
        fn: Callable[[ReviewSource], Any],
        on_success: Callable[[Any], None],
        label: str,
        *,
        slow: bool = False,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Run ``fn(source)`` on a worker; the result comes back on the GUI thread."""
        if self._closed:
            return
        holder = self._holder
        runner = self._slow if slow else self._tasks
        runner.run(
            lambda: fn(holder.get()),
            on_success=on_success,
            on_failure=on_failure or (lambda exc: self._failed(label, exc)),
            label=label,
        )

    def _failed(self, label: str, exc: BaseException) -> None:
        self.banner.error(f"Could not {label}: {describe_error(exc)}")

    def _on_busy(self, busy: bool) -> None:
        self.loading_label.setVisible(busy)

    def _start(self) -> None:
        self.call(
            lambda src: (src.catalogue(), src.agents(), src.teams()),
            self._on_start,
            "open the review",
        )
        self.table_model.reload()

    def _on_start(self, result: tuple[Catalogue, Sequence[str], Sequence[str]]) -> None:
        catalogue, agents, teams = result
        self.catalogue = catalogue
        self._fill(self.agent_box, [(a, a) for a in agents], "All agents")
        self._fill(self.team_box, [(t, t) for t in teams], "All teams")
        self.team_box.setVisible(bool(teams))
        self._fill(self.purpose_box, [(p.title, p.id) for p in catalogue], "All purposes")
        self.incidents.set_purposes(catalogue.purposes)
        titles = {p.id: p.title for p in catalogue}
        for model in (self.table_model, self.detail.call_model, self.detail.history_model):
            model.set_titles(titles)

    @staticmethod
    def _fill(box: QComboBox, items: Sequence[tuple[str, Any]], everything: str) -> None:
        box.blockSignals(True)
        box.clear()
        box.addItem(everything, None)
        for text, data in items:
            box.addItem(text, data)
        box.blockSignals(False)

    # -- toolbar

    def _action(self, text: str, shortcut: str, tip: str, slot: Callable[[], None]) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(f"{tip} ({shortcut})")
        action.triggered.connect(slot)
        self.toolbar.addAction(action)
        return action

    def _build_toolbar(self) -> None:
        self.toolbar = QToolBar("Review")
        self.toolbar.setAccessibleName("Review tools")
        self.addToolBar(self.toolbar)
        self.refresh_action = self._action(
            "Refresh", "F5", "Load the current tab again", self.refresh
        )
        self.csv_action = self._action(
            "Export CSV…", "Ctrl+E", "Save the filtered actions as CSV", self.export_csv
        )
        self.json_action = self._action(
            "Export ISO 27560 JSON…",
            "Ctrl+Shift+E",
            "Save the filtered consents as ISO/IEC TS 27560 records",
            self.export_27560,
        )
        self.full_numbers = QCheckBox("Full numbers in CSV")
        self.full_numbers.setToolTip(
            "Export full numbers instead of the last digits; logged as a read"
        )
        self.full_numbers.setAccessibleName("Full numbers in CSV")
        self.toolbar.addWidget(self.full_numbers)
        self.toolbar.addSeparator()
        self.verify_action = self._action(
            "Check integrity", "Ctrl+I", "Walk the ledger's hash chain", self.check_integrity
        )

    # -- actions tab

    def _build_actions_tab(self) -> None:
        tab = QWidget()
        v = QVBoxLayout(tab)
        bar = QGridLayout()
        self.agent_box = _combo("Agent", [("All agents", None)])
        self.team_box = _combo("Team", [("All teams", None)])
        self.kind_box = _combo(
            "Action", [("All actions", None)] + [(ACTION_LABELS[k], k) for k in ActionKind]
        )
        self.purpose_box = _combo("Purpose", [("All purposes", None)])
        self.channel_box = _combo(
            "Channel", [("All channels", None)] + [(c.value, c) for c in Channel]
        )
        self.jurisdiction_box = _combo(
            "Jurisdiction",
            [("All jurisdictions", None)] + [(j.value.upper(), j) for j in Jurisdiction],
        )
        self.flagged_box = _combo(
            "Flagged", [("Flagged or not", None), ("Flagged only", True), ("Not flagged", False)]
        )
        self.dates_check = QCheckBox("&Dates")
        self.dates_check.setToolTip("Only actions on these local days (Alt+D)")
        self.dates_check.setAccessibleName("Filter by dates")
        today = self.clock().astimezone(self.tz).date()
        self.from_date = QDateEdit(QDate(today.year, today.month, today.day).addDays(-1))
        self.to_date = QDateEdit(QDate(today.year, today.month, today.day))
        for edit, name in ((self.from_date, "From day"), (self.to_date, "To day")):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setAccessibleName(name)
            edit.setToolTip(name)
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("Number, last digits, request reference or call id")
        self.search_box.setAccessibleName("Search")
        self.search_box.setToolTip("Search (Ctrl+F); Enter applies")
        self.search_box.setClearButtonEnabled(True)
        find = QAction(self)
        find.setShortcut(QKeySequence("Ctrl+F"))
        find.triggered.connect(lambda: self.search_box.setFocus())
        self.addAction(find)
        self.apply_button = QPushButton("&Apply")
        self.apply_button.setToolTip("Apply the filter (Alt+A)")
        self.apply_button.setAccessibleName("Apply filter")
        self.reset_button = QPushButton("Rese&t")
        self.reset_button.setToolTip("Show everything again (Alt+T)")
        self.reset_button.setAccessibleName("Reset filter")
        widgets = [
            self.agent_box,
            self.team_box,
            self.kind_box,
            self.purpose_box,
            self.channel_box,
            self.jurisdiction_box,
            self.flagged_box,
        ]
        for i, w in enumerate(widgets):
            bar.addWidget(w, 0, i)
            if isinstance(w, QComboBox):
                w.currentIndexChanged.connect(self.apply_filter)
        dates = QHBoxLayout()
        dates.addWidget(self.dates_check)
        dates.addWidget(self.from_date)
        dates.addWidget(QLabel("to"))
        dates.addWidget(self.to_date)
        bar.addLayout(dates, 1, 0, 1, 3)
        bar.addWidget(self.search_box, 1, 3, 1, 2)
        bar.addWidget(self.apply_button, 1, 5)
        bar.addWidget(self.reset_button, 1, 6)
        self.dates_check.toggled.connect(self.apply_filter)
        self.from_date.dateChanged.connect(self._dates_changed)
        self.to_date.dateChanged.connect(self._dates_changed)
        self.search_box.returnPressed.connect(self.apply_filter)
        self.apply_button.clicked.connect(self.apply_filter)
        self.reset_button.clicked.connect(self.reset_filter)
        v.addLayout(bar)

        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        self.table_model = ActionTableModel(
            self._load_page, tz=self.tz, page_size=self._page_size, parent=self
        )
        self.table_model.load_failed.connect(lambda exc: self._failed("load actions", exc))
        self.table_model.page_loaded.connect(self._on_page)
        self.table = QTableView()
        self.table.setAccessibleName("Captured actions")
        self.table.setModel(self.table_model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.horizontalHeader().setSortIndicator(
            ActionTableModel.TIME, Qt.SortOrder.DescendingOrder
        )
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.table.selectionModel().currentRowChanged.connect(self._on_row)
        lv.addWidget(self.table, 1)
        footer = QHBoxLayout()
        self.count_label = QLabel()
        self.count_label.setAccessibleName("Rows shown")
        self.loading_label = QLabel("Loading…")
        self.loading_label.setAccessibleName("Loading")
        self.loading_label.setVisible(False)
        footer.addWidget(self.count_label)
        footer.addStretch(1)
        footer.addWidget(self.loading_label)
        lv.addLayout(footer)
        split.addWidget(left)
        self.detail = DetailPane(tz=self.tz, region=self.region)
        self.detail.reveal_requested.connect(self.reveal_number)
        self.detail.flag_requested.connect(self.ask_flag)
        self.detail.resolve_requested.connect(self.ask_resolve)
        self.detail.receipt_requested.connect(self.export_receipt)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        v.addWidget(split, 1)
        self.tabs.addTab(tab, "&Actions")

    def _load_page(
        self,
        flt: ReviewFilter,
        page: Page,
        deliver: Callable[[PageResult], None],
        fail: Callable[[BaseException], None],
    ) -> None:
        self.call(lambda src: src.actions(flt, page), deliver, "load actions", on_failure=fail)

    def _on_page(self, _added: int) -> None:
        n = self.table_model.rowCount()
        if n == 0 and not self.table_model.canFetchMore():
            typed = self.search_box.text().strip()
            self.count_label.setText(
                f"Nothing matches “{typed}” with these filters."
                if typed
                else "No actions match these filters."
            )
            return
        more = " (scroll for more)" if self.table_model.canFetchMore() else ""
        self.count_label.setText(f"{n} action{'s' if n != 1 else ''} shown{more}")

    def current_filter(self) -> ReviewFilter:
        """The filter the bar describes; raises DomainError on a bad search or range."""
        since = until = None
        if self.dates_check.isChecked():
            first = self.from_date.date().toPython()
            last = self.to_date.date().toPython()
            assert isinstance(first, date) and isinstance(last, date)
            since, until = local_days(first, last, self.tz)
        kind = self.kind_box.currentData()
        return ReviewFilter(
            agent=self.agent_box.currentData(),
            team=self.team_box.currentData(),
            since=since,
            until=until,
            kinds=(kind,) if kind is not None else (),
            purpose=self.purpose_box.currentData(),
            channel=self.channel_box.currentData(),
            jurisdiction=self.jurisdiction_box.currentData(),
            flagged=self.flagged_box.currentData(),
            search=parse_search(self.search_box.text(), region=self.region),
        )

    def apply_filter(self) -> None:
        try:
            flt = self.current_filter()
        except Exception as exc:  # DomainError: a bad search or date range
            self.banner.error(describe_error(exc))
            return
        self.banner.clear()
        self.detail.show_detail(None)
        self.table_model.set_filter(flt)

    def _dates_changed(self) -> None:
        if self.dates_check.isChecked():
            self.apply_filter()

    def reset_filter(self) -> None:
        for box in (
            self.agent_box,
            self.team_box,
            self.kind_box,
            self.purpose_box,
            self.channel_box,
            self.jurisdiction_box,
            self.flagged_box,
        ):
            box.blockSignals(True)
            box.setCurrentIndex(0)
            box.blockSignals(False)
        self.dates_check.blockSignals(True)
        self.dates_check.setChecked(False)
        self.dates_check.blockSignals(False)
        self.search_box.clear()
        self.apply_filter()

    # -- detail, reveal, flags

    def _on_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        event_id = self.table_model.row_at(current.row()).event_id
        self.load_detail(event_id)

    def load_detail(self, event_id: uuid.UUID) -> None:
        def done(detail: ActionDetail) -> None:
            if self._selected_event() == event_id:
                self.detail.show_detail(detail)

        self.call(lambda src: src.action(event_id), done, "open the action")

    def _selected_event(self) -> uuid.UUID | None:
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        return self.table_model.row_at(index.row()).event_id

    def reveal_number(self) -> None:
        detail = self.detail.detail
        if detail is None:
            return
        event_id = detail.row.event_id

        def done(number: str) -> None:
            self.table_model.set_revealed(event_id, number)
            if self.detail.detail is not None and self.detail.detail.row.event_id == event_id:
                self.detail.show_number(number)

        self.call(lambda src: src.reveal_number(event_id), done, "reveal the number")

    def ask_flag(self) -> None:
        detail = self.detail.detail
        if detail is None:
            return
        event_id = detail.row.event_id
        by = self.viewer.name
        dialog = CommentDialog(
            "Flag action",
            "What is wrong with this capture?",
            lambda text: raise_flag(event_id, text, by=by),
            parent=self,
        )
        dialog.accepted.connect(lambda: self._record_flag(dialog.result_record))
        dialog.open()

    def ask_resolve(self, flag: Flag) -> None:
        by = self.viewer.name
        dialog = CommentDialog(
            "Resolve flag",
            "How was it resolved? (optional)",
            lambda text: resolve_flag(flag, text, by=by),
            parent=self,
        )
        dialog.accepted.connect(lambda: self._record_flag(dialog.result_record))
        dialog.open()

    def _record_flag(self, note: FlagNote) -> None:
        def done(_flag: Flag) -> None:
            raised = note.action == FlagAction.RAISE
            self.banner.success("Flag recorded." if raised else "Flag resolved.")
            self.load_detail(note.event_id)
            self.call(
                lambda src: src.flags(open_only=True),
                lambda flags: self.table_model.set_flagged(
                    note.event_id, any(f.event_id == note.event_id for f in flags)
                ),
                "refresh flags",
            )

        self.call(lambda src: src.record_flag(note), done, "record the flag")

    # -- requests tab

    def _build_requests_tab(self) -> None:
        tab = QWidget()
        v = QVBoxLayout(tab)
        head = QHBoxLayout()
        head.addWidget(section_title("Open privacy requests by due date"))
        self.queue_summary = StateChip()
        self.queue_summary.setAccessibleName("Queue summary")
        head.addWidget(self.queue_summary, 1)
        self.move_button = QPushButton("&Move status…")
        self.move_button.setToolTip("Move the selected request to its next status (Alt+M)")
        self.move_button.setAccessibleName("Move status")
        self.move_button.clicked.connect(self.ask_move)
        head.addWidget(self.move_button)
        v.addLayout(head)
        self.queue_model = RequestQueueModel(self)
        self.queue_view = QTableView()
        self.queue_view.setAccessibleName("Privacy request queue")
        self.queue_view.setModel(self.queue_model)
        self.queue_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.queue_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.queue_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.queue_view.verticalHeader().setVisible(False)
        self.queue_view.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self.queue_view.horizontalHeader().setStretchLastSection(True)
        self.queue_view.doubleClicked.connect(lambda _i: self.ask_move())
        v.addWidget(self.queue_view, 1)
        self.tabs.addTab(tab, "&Requests")

    def today(self) -> date:
        return self.clock().astimezone(self.tz).date()

    def load_queue(self) -> None:
        self.call(lambda src: src.request_queue(self.today()), self._on_queue, "load the queue")

    def _on_queue(self, items: Sequence[QueueItem]) -> None:
        self.queue_model.set_items(items)
        overdue = sum(1 for i in items if i.bucket == QueueBucket.OVERDUE)
        week = sum(1 for i in items if i.bucket == QueueBucket.DUE_THIS_WEEK)
        look = theme.OVERDUE if overdue else (theme.DUE_SOON if week else theme.ON_TRACK)
        self.queue_summary.set_state(
            look, f"{overdue} overdue · {week} due this week · {len(items)} open"
        )

    def ask_move(self) -> None:
        index = self.queue_view.currentIndex()
        if not index.isValid():
            self.banner.info("Select a request in the queue first.")
            return
        item = self.queue_model.item(index.row())
        calendar = Calendar(self.tz, self.region)
        dialog = MoveRequestDialog(item, by=self.viewer.name, calendar=calendar, parent=self)

        def move() -> None:
            change = dialog.result_record

            def done(_r: object) -> None:
                ref = item.request.reference
                said = [f"is now {change.status}"] if change.status else []
                said += ["has its receipt confirmed"] if change.confirmation else []
                self.banner.success(f"Request {ref} {' and '.join(said)}.")
                self.load_queue()

            self.call(lambda src: src.move_request(change), done, "move the request")

        dialog.accepted.connect(move)
        dialog.open()

    # -- figures tab

    def _build_figures_tab(self) -> None:
        tab = QWidget()
        v = QVBoxLayout(tab)
        head = QHBoxLayout()
        head.addWidget(section_title("Figures"))
        self.period_box = _combo("Period", [(t, n) for t, n in FIGURE_PERIODS])
        self.period_box.currentIndexChanged.connect(self.load_figures)
        head.addWidget(self.period_box)
        self.overdue_chip = StateChip()
        self.overdue_chip.setAccessibleName("Overdue requests")
        head.addWidget(self.overdue_chip, 1)
        v.addLayout(head)
        grid = QGridLayout()
        self.agent_chart = BarChart("Actions per agent per day")
        self.rates_chart = BarChart("Refusal and withdrawal rate per purpose")
        self.flow_chart = BarChart("Privacy requests opened vs closed per day")
        grid.addWidget(self.agent_chart, 0, 0, 1, 2)
        grid.addWidget(self.rates_chart, 1, 0)
        grid.addWidget(self.flow_chart, 1, 1)
        v.addLayout(grid, 1)
        self.tabs.addTab(tab, "&Figures")

    def load_figures(self) -> None:
        days = int(self.period_box.currentData() or 7)
        last = self.today()
        first = last - timedelta(days=days - 1)
        self.call(
            lambda src: src.figures(first, last, tz=self.tz),
            self._on_figures,
            "load the figures",
            slow=True,
        )

    def _on_figures(self, figures: Figures) -> None:
        days = []
        d = figures.first_day
        while d <= figures.last_day:
            days.append(d)
            d += timedelta(days=1)
        totals: dict[str, int] = {}
        for a in figures.agent_days:
            totals[a.agent] = totals.get(a.agent, 0) + a.count
        top = sorted(totals, key=lambda a: (-totals[a], a))[:MAX_AGENT_SERIES]
        per: dict[tuple[date, str], int] = {}
        for a in figures.agent_days:
            key = a.agent if a.agent in top else "Others"
            per[(a.day, key)] = per.get((a.day, key), 0) + a.count
        names = top + (["Others"] if len(totals) > len(top) else [])
        palette = ("#1f5fa8", "#1e7b34", "#a04a00", "#6b5b00", "#7b1fa2", "#00796b", "#5f6368")
        self.agent_chart.set_data(
            [f"{d:%a %d}" for d in days],
            [
                Series(name, tuple(float(per.get((d, name), 0)) for d in days), palette[i % 7])
                for i, name in enumerate(names)
            ],
        )
        rates = figures.purpose_rates
        titles = {p.id: p.title for p in self.catalogue} if self.catalogue else {}
        self.rates_chart.set_data(
            [titles.get(r.purpose, r.purpose) for r in rates],
            [
                Series("Refused", tuple(r.refusal_rate for r in rates), "#b3261e"),
                Series("Withdrawn", tuple(r.withdrawal_rate for r in rates), "#a04a00"),
            ],
            value_format=percent,
            maximum=1.0,
        )
        flow = figures.request_flow
        self.flow_chart.set_data(
            [f"{f.day:%a %d}" for f in flow],
            [
                Series("Opened", tuple(float(f.opened) for f in flow), "#1f5fa8"),
                Series("Closed", tuple(float(f.closed) for f in flow), "#1e7b34"),
            ],
        )
        look = theme.OVERDUE if figures.overdue else theme.ON_TRACK
        self.overdue_chip.set_state(
            look, f"{figures.overdue} overdue of {figures.open_requests} open requests"
        )

    # -- read log tab

    def _build_read_log_tab(self) -> None:
        tab = QWidget()
        v = QVBoxLayout(tab)
        head = QHBoxLayout()
        head.addWidget(section_title("Who looked at whom"))
        self.reader_box = QLineEdit()
        self.reader_box.setPlaceholderText("Reader")
        self.reader_box.setAccessibleName("Reader")
        self.customer_box = QLineEdit()
        self.customer_box.setPlaceholderText("Customer number")
        self.customer_box.setAccessibleName("Customer number")
        show = QPushButton("S&how")
        show.setToolTip("Show reads for this reader and/or customer (Alt+H)")
        show.setAccessibleName("Show reads")
        show.clicked.connect(self.load_read_log)
        self.reader_box.returnPressed.connect(self.load_read_log)
        self.customer_box.returnPressed.connect(self.load_read_log)
        head.addWidget(self.reader_box)
        head.addWidget(self.customer_box)
        head.addWidget(show)
        v.addLayout(head)
        self.read_model = ReadLogModel(tz=self.tz, parent=self)
        self.read_model.set_more_loader(self._load_reads_before)
        self.read_view = QTableView()
        self.read_view.setAccessibleName("Read-access log")
        self.read_view.setModel(self.read_model)
        self.read_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.read_view.verticalHeader().setVisible(False)
        self.read_view.horizontalHeader().setStretchLastSection(True)
        v.addWidget(self.read_view, 1)
        self.tabs.addTab(tab, "Read &log")

    def _read_filter(self, before: int | None = None) -> ReadLogFilter:
        from consentdesk.domain import phone

        number = self.customer_box.text().strip()
        subject = phone.normalize(number, self.region) if number else None
        return ReadLogFilter(
            reader=self.reader_box.text().strip() or None,
            subject=subject,
            limit=READ_LOG_PAGE,
            before_seq=before,
        )

    def load_read_log(self) -> None:
        try:
            flt = self._read_filter()
        except Exception as exc:  # InvalidNumber
            self.banner.error(describe_error(exc))
            return

        def done(entries: Sequence[ReadLogEntry]) -> None:
            self.read_model.set_entries(entries, has_more=len(entries) == READ_LOG_PAGE)

        self.call(lambda src: src.read_log(flt), done, "load the read log")

    def _load_reads_before(self, seq: int) -> None:
        flt = self._read_filter(before=seq)

        def done(entries: Sequence[ReadLogEntry]) -> None:
            self.read_model.append_entries(entries, has_more=len(entries) == READ_LOG_PAGE)

        self.call(lambda src: src.read_log(flt), done, "load older reads")

    # -- tabs

    def _on_tab(self, index: int) -> None:
        widget = self.tabs.widget(index)
        if widget is self.incidents:
            self.incidents.refresh()
        elif self.tabs.tabText(index) == "&Requests":
            self.load_queue()
        elif self.tabs.tabText(index) == "&Figures":
            self.load_figures()
        elif self.tabs.tabText(index) == "Read &log":
            self.load_read_log()

    def refresh(self) -> None:
        index = self.tabs.currentIndex()
        if index == 0:
            self.table_model.reload()
        else:
            self._on_tab(index)

    # -- export and integrity

    def choose_save_path(self, title: str, suggested: str, pattern: str) -> Path | None:
        """Ask where to save; None when the lead cancels."""
        path, _ = QFileDialog.getSaveFileName(self, title, suggested, pattern)
        return Path(path) if path else None

    def _write_atomically(self, path: Path, write: Callable[[Any], int | None]) -> int | None:
        part = path.with_name(path.name + ".part")
        try:
            with part.open("w", encoding="utf-8", newline="") as fh:
                result = write(fh)
            os.replace(part, path)
        finally:
            part.unlink(missing_ok=True)
        return result

    def export_csv(self) -> None:
        try:
            flt = self.current_filter()
        except Exception as exc:
            self.banner.error(describe_error(exc))
            return
        path = self.choose_save_path("Export CSV", f"review-{self.today()}.csv", "CSV (*.csv)")
        if path is None:
            return
        full = self.full_numbers.isChecked()
        tz = self.tz

        def job(src: ReviewSource) -> int | None:
            rows = view_rows(src, flt, full_numbers=full)
            return self._write_atomically(path, lambda fh: write_actions_csv(rows, fh, tz=tz))

        self.banner.busy(f"Exporting CSV to {path.name}…")
        self.call(
            job,
            lambda n: self.banner.success(f"Saved {n} actions to {path}."),
            "export CSV",
            slow=True,
        )

    def export_27560(self) -> None:
        try:
            flt = self.current_filter()
        except Exception as exc:
            self.banner.error(describe_error(exc))
            return
        path = self.choose_save_path(
            "Export ISO/IEC TS 27560 records",
            f"consent-records-{self.today()}.json",
            "JSON (*.json)",
        )
        if path is None:
            return
        controller = self.controller

        def job(src: ReviewSource) -> int:
            events = list(src.export_events(flt))
            doc = ts27560_records(
                events,
                src.catalogue(),
                controller,
                view=flt.describe(),
                generator=f"consentdesk {__version__}",
                requests=customers_requests(src, events),
            )
            self._write_atomically(path, lambda fh: write_json(doc, fh, schema_name=TS27560_SCHEMA))
            return int(doc["export"]["record_count"])

        self.banner.busy(f"Exporting consent records to {path.name}…")
        self.call(
            job,
            lambda n: self.banner.success(f"Saved {n} consent records to {path}."),
            "export consent records",
            slow=True,
        )

    def export_receipt(self) -> None:
        detail = self.detail.detail
        if detail is None:
            return
        event_id = detail.row.event_id
        path = self.choose_save_path(
            "Save Kantara consent receipt", "consent-receipt.json", "JSON (*.json)"
        )
        if path is None:
            return
        controller = self.controller

        def job(src: ReviewSource) -> None:
            number = src.reveal_number(event_id)
            event = find_event(src.customer_history(number), event_id)
            receipt = kantara_receipt(event, src.catalogue(), controller)
            self._write_atomically(
                path, lambda fh: write_json(receipt, fh, schema_name=KANTARA_SCHEMA)
            )

        self.call(
            job,
            lambda _r: self.banner.success(f"Saved the consent receipt to {path}."),
            "save the receipt",
            slow=True,
        )

    def check_integrity(self) -> None:
        self.banner.busy("Checking the ledger's hash chain…")

        def done(report: IntegrityReport) -> None:
            if report.ok:
                self.banner.success(report.message)
            else:
                self.banner.error(report.message)

        self.call(lambda src: src.verify(), done, "check integrity", slow=True)

    # -- closing

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Finish queued work, close the store on a worker and stop both threads."""
        if self._closed:
            return
        self._closed = True
        self.incidents.timer.stop()
        self._slow.shutdown()
        self._tasks.run(self._holder.close, label="close review")
        self._tasks.shutdown()
