"""Wiring softphones into the sidebar: hand-offs, baresip and the recent-calls list.

``attach_telephony`` is the one call the sidebar's launch makes. Every call
event, whatever its source, reaches ``CallController.handle`` on the GUI
thread; the recent-calls store is written on the task runner's worker.
"""

from __future__ import annotations

import argparse
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QTimer, Signal, Slot
from PySide6.QtGui import QFileOpenEvent

from consentdesk.platform.config import ConfigError
from consentdesk.telephony.baresip import BaresipConnector, parse_hostport
from consentdesk.telephony.calls import RecentCalls
from consentdesk.telephony.events import CallEvent
from consentdesk.telephony.handoff import CallIdResolver
from consentdesk.telephony.inbox import EventInbox
from consentdesk.telephony.uri import InvalidUri, parse_call_uri

if TYPE_CHECKING:
    from consentdesk.gui.calls import CallController
    from consentdesk.gui.ipc import InstanceServer
    from consentdesk.gui.tasks import TaskRunner
    from consentdesk.platform.context import Context

log = logging.getLogger("consentdesk.gui.telephony")


URI_SCHEMES = ("consentdesk:", "tel:", "sip:", "sips:")
# Connector events are routed in slices of at most this long, so hand-offs,
# paints and timers are served between slices even during a flood.
ROUTE_SLICE_S = 0.008
ROUTE_BATCH = 64
# Call events waiting to be written to the recent-calls store. One write job
# is queued at a time; under a flood the oldest unwritten events are dropped
# (counted and logged) rather than queued without bound.
RECENT_BACKLOG = 2000


class _UriOpenFilter(QObject):
    """Routes the URLs the OS hands a running app (QFileOpenEvent) to the call path."""

    def __init__(self, telephony: Telephony) -> None:
        super().__init__(telephony)
        self.telephony = telephony

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if isinstance(event, QFileOpenEvent):
            url = event.url().toString()
            if url.lower().startswith(URI_SCHEMES):
                self.telephony.open_uri(url)
                return True
        return False


class Telephony(QObject):
    """Live softphone wiring of one sidebar; :meth:`stop` on quit.

    Signals:
        event_routed(object): each ``CallEvent`` after it reached the controller
            (call ids resolved), for the recent-calls view and tests.
    """

    event_routed = Signal(object)
    _connector_ready = Signal()
    _link_from_connector = Signal(bool)

    def __init__(
        self,
        controller: CallController,
        *,
        region: str,
        baresip: str = "",
        server: InstanceServer | None = None,
        tasks: TaskRunner | None = None,
        open_recent_calls: Callable[[], RecentCalls] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.region = region
        self.server = server
        self.tasks = tasks
        self._open_recent = open_recent_calls
        self._recent: RecentCalls | None = None  # touched on the worker thread only
        self._resolver = CallIdResolver()
        self.connector: BaresipConnector | None = None
        self.baresip_address = baresip
        self._uri_filter: _UriOpenFilter | None = None
        # The connector thread fills a bounded inbox (it blocks when full: TCP
        # back-pressure); one queued signal per batch wakes this thread.
        self.inbox: EventInbox[CallEvent] = EventInbox(on_ready=self._connector_ready.emit)
        self._more = QTimer(self)
        self._more.setSingleShot(True)
        self._more.setInterval(0)
        self._more.timeout.connect(self._drain_inbox)
        self._connector_ready.connect(self._drain_inbox)
        self._link_from_connector.connect(self._link)
        self._unwritten: deque[CallEvent] = deque()
        self._writing = False
        self.recent_dropped = 0
        if server is not None:
            server.region = region  # the sidebar normalises handed-over numbers
            server.call_received.connect(self._route_handoff)
        if baresip:
            host, port = parse_hostport(baresip)
            self.connector = BaresipConnector(
                host,
                port,
                region=region,
                on_event=self.inbox.put,
                on_link=self._link_from_connector.emit,
            )
            controller.set_link_state(False, f"connecting to baresip at {baresip}")
            self.connector.start()

    # --- routing ---------------------------------------------------------------

    @Slot(object)
    def _route_handoff(self, event: CallEvent) -> None:
        self._route(self._resolver.resolve(event))

    @Slot()
    def _drain_inbox(self) -> None:
        """Route connector events for one time slice; the rest after a yield."""
        deadline = time.monotonic() + ROUTE_SLICE_S
        while True:
            batch = self.inbox.take(ROUTE_BATCH)
            if not batch:
                return
            for event in batch:
                self._route(event)
            if time.monotonic() >= deadline:
                self._more.start()  # let the event loop breathe, then go on
                return

    @Slot(object)
    def _route(self, event: CallEvent) -> None:
        self.controller.handle(event)
        self._remember(event)
        self.event_routed.emit(event)

    def listen_for_uris(self) -> None:
        """Take URLs the OS delivers to the running app (macOS URL scheme events)."""
        app = QCoreApplication.instance()
        if app is not None and self._uri_filter is None:
            self._uri_filter = _UriOpenFilter(self)
            app.installEventFilter(self._uri_filter)

    def open_uri(self, uri: str) -> bool:
        """A URI handed to this process (macOS delivers them as FileOpen events)."""
        try:
            event = parse_call_uri(uri, region=self.region)
        except InvalidUri as exc:
            log.warning("refused a call URI: %s", exc)
            return False
        self._route_handoff(event)
        return True

    @Slot(bool)
    def _link(self, up: bool) -> None:
        where = self.baresip_address
        self.controller.set_link_state(
            up, f"baresip connected ({where})" if up else f"baresip not reachable at {where}"
        )

    # --- recent calls ------------------------------------------------------------

    def _store(self) -> RecentCalls:
        # Runs on the worker (jobs run one at a time, in order): no lock needed.
        if self._recent is None:
            assert self._open_recent is not None
            self._recent = self._open_recent()
        return self._recent

    def _remember(self, event: CallEvent) -> None:
        if self._open_recent is None or self.tasks is None:
            return
        if len(self._unwritten) >= RECENT_BACKLOG:
            self._unwritten.popleft()
            self.recent_dropped += 1
            if self.recent_dropped in (1, 100) or self.recent_dropped % 10_000 == 0:
                log.warning(
                    "call flood: %d call events not kept in the recent-calls list",
                    self.recent_dropped,
                )
        self._unwritten.append(event)
        if not self._writing:
            self._write_recent()

    def _write_recent(self) -> None:
        """Queue one job writing every unwritten event (one transaction)."""
        if not self._unwritten or self.tasks is None:
            return
        events = list(self._unwritten)
        self._unwritten.clear()
        self._writing = True
        self.tasks.run(
            lambda: self._store().record_many(events),
            on_success=lambda _r: self._written(),
            on_failure=lambda _e: self._written(),
            label="recent-calls",
        )

    def _written(self) -> None:
        self._writing = False
        self._write_recent()

    def _flush_now(self) -> None:
        if self._unwritten and self.tasks is not None:
            events = list(self._unwritten)
            self._unwritten.clear()
            self.tasks.run(lambda: self._store().record_many(events), label="recent-calls")

    def note_capture(self, call_id: str | None, event_id: uuid.UUID) -> None:
        """A capture was recorded during *call_id*: list it with that recent call."""
        if self._open_recent is None or self.tasks is None or not call_id:
            return
        self._flush_now()  # the call's own events go first: jobs run in order
        self.tasks.run(lambda: self._store().add_capture(call_id, event_id), label="recent-calls")

    def recent_calls(self, on_success: Callable[[object], None]) -> None:
        """Fetch this shift's calls (a list of ``CallRecord``) on the worker."""
        if self._open_recent is None or self.tasks is None:
            on_success([])
            return
        self._flush_now()
        self.tasks.run(lambda: self._store().recent(), on_success=on_success, label="recent-calls")

    def stop(self) -> None:
        """Stop the connector and the hand-off server (idempotent)."""
        connector, self.connector = self.connector, None
        self.inbox.close()  # releases a connector waiting for room
        self._more.stop()
        if connector is not None:
            # No more connector signals: nothing may be left queued for this
            # object once the event loop has stopped.
            self._connector_ready.disconnect(self._drain_inbox)
            self._link_from_connector.disconnect(self._link)
            connector.stop()
            QCoreApplication.removePostedEvents(self)
        if self.server is not None:
            self.server.close()
        app = QCoreApplication.instance()
        if self._uri_filter is not None and app is not None:
            app.removeEventFilter(self._uri_filter)
            self._uri_filter = None


def attach_telephony(
    controller: CallController,
    ctx: Context,
    args: argparse.Namespace,
    *,
    server: InstanceServer | None,
    tasks: TaskRunner | None,
) -> Telephony:
    """Connect hand-offs (``server`` from ``gui.ipc.claim_instance``), baresip and
    the recent-calls store to *controller*; drains calls spooled before start.

    The baresip address is ``--baresip`` if given, else ``telephony.baresip``.
    """
    baresip = getattr(args, "baresip", None)
    if baresip is None:
        baresip = str(ctx.config.get("telephony.baresip"))
    if baresip:
        try:
            parse_hostport(baresip)
        except ValueError as exc:
            raise ConfigError(f"baresip address: {exc}") from None
    telephony = Telephony(
        controller,
        region=ctx.region,
        baresip=baresip,
        server=server,
        tasks=tasks,
        open_recent_calls=lambda: RecentCalls.open(ctx.data_dir, ctx.config),
    )
    telephony.listen_for_uris()
    if server is not None:
        server.drain()
    return telephony
