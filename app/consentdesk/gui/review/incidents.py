"""Incident panel: open an incident, watch the 72-hour clock, record the authority
notification, see tagged calls per hour, close.

The clock is recomputed every half minute from UTC instants (no I/O); the
tags are reloaded through the window's background tasks.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, QTimer
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListView,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from consentdesk.domain.incident import (
    NOTIFY_WITHIN,
    CallTag,
    ClockStage,
    Incident,
    IncidentNote,
    describe_clock,
    notification_clock,
    tagged_per_hour,
)
from consentdesk.domain.model import Purpose
from consentdesk.domain.review import Viewer, format_local
from consentdesk.gui import theme
from consentdesk.gui.review.charts import BarChart, Series
from consentdesk.gui.review.dialogs import CloseIncidentDialog, NotifyDialog, OpenIncidentDialog
from consentdesk.gui.review.models import IncidentListModel
from consentdesk.gui.widgets import StateChip, section_title

TICK_MS = 30_000
TAG_RELOAD_TICKS = 2

STAGE_LOOKS: dict[ClockStage, theme.Look] = {
    ClockStage.RUNNING: theme.NOTICE,
    ClockStage.WARNING: theme.DUE_SOON,
    ClockStage.URGENT: theme.OVERDUE,
    ClockStage.OVERDUE: theme.OVERDUE,
    ClockStage.NOTIFIED: theme.SUCCESS,
    ClockStage.NOTIFIED_LATE: theme.DUE_SOON,
}

# call(fn, on_success, label): run fn(source) in the background, deliver on the GUI thread.
Call = Callable[[Callable[[Any], Any], Callable[[Any], None], str], None]


class IncidentPanel(QWidget):
    """Leads run incidents here; agents see the script in their sidebar banner."""

    def __init__(
        self,
        call: Call,
        viewer: Viewer,
        *,
        tz: tzinfo,
        clock: Callable[[], datetime],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setAccessibleName("Incidents")
        self._call = call
        self._viewer = viewer
        self._tz = tz
        self._clock = clock
        self._purposes: tuple[Purpose, ...] = ()
        self._tags: dict[uuid.UUID, tuple[CallTag, ...]] = {}
        self._ticks = 0
        self.model = IncidentListModel(self)
        self.model._now = clock

        outer = QHBoxLayout(self)
        split = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(split)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(section_title("Incidents"))
        self.list = QListView()
        self.list.setAccessibleName("Incident list")
        self.list.setModel(self.model)
        self.list.selectionModel().currentChanged.connect(self._on_current)
        left_layout.addWidget(self.list, 1)
        self.open_button = QPushButton("&Open incident…")
        self.open_button.setToolTip("Open a new incident (Alt+O)")
        self.open_button.setAccessibleName("Open incident")
        self.open_button.clicked.connect(self.ask_open)
        left_layout.addWidget(self.open_button)
        split.addWidget(left)

        right = QWidget()
        r = QVBoxLayout(right)
        self.title = section_title("No incident selected")
        r.addWidget(self.title)
        self.facts = QLabel()
        self.facts.setWordWrap(True)
        self.facts.setAccessibleName("Incident facts")
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        r.addWidget(self.facts)
        self.clock_chip = StateChip()
        self.clock_chip.setAccessibleName("Notification clock")
        r.addWidget(self.clock_chip)
        self.clock_bar = QProgressBar()
        self.clock_bar.setRange(0, int(NOTIFY_WITHIN.total_seconds() // 60))
        self.clock_bar.setFormat("%v of 4320 minutes")
        self.clock_bar.setAccessibleName("Time used of the 72 hours")
        r.addWidget(self.clock_bar)
        r.addWidget(QLabel("Approved agent script (shown in every sidebar while open):"))
        self.script = QPlainTextEdit()
        self.script.setReadOnly(True)
        self.script.setAccessibleName("Agent script")
        self.script.setMaximumHeight(110)
        r.addWidget(self.script)
        self.chart = BarChart("Incident-tagged calls per hour")
        r.addWidget(self.chart, 1)
        buttons = QHBoxLayout()
        self.notify_button = QPushButton("Record authority &notification…")
        self.notify_button.setToolTip("Record when the supervisory authority was notified (Alt+N)")
        self.notify_button.setAccessibleName("Record authority notification")
        self.notify_button.clicked.connect(self.ask_notify)
        self.close_button = QPushButton("&Close incident…")
        self.close_button.setToolTip(
            "Close the incident; the banner goes, the record stays (Alt+C)"
        )
        self.close_button.setAccessibleName("Close incident")
        self.close_button.clicked.connect(self.ask_close)
        buttons.addWidget(self.notify_button)
        buttons.addWidget(self.close_button)
        buttons.addStretch(1)
        r.addLayout(buttons)
        split.addWidget(right)
        split.setStretchFactor(1, 2)

        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self._show(None)

    # -- data

    def set_purposes(self, purposes: Sequence[Purpose]) -> None:
        self._purposes = tuple(purposes)

    def refresh(self, *, select: uuid.UUID | None = None) -> None:
        self._call(
            lambda src: src.incidents(),
            lambda incidents: self._on_incidents(incidents, select),
            "incidents",
        )

    def _on_incidents(self, incidents: Sequence[Incident], select: uuid.UUID | None) -> None:
        current = self.current()
        self.model.set_incidents(incidents)
        keep = select or (current.incident_id if current else None)
        if keep is None and incidents:
            keep = incidents[0].incident_id
        row = self.model.row_of(keep) if keep else None
        if row is not None:
            self.list.setCurrentIndex(self.model.index(row))
        else:
            self._show(None)
        if not self.timer.isActive():
            self.timer.start()

    def current(self) -> Incident | None:
        index = self.list.currentIndex()
        return self.model.incident(index.row()) if index.isValid() else None

    def _on_current(self, index: QModelIndex, _previous: QModelIndex) -> None:
        inc = self.model.incident(index.row()) if index.isValid() else None
        self._show(inc)
        if inc is not None:
            self._load_tags(inc)

    def _load_tags(self, inc: Incident) -> None:
        incident_id = inc.incident_id

        def done(tags: Sequence[CallTag]) -> None:
            self._tags[incident_id] = tuple(tags)
            self._update_chart()

        self._call(lambda src: src.call_tags(incident_id), done, "call tags")

    # -- showing

    def _show(self, inc: Incident | None) -> None:
        has = inc is not None
        self.notify_button.setEnabled(has and inc.is_open and inc.notified is None)  # type: ignore[union-attr]
        self.close_button.setEnabled(has and inc.is_open)  # type: ignore[union-attr]
        if inc is None:
            self.title.setText("No incident selected")
            self.facts.clear()
            self.script.clear()
            self.clock_chip.set_state(theme.NOTICE, "Open an incident to start the 72-hour clock.")
            self.clock_bar.setValue(0)
            self.chart.set_data([], [])
            return
        o = inc.opened
        self.title.setText(o.title + ("" if inc.is_open else " (closed)"))
        lines = [
            o.what_happened,
            f"Aware since {format_local(o.aware_at, self._tz)} · opened by {o.by}",
            f"Purposes: {', '.join(o.purposes) or '—'} · Regions: {', '.join(o.regions) or '—'}",
        ]
        if inc.notified is not None:
            n = inc.notified
            ref = f" (ref. {n.authority_ref})" if n.authority_ref else ""
            lines.append(
                f"Notified {n.authority}{ref} at {format_local(n.notified_at, self._tz)} by {n.by}"
            )
        if inc.closed is not None:
            lines.append(f"Closed {format_local(inc.closed.at, self._tz)}: {inc.closed.summary}")
        self.facts.setText("\n".join(lines))
        self.script.setPlainText(o.script)
        self._update_clock()
        self._update_chart()

    def _update_clock(self) -> None:
        inc = self.current()
        if inc is None:
            return
        clock = notification_clock(inc, self._clock())
        self.clock_chip.set_state(STAGE_LOOKS[clock.stage], describe_clock(clock, self._tz))
        self.clock_chip.setProperty("stage", clock.stage.value)
        minutes = int(min(clock.elapsed, NOTIFY_WITHIN).total_seconds() // 60)
        self.clock_bar.setValue(max(0, minutes))

    def clock_text(self) -> str:
        return self.clock_chip.text()

    def clock_stage(self) -> str:
        return str(self.clock_chip.property("stage") or "")

    def _update_chart(self) -> None:
        inc = self.current()
        if inc is None:
            return
        tags = self._tags.get(inc.incident_id, ())
        end = inc.closed.at if inc.closed else self._clock()
        start = max(inc.opened.aware_at, end - NOTIFY_WITHIN)
        hours = tagged_per_hour(tags, start, end + timedelta(microseconds=1))
        labels = [format_local(h.start, self._tz)[11:] for h in hours]
        self.chart.set_data(
            labels,
            [
                Series(
                    "Tagged calls",
                    tuple(float(h.count) for h in hours),
                    theme.NOTICE.color().name(),
                )
            ],
        )

    def _tick(self) -> None:
        self._update_clock()
        self._ticks += 1
        inc = self.current()
        if inc is not None and inc.is_open and self._ticks % TAG_RELOAD_TICKS == 0:
            self._load_tags(inc)

    # -- actions

    def _record(self, note: IncidentNote) -> None:
        def done(inc: Incident) -> None:
            self.refresh(select=inc.incident_id)

        self._call(lambda src: src.record_incident(note), done, "incident")

    def ask_open(self) -> None:
        dialog = OpenIncidentDialog(self._purposes, by=self._viewer.name, tz=self._tz, parent=self)
        dialog.accepted.connect(lambda: self._record(dialog.result_record))
        dialog.open()

    def ask_notify(self) -> None:
        inc = self.current()
        if inc is None:
            return
        dialog = NotifyDialog(inc, by=self._viewer.name, tz=self._tz, parent=self)
        dialog.accepted.connect(lambda: self._record(dialog.result_record))
        dialog.open()

    def ask_close(self) -> None:
        inc = self.current()
        if inc is None:
            return
        dialog = CloseIncidentDialog(inc, by=self._viewer.name, parent=self)
        dialog.accepted.connect(lambda: self._record(dialog.result_record))
        dialog.open()
