"""Assemble and run the sidebar: app, worker, desk, call controller, window, telephony."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtWidgets import QApplication

from consentdesk.gui.calls import CallController
from consentdesk.gui.desk import SYNC_INTERVAL_MS, Desk
from consentdesk.gui.tasks import TaskRunner
from consentdesk.gui.window import INCIDENT_POLL_MS, SettingsPageFactory, SidebarWindow
from consentdesk.platform.context import Context

if TYPE_CHECKING:
    from consentdesk.domain.backend import Backend
    from consentdesk.gui.flows import Outcome

log = logging.getLogger("consentdesk.gui")

# Set to a file path: the first painted frame's time (time.monotonic()) and the
# peak memory (KiB) then are written there; once the ledger is open the peak
# memory again, and the sidebar quits. The cold-start benchmark and the launch
# test use it.
STARTUP_PROBE_ENV = "CONSENTDESK_STARTUP_PROBE"


def embedded_backend(ctx: Context) -> Callable[[], Backend]:
    """Opens the embedded ledger in the data folder (called on the worker)."""

    def open_backend() -> Backend:
        from consentdesk.platform.calendar import controller_calendar
        from consentdesk.stores.ledger import open_ledger

        return open_ledger(ctx.data_dir, calendar=controller_calendar(ctx.config))

    return open_backend


def open_server_backend(ctx: Context, url: str) -> Backend:
    """The team server's backend for *url* (on the worker), or a one-line reason why not.

    The token comes from the OS keyring, else ``CONSENTDESK_TOKEN``; without
    either the agent is sent to Settings (or, with no keyring, to the variable).
    """
    from consentdesk.gui.desk import NO_KEYRING, NOT_SIGNED_IN
    from consentdesk.platform import secrets
    from consentdesk.stores.http_backend import AuthError, check_server_url, open_http_backend

    url = check_server_url(url)  # a bad address says so before the keyring is asked
    token = secrets.resolve_token(url)
    if not token:
        if not secrets.keyring_available():
            raise secrets.KeyringUnavailable(f"{NO_KEYRING} in the environment to sign in")
        raise AuthError(NOT_SIGNED_IN)
    from consentdesk.platform.calendar import controller_calendar

    ca_bundle = str(ctx.config.get("server.ca_bundle")).strip() or None
    return open_http_backend(
        url,
        ctx.data_dir,
        ca_bundle=ca_bundle,
        token=token,
        calendar=controller_calendar(ctx.config),
    )


def desk_backend(ctx: Context) -> Callable[[], Backend]:
    """Opens the desk's store on the worker: the team server when ``server.url`` is
    set, else the embedded ledger. The setting is read at each opening, so signing
    in to a server takes effect when the desk reopens its backend."""
    embedded = embedded_backend(ctx)

    def open_backend() -> Backend:
        url = str(ctx.config.get("server.url")).strip()
        return open_server_backend(ctx, url) if url else embedded()

    return open_backend


@dataclass
class Sidebar:
    """One running sidebar and the parts tests and connectors talk to."""

    desk: Desk
    calls: CallController
    window: SidebarWindow
    runner: TaskRunner
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    closed: bool = False

    def shutdown(self) -> None:
        """Stop connectors, close the window, finish the worker, then delete the Qt
        objects in a fixed order (leaving them to the interpreter's exit crashes).
        Safe to call twice, and after the window was already closed or deleted."""
        if self.closed:
            return
        self.closed = True
        if shiboken6.isValid(self.desk):
            self.desk.stop()  # no sync pass may be queued after the worker stops
        for cleanup in reversed(self.cleanups):
            cleanup()
        self.cleanups.clear()
        if shiboken6.isValid(self.window):
            self.window.close()
            # The banner and the review window share the worker's backend.
            self.window.close_side_windows()
        self.runner.shutdown()
        for obj in (self.window, self.calls, self.desk, self.runner):
            if shiboken6.isValid(obj):
                shiboken6.delete(obj)


def build_sidebar(
    ctx: Context,
    *,
    open_backend: Callable[[], Backend] | None = None,
    settings_pages: list[SettingsPageFactory] | None = None,
    incident_poll_ms: int = INCIDENT_POLL_MS,
    sync_interval_ms: int = SYNC_INTERVAL_MS,
) -> Sidebar:
    """Create the sidebar's objects (needs a QApplication); nothing is opened yet.

    The store is the team server when ``server.url`` is set, else the embedded
    ledger (*open_backend* replaces that choice). The settings dialog gets the
    team server sign-in page, then *settings_pages*. Open incidents are fetched
    every *incident_poll_ms* once the ledger is open; on the team server waiting
    captures are sent every *sync_interval_ms* (and right after each capture).
    """
    from consentdesk.gui.settings import team_server_page

    runner = TaskRunner(open_backend=open_backend or desk_backend(ctx))
    desk = Desk(ctx.config, runner, sync_interval_ms=sync_interval_ms)
    calls = CallController(clear_after_seconds=int(ctx.config.get("sidebar.clear_after_seconds")))
    window = SidebarWindow(
        desk,
        calls,
        settings_pages=[team_server_page, *(settings_pages or [])],
        incident_poll_ms=incident_poll_ms,
    )
    sidebar = Sidebar(desk=desk, calls=calls, window=window, runner=runner)
    from consentdesk.gui.receipts import attach_receipts

    sidebar.cleanups.append(attach_receipts(window.panel, desk, ctx.data_dir).stop)
    return sidebar


def _peak_rss_kb() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _write_startup_probe(path: str) -> None:
    painted = time.monotonic()
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"{painted} {_peak_rss_kb()}\n")


def _hand_caller_to_running(ctx: Context, caller: str) -> None:
    """``--caller`` while a sidebar already runs: that one starts the manual call."""
    from consentdesk.gui.calls import new_manual_call_id
    from consentdesk.gui.ipc import send_to_running
    from consentdesk.telephony.events import CallEvent, CallPhase, CallSource
    from consentdesk.telephony.handoff import InstancePaths

    event = CallEvent(
        CallPhase.ANSWERED,
        new_manual_call_id(),
        CallSource.MANUAL,
        caller,
        raw_number=caller,
    )
    if not send_to_running(event, timeout_ms=1000, paths=InstancePaths.for_data_dir(ctx.data_dir)):
        log.warning("the running sidebar did not take the caller")


def run_sidebar(ctx: Context, args: argparse.Namespace, *, caller: str | None = None) -> int:
    """Open the sidebar (single instance per data folder) and run until it closes.

    The window is painted first; the ledger opens and the softphone connectors
    start right after, so the agent sees the sidebar as early as possible.
    """
    from consentdesk.gui.app import create_app
    from consentdesk.gui.ipc import claim_instance

    app = create_app()
    server = claim_instance(ctx.data_dir)
    if server is None:
        if caller is not None:
            _hand_caller_to_running(ctx, caller)
        print("consentdesk: the sidebar is already running; brought it to the front")
        return 0
    sidebar = build_sidebar(ctx)
    window = sidebar.window
    server.show_requested.connect(window.bring_forward)
    sidebar.cleanups.append(lambda: shiboken6.delete(server))
    probe = os.environ.get(STARTUP_PROBE_ENV)

    def start_background() -> None:
        from consentdesk.gui.telephony_glue import attach_telephony

        if probe:
            _write_startup_probe(probe)

            def loaded() -> None:
                with open(probe, "a", encoding="utf-8") as fh:
                    fh.write(f"{_peak_rss_kb()}\n")
                QApplication.quit()

            sidebar.desk.ready.connect(loaded)
            sidebar.desk.load_failed.connect(lambda _message: QApplication.exit(1))
        sidebar.desk.load()
        telephony = attach_telephony(sidebar.calls, ctx, args, server=server, tasks=sidebar.runner)

        def note_captures(outcome: Outcome) -> None:
            for event in outcome.events:
                telephony.note_capture(event.call_id, event.event_id)
            if outcome.request is not None:
                telephony.note_capture(outcome.request.call_id, outcome.request.request_id)

        def stop_telephony() -> None:
            telephony.stop()
            shiboken6.delete(telephony)

        window.panel.captured.connect(note_captures)
        sidebar.cleanups.append(stop_telephony)

    window.first_painted.connect(start_background)
    if caller is not None:
        sidebar.calls.manual_call(caller)
    window.show()
    try:
        return int(app.exec())
    finally:
        sidebar.shutdown()
        sys.stdout.flush()
