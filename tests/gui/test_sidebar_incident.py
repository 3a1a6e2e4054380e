"""Issue 6 in the sidebar: incident banner, one-click call tag, read-access log of
status lookups, and the Review action for leads — on a real ledger in tmp_path."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from sidebar_support import (
    AGENT,
    DIALLED,
    NUMBER,
    click,
    ledger,
    open_caller_by_typing,
    record_consent,
)

from consentdesk.domain.backend import Backend
from consentdesk.domain.incident import IncidentClosed, IncidentOpened
from consentdesk.domain.model import Channel, utcnow
from consentdesk.domain.review import (
    Forbidden,
    ReadAccess,
    ReadKind,
    ReadLogFilter,
    Role,
    Viewer,
)
from consentdesk.gui.app import create_app
from consentdesk.gui.incident_banner import IncidentBanner, TagState
from consentdesk.gui.main import Sidebar, build_sidebar
from consentdesk.gui.review.window import ReviewWindow
from consentdesk.platform.config import Config
from consentdesk.platform.context import Context
from consentdesk.stores import review_access, review_sql
from consentdesk.stores.ledger import FILE_NAME, EmbeddedLedger, open_ledger

MakeSidebar = Callable[..., Sidebar]
LEAD = Viewer("l.lead", Role.LEAD, "north")
SCRIPT = "We are aware that some letters went to the wrong address. We are sorry."
WAIT = 10_000


def open_incident(data_dir: Path, *, title: str = "Letters sent to wrong addresses") -> uuid.UUID:
    """A lead opens an incident through the core API (another desk, same ledger)."""
    note = IncidentOpened(
        incident_id=uuid.uuid4(),
        title=title,
        what_happened="A print run used last month's address file.",
        aware_at=utcnow() - timedelta(hours=2),
        purposes=("marketing-offers",),
        regions=("DE",),
        script=SCRIPT,
        by=LEAD.name,
    )
    with ledger(data_dir) as led:
        review_sql.record_incident(led, note, LEAD)
    return note.incident_id


def close_incident(data_dir: Path, incident_id: uuid.UUID) -> None:
    with ledger(data_dir) as led:
        review_sql.record_incident(
            led, IncidentClosed(incident_id, "customers informed", by=LEAD.name), LEAD
        )


def banner_of(sidebar: Sidebar) -> IncidentBanner:
    banner = sidebar.window.incident_banner
    assert banner is not None, "the banner is built once the ledger is open"
    return banner


def reads_of(data_dir: Path) -> list[ReadAccess]:
    with ledger(data_dir) as led:
        source = review_sql.SqlReviewSource(led, Viewer("auditor", Role.ADMIN))
        entries = source.read_log(ReadLogFilter(subject=NUMBER))
    return [e.read for e in reversed(entries)]  # oldest first


@pytest.fixture
def polling_sidebar(qtbot: QtBot, ctx: Context) -> Iterator[Callable[[int], Sidebar]]:
    """A sidebar whose incident poll runs every few milliseconds."""
    create_app()
    made: list[Sidebar] = []

    def make(poll_ms: int) -> Sidebar:
        sidebar = build_sidebar(ctx, incident_poll_ms=poll_ms)
        made.append(sidebar)
        with qtbot.waitExposed(sidebar.window):
            sidebar.window.show()
        with qtbot.waitSignal(sidebar.desk.ready, timeout=WAIT):
            sidebar.desk.load()
        return sidebar

    yield make
    for sidebar in made:
        sidebar.shutdown()


# --- the banner -----------------------------------------------------------------------


def test_banner_shows_the_open_incident_and_goes_when_it_closes(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    sidebar = make_sidebar()
    banner = banner_of(sidebar)
    assert banner.timer.isActive() and banner.timer.interval() == 60_000
    qtbot.waitUntil(lambda: not banner._fetching, timeout=WAIT)
    assert not banner.isVisible() and banner.cards == []

    incident_id = open_incident(data_dir)
    banner.refresh()
    qtbot.waitUntil(banner.isVisible, timeout=WAIT)
    (card,) = banner.cards
    assert card.incident_id == incident_id
    assert card.script.toPlainText() == SCRIPT
    assert card.title.text() == "Letters sent to wrong addresses"
    # Accessible: named, said in words (not colour alone), script readable by name.
    assert banner.accessibleName() == "Data incident"
    assert "Letters sent to wrong addresses" in banner.accessibleDescription()
    assert "Data incident open" in banner.heading.text()
    assert card.script.accessibleName() == "Approved incident script"
    assert card.script.accessibleDescription() == SCRIPT
    # No caller yet: nothing to tag.
    assert card.state == TagState.NO_CALL and not card.tag_button.isEnabled()
    # Collapsed to the strip, the sidebar still says an incident is open.
    sidebar.window.set_collapsed(True)
    assert sidebar.window.strip_incident.isVisible()
    assert "Data incident open" in sidebar.window.strip_incident.toolTip()
    sidebar.window.set_collapsed(False)

    close_incident(data_dir, incident_id)
    with qtbot.waitSignal(banner.changed, timeout=WAIT):
        banner.refresh()
    assert not banner.isVisible() and banner.cards == []
    assert sidebar.window.strip_incident.isHidden()


def test_the_poll_timer_removes_a_closed_incident_by_itself(
    qtbot: QtBot, polling_sidebar: Callable[[int], Sidebar], data_dir: Path
) -> None:
    incident_id = open_incident(data_dir)
    sidebar = polling_sidebar(30)
    banner = banner_of(sidebar)
    qtbot.waitUntil(banner.isVisible, timeout=WAIT)
    close_incident(data_dir, incident_id)
    qtbot.waitUntil(lambda: not banner.isVisible(), timeout=WAIT)
    assert banner.incidents == ()


def test_a_new_call_refreshes_the_banner(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    sidebar = make_sidebar()
    banner = banner_of(sidebar)
    qtbot.waitUntil(lambda: not banner._fetching, timeout=WAIT)
    open_incident(data_dir)
    assert not banner.isVisible()
    sidebar.calls.manual_call(NUMBER)  # no refresh() by hand: the call brings it
    qtbot.waitUntil(banner.isVisible, timeout=WAIT)


# --- tagging the call -----------------------------------------------------------------


def test_one_click_tags_the_active_call_once_and_confirms_after_the_receipt(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    incident_id = open_incident(data_dir)
    sidebar = make_sidebar()
    banner = banner_of(sidebar)
    qtbot.waitUntil(banner.isVisible, timeout=WAIT)
    (card,) = banner.cards
    assert not card.tag_button.isEnabled(), "no call on screen"

    open_caller_by_typing(qtbot, sidebar)
    call = sidebar.calls.active
    assert call is not None and call.call_id is not None
    assert card.tag_button.isEnabled() and card.state == TagState.READY

    receipts: list[object] = []
    banner.tagged.connect(receipts.append)
    card.tag_button.click()
    card.tag_button.click()  # a double click while the first is on its way
    banner.tag(incident_id)
    assert card.state == TagState.TAGGING and not card.tag_button.isEnabled()
    assert not card.confirmation.isVisible(), "confirmed only once the store has it"
    with qtbot.waitSignal(banner.tagged, timeout=WAIT) as tagged:
        pass
    assert tagged.args is not None and tagged.args[0].call_id == call.call_id
    assert card.state == TagState.TAGGED
    assert card.confirmation.isVisible()
    assert "incident-related" in card.confirmation.text()
    assert not card.tag_button.isEnabled()
    qtbot.waitUntil(lambda: not sidebar.runner.busy, timeout=WAIT)
    banner.tag(incident_id)  # pressed again after the receipt
    assert not sidebar.runner.busy and len(receipts) == 1, "one tag task, one receipt"

    with ledger(data_dir) as led:
        tags = review_sql.call_tags(led, incident_id)
    assert [(t.call_id, t.agent) for t in tags] == [(call.call_id, AGENT)]

    # A lookup has no call id: nothing to tag.
    sidebar.calls.look_up(NUMBER)
    assert card.state == TagState.NO_CALL and not card.tag_button.isEnabled()


def test_tagging_a_closed_incident_fails_inline_and_the_card_goes(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    incident_id = open_incident(data_dir)
    sidebar = make_sidebar()
    banner = banner_of(sidebar)
    open_caller_by_typing(qtbot, sidebar)
    qtbot.waitUntil(banner.isVisible, timeout=WAIT)
    close_incident(data_dir, incident_id)  # closed on another desk before the click
    (card,) = banner.cards
    with qtbot.waitSignal(banner.changed, timeout=WAIT):
        click(qtbot, card.tag_button)
    assert not banner.isVisible()
    with ledger(data_dir) as led:
        assert review_sql.call_tags(led, incident_id) == ()


# --- the read-access log --------------------------------------------------------------


class WatchedLedger(EmbeddedLedger):
    """The real ledger, noting which threads appended records."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.append_threads: set[int] = set()

    def append_record(self, record, *, check=None):  # type: ignore[no-untyped-def]
        self.append_threads.add(threading.get_ident())
        return super().append_record(record, check=check)


def test_each_status_lookup_is_logged_on_the_worker(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    opened: list[WatchedLedger] = []

    def open_watched() -> Backend:
        opened.append(WatchedLedger(data_dir / FILE_NAME))
        return opened[-1]

    sidebar = make_sidebar(open_backend=open_watched)
    open_caller_by_typing(qtbot, sidebar)  # a manual call: the read carries its id
    call = sidebar.calls.active
    assert call is not None and call.call_id is not None
    window = sidebar.window
    qtbot.keyClicks(window.lookup, DIALLED)
    with qtbot.waitSignal(window.panel.caller_shown, timeout=WAIT):
        click(qtbot, window.lookup_button)  # a lookup without a call
    qtbot.waitUntil(lambda: not sidebar.runner.busy, timeout=WAIT)

    reads = reads_of(data_dir)
    assert [(r.reader, r.subject, r.what, r.call_id) for r in reads] == [
        (AGENT, NUMBER, ReadKind.STATUS, call.call_id),
        (AGENT, NUMBER, ReadKind.STATUS, None),
    ]
    assert opened and opened[0].append_threads
    assert threading.get_ident() not in opened[0].append_threads, "logged on the GUI thread"


def test_a_read_that_cannot_be_logged_is_not_shown(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    class Unloggable(EmbeddedLedger):
        def append_record(self, record, *, check=None):  # type: ignore[no-untyped-def]
            raise OSError("disk full")

    sidebar = make_sidebar(open_backend=lambda: Unloggable(data_dir / FILE_NAME))
    panel = sidebar.window.panel
    sidebar.calls.manual_call(NUMBER)
    qtbot.waitUntil(lambda: panel.banner.mode == panel.banner.ERROR, timeout=WAIT)
    assert "disk full" in panel.banner.text.text()
    assert panel.status is None


# --- the Review action ----------------------------------------------------------------


def test_agents_do_not_see_the_review_action(qtbot: QtBot, make_sidebar: MakeSidebar) -> None:
    sidebar = make_sidebar()
    window = sidebar.window
    assert sidebar.desk.role == "agent"
    assert not window.review_button.isVisible()
    action = window.actions_by_name["review"]
    assert not action.isVisible() and not action.isEnabled()
    qtbot.waitUntil(lambda: not sidebar.runner.busy, timeout=WAIT)

    def review_windows() -> set[int]:  # earlier tests' closed windows may linger
        return {id(w) for w in QApplication.topLevelWidgets() if isinstance(w, ReviewWindow)}

    before = review_windows()
    window.open_review()
    assert not sidebar.runner.busy, "nothing was asked of the store"
    assert window.review_window is None
    assert review_windows() <= before


def test_a_lead_opens_the_review_window_on_the_sidebar_ledger(
    qtbot: QtBot, make_sidebar: MakeSidebar, config: Config, data_dir: Path
) -> None:
    config.set("general.role", "lead")
    record_consent(data_dir, "marketing-offers", Channel.PHONE)
    sidebar = make_sidebar()
    window = sidebar.window
    assert window.review_button.isVisible()
    assert "(Ctrl+R)" in window.review_button.toolTip()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=WAIT)
    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.review_window is not None, timeout=WAIT)
    review = window.review_window
    assert review is not None
    qtbot.waitUntil(review.isVisible, timeout=WAIT)
    assert review.viewer.name == AGENT
    # It reads the sidebar's own ledger: the consent captured earlier is listed.
    qtbot.waitUntil(lambda: review.table_model.rowCount() == 1, timeout=WAIT)

    click(qtbot, window.review_button)  # again: the same window comes forward
    assert window.review_window is review
    sidebar.shutdown()  # closes the review before the ledger it shares
    assert not shiboken6.isValid(review)


# --- the seam -------------------------------------------------------------------------


class NotALedger:
    """A store that has no review side (stands in for one not wired yet)."""


def test_the_seam_refuses_other_backends_and_agents(data_dir: Path) -> None:
    other: Backend = NotALedger()  # type: ignore[assignment]
    viewer = Viewer(AGENT, Role.AGENT)
    for attempt in (
        lambda: review_access.incidents_for(other, viewer),
        lambda: review_access.review_source_for(other, LEAD),
        lambda: review_access.log_status_read(other, viewer, NUMBER, None),
    ):
        with pytest.raises(review_access.ReviewUnavailable, match="not available on this backend"):
            attempt()
    with open_ledger(data_dir) as led:
        with pytest.raises(Forbidden):
            review_access.review_source_for(led, viewer)
        source = review_access.review_source_for(led, LEAD)
        assert source.viewer.role == Role.ADMIN  # the local file has no teams
        source.close()
        assert led.status(NUMBER).subject.number == NUMBER, "the shared ledger stays open"
