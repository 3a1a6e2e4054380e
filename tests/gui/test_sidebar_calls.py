"""Call lifecycle: pop, answer, call waiting, switch, hang-up and clearing the screen."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PySide6.QtWidgets import QApplication, QPushButton
from pytestqt.qtbot import QtBot
from sidebar_support import NUMBER, click

from consentdesk.gui.calls import Call, CallController
from consentdesk.gui.main import Sidebar
from consentdesk.telephony.events import CallEvent, CallPhase, CallSource

OTHER = "+4930123456789"
MakeSidebar = Callable[..., Sidebar]


def ev(phase: CallPhase, call_id: str, number: str | None = NUMBER) -> CallEvent:
    return CallEvent(phase, call_id, CallSource.BARESIP, number, raw_number=number or "")


@pytest.fixture
def controller(qapp: QApplication) -> CallController:
    return CallController(clear_after_seconds=0)


def test_incoming_pops_answered_starts_and_ended_clears(
    qtbot: QtBot, controller: CallController
) -> None:
    with qtbot.waitSignals([controller.popped, controller.active_changed]):
        controller.handle(ev(CallPhase.INCOMING, "c1"))
    assert controller.active is not None and controller.active.call_id == "c1"
    assert controller.active.phase == CallPhase.INCOMING
    with qtbot.waitSignal(controller.active_updated):
        controller.handle(ev(CallPhase.ANSWERED, "c1"))
    assert controller.active.answered_at is not None
    with qtbot.waitSignal(controller.active_updated):
        controller.handle(ev(CallPhase.ENDED, "c1"))
    assert controller.active is not None and controller.active.phase == CallPhase.ENDED
    assert controller.clearing
    with qtbot.waitSignal(controller.active_changed, check_params_cb=lambda c: c is None):
        pass
    assert controller.active is None


def test_events_are_idempotent(qtbot: QtBot, controller: CallController) -> None:
    controller.handle(ev(CallPhase.INCOMING, "c1"))
    with qtbot.assertNotEmitted(controller.active_changed):
        controller.handle(ev(CallPhase.INCOMING, "c1"))
    controller.handle(ev(CallPhase.ANSWERED, "c1"))
    first = controller.active
    controller.handle(ev(CallPhase.ANSWERED, "c1"))
    assert controller.active is not None and first is not None
    assert controller.active.answered_at == first.answered_at
    # An end for a call never seen changes nothing.
    with qtbot.assertNotEmitted(controller.active_changed):
        controller.handle(ev(CallPhase.ENDED, "unknown"))


def test_call_waiting_and_switching(qtbot: QtBot, controller: CallController) -> None:
    controller.handle(ev(CallPhase.INCOMING, "c1"))
    controller.handle(ev(CallPhase.ANSWERED, "c1"))
    with qtbot.waitSignal(controller.waiting_changed):
        controller.handle(ev(CallPhase.INCOMING, "c2", OTHER))
    assert controller.active is not None and controller.active.call_id == "c1"
    assert [c.call_id for c in controller.waiting] == ["c2"]
    controller.switch_to("c2")
    assert controller.active is not None and controller.active.call_id == "c2"
    assert [c.call_id for c in controller.waiting] == ["c1"]
    controller.switch_to("c1")
    # Answering the waiting call makes it active; the other goes on hold.
    controller.handle(ev(CallPhase.ANSWERED, "c2", OTHER))
    assert controller.active is not None and controller.active.call_id == "c2"
    assert [c.call_id for c in controller.waiting] == ["c1"]
    # The held caller hangs up: it leaves the waiting list.
    controller.handle(ev(CallPhase.ENDED, "c1"))
    assert controller.waiting == ()


def test_after_the_active_call_ends_a_waiting_call_comes_up(
    qtbot: QtBot, controller: CallController
) -> None:
    controller.handle(ev(CallPhase.ANSWERED, "c1"))
    controller.handle(ev(CallPhase.INCOMING, "c2", OTHER))
    controller.handle(ev(CallPhase.ENDED, "c1"))
    with qtbot.waitSignal(
        controller.active_changed, check_params_cb=lambda c: c is not None and c.call_id == "c2"
    ):
        pass
    assert controller.waiting == ()


def test_a_capture_in_flight_holds_the_caller_on_screen(
    qtbot: QtBot, controller: CallController
) -> None:
    token = object()
    controller.handle(ev(CallPhase.ANSWERED, "c1"))
    controller.block_clear(token)
    controller.handle(ev(CallPhase.ENDED, "c1"))
    qtbot.waitUntil(lambda: not controller._clear_timer.isActive(), timeout=2000)
    assert controller.active is not None, "still recording: the caller must stay"
    with qtbot.waitSignal(controller.active_changed, check_params_cb=lambda c: c is None):
        controller.unblock_clear(token)


def test_manual_call_lookup_and_end(qtbot: QtBot, controller: CallController) -> None:
    lookup = controller.look_up(NUMBER)
    assert lookup.is_lookup and not lookup.is_live and lookup.call_id is None
    call = controller.manual_call(NUMBER)
    assert call.is_manual and call.is_live and call.call_id
    assert call.answered_at is not None
    controller.end_active()
    assert controller.active is not None and controller.active.phase == CallPhase.ENDED
    qtbot.waitUntil(lambda: controller.active is None, timeout=2000)
    # A lookup during a live call keeps the call, waiting, to return to.
    controller.handle(ev(CallPhase.ANSWERED, "c9"))
    controller.look_up(OTHER)
    assert [c.call_id for c in controller.waiting] == ["c9"]
    controller.switch_to("c9")
    assert controller.active is not None and controller.active.call_id == "c9"


def test_the_panel_follows_the_call_and_clears_after_hang_up(
    qtbot: QtBot, make_sidebar: MakeSidebar
) -> None:
    sidebar = make_sidebar()
    window, panel = sidebar.window, sidebar.window.panel
    with qtbot.waitSignal(panel.caller_shown, timeout=10_000):
        sidebar.calls.handle(ev(CallPhase.INCOMING, "c1"))
    assert panel.pages.currentWidget() is panel.caller_page
    assert "ringing" in panel.header.call_state.text()
    sidebar.calls.handle(ev(CallPhase.ANSWERED, "c1"))
    assert "On call" in panel.header.call_state.text()
    assert panel.grid_model.rowCount() > 0

    sidebar.calls.handle(ev(CallPhase.INCOMING, "c2", OTHER))
    assert window.waiting_bar.isVisible()
    assert panel.call is not None and panel.call.call_id == "c1", "c2 waits; c1 stays"
    switch = window.waiting_bar.findChildren(QPushButton)
    assert len(switch) == 1 and switch[0].accessibleName().startswith("Switch to")
    with qtbot.waitSignal(panel.caller_shown, timeout=10_000):
        click(qtbot, switch[0])
    assert panel.call is not None and panel.call.call_id == "c2"

    sidebar.calls.switch_to("c1")
    qtbot.waitUntil(lambda: panel.status is not None, timeout=10_000)
    sidebar.calls.handle(ev(CallPhase.ENDED, "c2", OTHER))  # the waiting caller gives up
    qtbot.waitUntil(lambda: not window.waiting_bar.isVisible(), timeout=2000)
    sidebar.calls.handle(ev(CallPhase.ENDED, "c1"))
    assert "Call ended" in panel.header.call_state.text()
    # Nothing of the customer stays on screen after the configured delay (1 s).
    qtbot.waitUntil(lambda: panel.call is None, timeout=5000)
    assert panel.pages.currentWidget() is panel.empty
    assert panel.grid_model.rowCount() == 0
    assert panel.requests_model.rowCount() == 0
    assert panel.history_model.rowCount() == 0
    assert panel.status is None


def test_withheld_caller_offers_manual_lookup(qtbot: QtBot, make_sidebar: MakeSidebar) -> None:
    sidebar = make_sidebar()
    panel = sidebar.window.panel
    sidebar.calls.handle(ev(CallPhase.INCOMING, "anon", None))
    assert panel.call is not None and panel.call.number is None
    assert panel.header.name.text() == "Withheld number"
    assert "look the caller up" in panel.header.number.text()
    assert not panel.consent_button.isEnabled()


def test_popped_call_expands_a_collapsed_sidebar(qtbot: QtBot, make_sidebar: MakeSidebar) -> None:
    sidebar = make_sidebar()
    window = sidebar.window
    window.set_collapsed(True)
    assert window.collapsed
    sidebar.calls.handle(ev(CallPhase.INCOMING, "c1"))
    assert not window.collapsed


def test_active_call_property_types(controller: CallController) -> None:
    controller.handle(ev(CallPhase.INCOMING, "c1"))
    assert isinstance(controller.active, Call)
    assert controller.find("c1") is controller.active
    with pytest.raises(TypeError):
        controller.handle("not an event")  # type: ignore[arg-type]
