"""The incident banner: while a data incident is open, every sidebar shows its approved
agent script, and the agent tags the call on screen as incident-related in one click.

Open incidents are fetched through the desk's task runner whenever they change
(a watcher thread, :mod:`consentdesk.stores.incident_changes`, hears of it within
a second or two: the team server pushes it by long poll, the embedded ledger's
file is watched), whenever a new call comes on screen, and once a minute in
case a change was missed; closing an incident removes its card at that fetch.
A tag is recorded with the call id and confirmed only once the store has it.
The banner is built after the ledger opened, so start-up never loads it.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QResizeEvent, QTextOption
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from consentdesk.gui import theme
from consentdesk.gui.calls import Call, CallController
from consentdesk.gui.desk import Desk
from consentdesk.gui.tasks import describe_error
from consentdesk.gui.widgets import StateChip, scaled_font

if TYPE_CHECKING:
    from consentdesk.domain.backend import Backend
    from consentdesk.domain.incident import CallTag, Incident
    from consentdesk.stores.incident_changes import IncidentChanges, IncidentWatcher

log = logging.getLogger("consentdesk.gui.incident")

# Its own colour (not the red of errors) and always the word and the warning sign.
INCIDENT = theme.Look("Data incident open", theme.Glyph.WARNING, "#7b1fa2", "#ce93d8")
TAG_LABEL = "Incident-related"
MAX_SCRIPT_LINES = 8


class TagState(enum.Enum):
    NO_CALL = "no-call"  # nothing to tag: no caller, or a lookup without a call id
    READY = "ready"
    TAGGING = "tagging"
    TAGGED = "tagged"
    FAILED = "failed"


class ScriptView(QTextBrowser):
    """The approved script as plain text: grows to a few lines, then scrolls, so a long
    script never pushes the caller off the narrow sidebar."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Approved incident script")
        self.setReadOnly(True)
        self.setOpenLinks(False)
        self.setPlainText(text)
        self.setAccessibleDescription(text)
        self.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.document().documentLayout().documentSizeChanged.connect(self._fit)

    def _fit(self) -> None:
        chrome = 2 * self.frameWidth() + 4
        full = int(self.document().size().height()) + chrome
        cap = self.fontMetrics().lineSpacing() * MAX_SCRIPT_LINES + chrome
        height = min(full, cap)
        if self.height() != height:
            self.setFixedHeight(height)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.document().setTextWidth(self.viewport().width())
        self._fit()


class IncidentCard(QFrame):
    """One open incident: its title, the script to read and the tag button.

    Signals:
        tag_requested(object): the agent pressed the tag button (the incident id).
    """

    tag_requested = Signal(object)

    def __init__(self, incident: Incident, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.incident_id = incident.incident_id
        title = incident.opened.title
        self.setAccessibleName(f"Incident: {title}")
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 4, 0, 0)
        box.setSpacing(4)
        self.title = QLabel(title)
        self.title.setWordWrap(True)
        self.title.setFont(scaled_font(self.title, 1.0, bold=True))
        self.title.setAccessibleName("Incident title")
        box.addWidget(self.title)
        self.script = ScriptView(incident.opened.script)
        box.addWidget(self.script)
        row = QHBoxLayout()
        row.setSpacing(6)
        self.confirmation = StateChip()
        self.confirmation.setAccessibleName("Incident tag")
        self.confirmation.hide()
        self.tag_button = QPushButton(TAG_LABEL)
        self.tag_button.setAccessibleName(TAG_LABEL)
        self.tag_button.clicked.connect(lambda: self.tag_requested.emit(self.incident_id))
        row.addWidget(self.confirmation, 1)
        row.addWidget(self.tag_button, 0, Qt.AlignmentFlag.AlignTop)
        box.addLayout(row)
        self.state = TagState.NO_CALL
        self.set_state(TagState.NO_CALL)

    def set_state(self, state: TagState, message: str = "") -> None:
        self.state = state
        title = self.title.text()
        button = self.tag_button
        button.setEnabled(state in (TagState.READY, TagState.FAILED))
        button.setText("Tagging…" if state == TagState.TAGGING else TAG_LABEL)
        if state == TagState.NO_CALL:
            button.setToolTip("Tagging needs a call on screen (a lookup has no call id)")
        else:
            button.setToolTip(f"Record that this call is about “{title}”, with its call id")
        if state == TagState.TAGGED:
            self.confirmation.set_state(theme.SUCCESS, "Tagged: this call is incident-related")
        elif state == TagState.FAILED:
            self.confirmation.set_state(theme.FAILURE, f"Not tagged: {message}")
        self.confirmation.setVisible(state in (TagState.TAGGED, TagState.FAILED))


class IncidentBanner(QFrame):
    """Open incidents' scripts and the one-click call tag, on every sidebar.

    Hidden while no incident is open, and on a store without incident mode.

    Signals:
        changed(): the open incidents shown changed (appeared, closed, replaced).
        tagged(object): a tag was recorded (the ``CallTag`` the store returned).
    """

    changed = Signal()
    tagged = Signal(object)
    _incidents_moved = Signal()  # from the watcher's thread: queued to this one

    def __init__(
        self,
        desk: Desk,
        calls: CallController,
        *,
        poll_ms: int,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.desk = desk
        self.calls = calls
        self.incidents: tuple[Incident, ...] = ()
        self.cards: list[IncidentCard] = []
        self.available = True
        self._shown: tuple[tuple[uuid.UUID, str, str], ...] = ()
        self._call_id = calls.active.call_id if calls.active is not None else None
        self._fetching = False
        self._running = False
        self._tagging: set[tuple[uuid.UUID, str]] = set()
        self._tagged: set[tuple[uuid.UUID, str]] = set()
        self._errors: dict[tuple[uuid.UUID, str], str] = {}
        self.setObjectName("incidentBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName("Data incident")
        color, tint = INCIDENT.color(), INCIDENT.tint()
        self.setStyleSheet(
            f"#incidentBanner {{ background: rgba({tint.red()},{tint.green()},{tint.blue()},"
            f"{tint.alpha()}); border: 2px solid {color.name()}; border-radius: 4px; }}"
        )
        box = QVBoxLayout(self)
        box.setContentsMargins(8, 6, 8, 8)
        box.setSpacing(4)
        head = QHBoxLayout()
        head.setSpacing(8)
        icon = QLabel()
        icon.setPixmap(INCIDENT.icon().pixmap(QSize(20, 20)))
        icon.setFixedSize(20, 20)
        icon.setAccessibleName(INCIDENT.label)
        self.heading = QLabel(f"{INCIDENT.label} — read the approved script")
        self.heading.setWordWrap(True)
        self.heading.setFont(scaled_font(self.heading, 1.05, bold=True))
        self.heading.setAccessibleName("Data incident heading")
        head.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        head.addWidget(self.heading, 1)
        box.addLayout(head)
        self.cards_box = QVBoxLayout()
        self.cards_box.setSpacing(6)
        box.addLayout(self.cards_box)
        self.timer = QTimer(self)
        self.timer.setInterval(poll_ms)
        self.timer.timeout.connect(self.refresh)
        self.watcher: IncidentWatcher | None = None
        self._watch_generation = 0
        self._incidents_moved.connect(self.refresh)
        calls.active_changed.connect(self._call_changed)
        self.hide()

    # --- polling ---------------------------------------------------------------

    def start(self) -> None:
        """Fetch the open incidents now and then every poll interval."""
        if not self.available:
            return
        self._running = True
        self.timer.start()
        self.refresh()
        self._watch()

    def stop(self) -> None:
        """No more fetches (the sidebar is closing, or the store has no incidents)."""
        self._running = False
        self.timer.stop()
        self._stop_watch()

    def _watch(self) -> None:
        """Start a watcher on the current store (made on the worker, which owns it)."""
        self._stop_watch()
        generation = self._watch_generation

        def changes(backend: Backend) -> IncidentChanges | None:
            from consentdesk.stores.incident_changes import incident_changes_for

            return incident_changes_for(backend)

        def made(found: IncidentChanges | None) -> None:
            if found is None or generation != self._watch_generation or not self._running:
                if found is not None:
                    found.close()
                return
            from consentdesk.stores.incident_changes import IncidentWatcher

            self.watcher = IncidentWatcher(found, self._incidents_moved.emit)
            self.watcher.start()

        def failed(exc: BaseException) -> None:
            log.info("incident changes are not watched (%s); polling", type(exc).__name__)

        self.desk.runner.call(changes, on_success=made, on_failure=failed, label="incident watch")

    def _stop_watch(self) -> None:
        self._watch_generation += 1
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            watcher.stop(timeout=0.5)

    @Slot()
    def refresh(self) -> None:
        """Fetch the open incidents on the worker (one fetch at a time)."""
        if not self._running or self._fetching:
            return
        self._fetching = True
        viewer = self.desk.viewer()

        def fetch(backend: Backend) -> tuple[Incident, ...]:
            from consentdesk.stores.review_access import incidents_for

            return tuple(incidents_for(backend, viewer).incidents(open_only=True))

        self.desk.runner.call(
            fetch, on_success=self._fetched, on_failure=self._fetch_failed, label="incidents"
        )

    def _fetched(self, incidents: tuple[Incident, ...]) -> None:
        self._fetching = False
        if self._running:
            self.show_incidents(incidents)

    def _fetch_failed(self, exc: BaseException) -> None:
        from consentdesk.stores.review_access import ReviewUnavailable

        self._fetching = False
        if isinstance(exc, ReviewUnavailable):
            log.info("incident mode is not available on this backend")
            self.available = False
            self.stop()
            self.show_incidents(())
            return
        # Keep showing what was open: a failed fetch does not close an incident.
        log.warning("could not fetch open incidents (%s)", type(exc).__name__)

    def show_incidents(self, incidents: Sequence[Incident]) -> None:
        """Show these open incidents (none: the banner hides)."""
        self.incidents = tuple(incidents)
        shown = tuple((i.incident_id, i.opened.title, i.opened.script) for i in self.incidents)
        if shown != self._shown:
            self._shown = shown
            self._rebuild()
            self.changed.emit()
        self.setVisible(bool(self.incidents))

    def _rebuild(self) -> None:
        for card in self.cards:
            self.cards_box.removeWidget(card)
            card.deleteLater()
        self.cards = []
        for incident in self.incidents:
            card = IncidentCard(incident)
            card.tag_requested.connect(self.tag)
            self.cards_box.addWidget(card)
            self.cards.append(card)
        titles = "; ".join(i.opened.title for i in self.incidents)
        self.setAccessibleDescription(f"{INCIDENT.label}: {titles}" if titles else "")
        self._update_cards()

    # --- tagging the call on screen ----------------------------------------------

    def _call_changed(self, call: Call | None) -> None:
        call_id = call.call_id if call is not None else None
        if call_id == self._call_id:
            return
        self._call_id = call_id
        self._update_cards()
        if call_id is not None:
            self.refresh()  # a new call: make sure its agent sees what is open now

    def _update_cards(self) -> None:
        for card in self.cards:
            if self._call_id is None:
                card.set_state(TagState.NO_CALL)
                continue
            key = (card.incident_id, self._call_id)
            if key in self._tagging:
                card.set_state(TagState.TAGGING)
            elif key in self._tagged:
                card.set_state(TagState.TAGGED)
            elif key in self._errors:
                card.set_state(TagState.FAILED, self._errors[key])
            else:
                card.set_state(TagState.READY)

    def card_for(self, incident_id: uuid.UUID) -> IncidentCard | None:
        return next((c for c in self.cards if c.incident_id == incident_id), None)

    @Slot(object)
    def tag(self, incident_id: uuid.UUID) -> None:
        """Tag the call on screen for *incident_id*; a second press while the first
        is on its way, or after it was recorded, does nothing."""
        call_id = self._call_id
        if call_id is None or self.card_for(incident_id) is None:
            return
        key = (incident_id, call_id)
        if key in self._tagging or key in self._tagged:
            return
        self._tagging.add(key)
        self._errors.pop(key, None)
        self._update_cards()
        # The caller stays on screen until the store answered, like a capture.
        self.calls.block_clear(key)
        viewer = self.desk.viewer()

        def record(backend: Backend) -> CallTag:
            from consentdesk.domain.incident import CallTag
            from consentdesk.stores.review_access import incidents_for

            return incidents_for(backend, viewer).tag_call(
                CallTag(incident_id, call_id, viewer.name)
            )

        def recorded(tag: CallTag) -> None:
            self._tagging.discard(key)
            self._tagged.add(key)
            self.calls.unblock_clear(key)
            self._update_cards()
            log.info("call tagged as incident-related")
            self.tagged.emit(tag)

        def failed(exc: BaseException) -> None:
            self._tagging.discard(key)
            self._errors[key] = describe_error(exc)
            self.calls.unblock_clear(key)
            self._update_cards()
            self.refresh()  # the incident may have closed meanwhile

        self.desk.runner.call(record, on_success=recorded, on_failure=failed, label="tag call")
