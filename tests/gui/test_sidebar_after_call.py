"""After-call work: an open capture form outlives the call, and nothing replaces it
unasked (hang-up, lookup, incoming or answered calls, switching, closing)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from sidebar_support import NUMBER, click, ledger, open_caller_by_typing

from consentdesk.domain.model import Channel, ConsentState
from consentdesk.gui.calls import CallController
from consentdesk.gui.flows import AgentPrompt, ConsentFlow
from consentdesk.gui.main import Sidebar
from consentdesk.platform.config import Config
from consentdesk.telephony.events import CallEvent, CallPhase, CallSource

OTHER = "+4930123456789"
pytestmark = pytest.mark.usefixtures("known_caller")  # a customer in our records
MakeSidebar = Callable[..., Sidebar]


def ev(phase: CallPhase, call_id: str, number: str | None = NUMBER) -> CallEvent:
    return CallEvent(phase, call_id, CallSource.BARESIP, number, raw_number=number or "")


def answered_caller(qtbot: QtBot, sidebar: Sidebar, call_id: str = "c1") -> None:
    with qtbot.waitSignal(sidebar.window.panel.caller_shown, timeout=10_000):
        sidebar.calls.handle(ev(CallPhase.INCOMING, call_id))
    sidebar.calls.handle(ev(CallPhase.ANSWERED, call_id))


def open_consent_form(qtbot: QtBot, sidebar: Sidebar) -> ConsentFlow:
    """Cell marketing-offers × email, Ask consent, script read and ticked."""
    panel = sidebar.window.panel
    index = panel.grid_model.index_for("marketing-offers", Channel.EMAIL)
    panel.grid.setCurrentIndex(index)
    click(qtbot, panel.consent_button)
    flow = panel.flow
    assert isinstance(flow, ConsentFlow)
    qtbot.waitUntil(flow.read_aloud.isEnabled, timeout=5000)
    click(qtbot, flow.read_aloud)
    assert flow.agreed.isEnabled()
    return flow


def wait_past_clearing(qtbot: QtBot, calls: CallController) -> None:
    """Until the after-hang-up clearing delay has run out (it fires, or would have)."""
    qtbot.waitUntil(lambda: not calls._clear_timer.isActive(), timeout=5000)


def test_a_hang_up_keeps_the_form_and_recording_after_it_carries_the_call_id(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    sidebar = make_sidebar()
    panel = sidebar.window.panel
    answered_caller(qtbot, sidebar)
    flow = open_consent_form(qtbot, sidebar)

    sidebar.calls.handle(ev(CallPhase.ENDED, "c1"))
    wait_past_clearing(qtbot, sidebar.calls)
    assert panel.call is not None and panel.call.call_id == "c1", "the caller stays"
    assert panel.flow is flow and flow.isVisible(), "the form stays"
    assert flow.read_aloud.isChecked() and flow.agreed.isEnabled(), "with what was prepared"
    assert "Call ended" in panel.header.call_state.text()
    assert "form stays" in panel.banner.text.text()

    with qtbot.waitSignal(panel.captured, timeout=10_000):
        click(qtbot, flow.agreed)
    assert panel.banner.text.text().startswith("Recorded: consent given")
    with ledger(data_dir) as led:
        (event,) = led.history(NUMBER)
    assert (event.state, event.call_id) == (ConsentState.GIVEN, "c1")
    # With the form done, the ended call leaves the screen after the usual delay.
    qtbot.waitUntil(lambda: panel.call is None, timeout=5000)


def test_discarding_after_a_hang_up_asks_first(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    sidebar = make_sidebar()
    panel = sidebar.window.panel
    answered_caller(qtbot, sidebar)
    flow = open_consent_form(qtbot, sidebar)
    sidebar.calls.handle(ev(CallPhase.ENDED, "c1"))

    qtbot.keyClick(flow, Qt.Key.Key_Escape)
    assert flow.question.isVisible() and "Discard this form" in flow.question.text.text()
    assert panel.flow is flow
    click(qtbot, flow.question.no)  # keep it
    assert not flow.question.isVisible() and panel.flow is flow and flow.read_aloud.isChecked()

    click(qtbot, flow.cancel_button)
    assert flow.question.isVisible()
    qtbot.keyClick(flow.question.no, Qt.Key.Key_Escape)  # Esc on the question keeps too
    assert not flow.question.isVisible() and panel.flow is flow

    click(qtbot, flow.cancel_button)
    click(qtbot, flow.question.yes)
    assert panel.flow is None
    assert "nothing recorded" in panel.banner.text.text()
    qtbot.waitUntil(lambda: panel.call is None, timeout=5000)
    with ledger(data_dir) as led:
        assert list(led.history(NUMBER)) == []


def test_cancel_during_the_call_needs_no_question(qtbot: QtBot, make_sidebar: MakeSidebar) -> None:
    sidebar = make_sidebar()
    panel = sidebar.window.panel
    answered_caller(qtbot, sidebar)
    flow = open_consent_form(qtbot, sidebar)
    qtbot.keyClick(flow, Qt.Key.Key_Escape)
    assert panel.flow is None


def test_looking_up_another_number_with_a_form_open_asks_first(
    qtbot: QtBot, make_sidebar: MakeSidebar
) -> None:
    sidebar = make_sidebar()
    window, panel = sidebar.window, sidebar.window.panel
    open_caller_by_typing(qtbot, sidebar)
    first = panel.call
    flow = open_consent_form(qtbot, sidebar)

    qtbot.keyClicks(window.lookup, "030 123456789")
    qtbot.keyClick(window.lookup, Qt.Key.Key_Return)
    assert flow.question.isVisible() and "Looking up another number" in flow.question.text.text()
    assert panel.call is first and panel.flow is flow
    click(qtbot, flow.question.no)
    assert panel.call is first and panel.flow is flow and flow.read_aloud.isChecked()

    qtbot.keyClick(window.lookup, Qt.Key.Key_Return)
    with qtbot.waitSignal(panel.caller_shown, timeout=10_000):
        click(qtbot, flow.question.yes)
    assert panel.call is not None and panel.call.number == OTHER and panel.flow is None


def test_closing_or_a_manual_call_with_a_form_open_asks_first(
    qtbot: QtBot, make_sidebar: MakeSidebar
) -> None:
    sidebar = make_sidebar()
    window, panel = sidebar.window, sidebar.window.panel
    with qtbot.waitSignal(panel.caller_shown, timeout=10_000):
        sidebar.calls.look_up(NUMBER)
    flow = open_consent_form(qtbot, sidebar)
    click(qtbot, panel.header.end)  # "Close" on a lookup
    assert flow.question.isVisible() and panel.call is not None
    click(qtbot, flow.question.no)
    qtbot.keyClicks(window.lookup, "030 123456789")
    click(qtbot, window.manual_button)
    assert flow.question.isVisible() and "Starting a call" in flow.question.text.text()
    assert panel.call is not None and panel.call.is_lookup
    with qtbot.waitSignal(panel.caller_shown, timeout=10_000):
        click(qtbot, flow.question.yes)
    assert panel.call is not None and panel.call.number == OTHER and panel.call.is_live


def test_ending_a_manual_call_keeps_the_form(qtbot: QtBot, make_sidebar: MakeSidebar) -> None:
    sidebar = make_sidebar()
    panel = sidebar.window.panel
    open_caller_by_typing(qtbot, sidebar)
    flow = open_consent_form(qtbot, sidebar)
    click(qtbot, panel.header.end)  # "End call": the call ends, the work stays
    assert panel.call is not None and not panel.call.is_live
    assert not flow.question.isVisible()
    wait_past_clearing(qtbot, sidebar.calls)
    assert panel.flow is flow and panel.call is not None


def test_calls_arriving_while_a_form_is_open_wait_in_the_call_bar(
    qtbot: QtBot, make_sidebar: MakeSidebar
) -> None:
    sidebar = make_sidebar()
    window, panel = sidebar.window, sidebar.window.panel
    with qtbot.waitSignal(panel.caller_shown, timeout=10_000):
        sidebar.calls.look_up(NUMBER)  # no call: an incoming one would normally pop
    flow = open_consent_form(qtbot, sidebar)

    sidebar.calls.handle(ev(CallPhase.INCOMING, "c2", OTHER))
    sidebar.calls.handle(ev(CallPhase.ANSWERED, "c3", "+4940123456"))  # answered elsewhere
    assert window.waiting_bar.isVisible()
    assert [c.call_id for c in sidebar.calls.waiting] == ["c3", "c2"]
    assert panel.call is not None and panel.call.is_lookup and panel.flow is flow

    bar = window.waiting_bar
    qtbot.waitUntil(lambda: len(bar.switch_buttons()) == 2, timeout=2000)
    switch = bar.switch_buttons()[0]  # the newest: c3
    assert switch.accessibleName() == "Switch to +49 40 123456"
    qtbot.waitUntil(switch.isVisible, timeout=2000)
    click(qtbot, switch)
    assert flow.question.isVisible() and "Switching" in flow.question.text.text()
    assert panel.flow is flow
    with qtbot.waitSignal(panel.caller_shown, timeout=10_000):
        click(qtbot, flow.question.yes)
    assert panel.call is not None and panel.call.call_id == "c3" and panel.flow is None


# --- the controller's rules on their own ---------------------------------------------


@pytest.fixture
def controller(qapp: QApplication) -> CallController:
    return CallController(clear_after_seconds=0)


def test_a_held_caller_survives_hang_up_and_new_calls_wait(
    qtbot: QtBot, controller: CallController
) -> None:
    token = object()
    controller.handle(ev(CallPhase.ANSWERED, "c1"))
    controller.hold(token)
    assert controller.held
    controller.handle(ev(CallPhase.ENDED, "c1"))
    wait_past_clearing(qtbot, controller)
    assert controller.active is not None and controller.active.call_id == "c1"
    controller.handle(ev(CallPhase.INCOMING, "c2", OTHER))
    assert controller.active.call_id == "c1"
    assert [c.call_id for c in controller.waiting] == ["c2"]
    with qtbot.waitSignal(
        controller.active_changed, check_params_cb=lambda c: c is not None and c.call_id == "c2"
    ):
        controller.release(token)  # the ended call clears, the waiting one comes up
    assert not controller.held


def test_release_without_hold_changes_nothing(controller: CallController) -> None:
    controller.handle(ev(CallPhase.ANSWERED, "c1"))
    controller.release(object())
    assert controller.active is not None and controller.active.call_id == "c1"


def test_a_page_with_nothing_to_lose_gives_way_without_asking(
    qtbot: QtBot, make_sidebar: MakeSidebar, config: Config
) -> None:
    config.user.pop("general.agent_name")  # the first capture asks who is capturing
    sidebar = make_sidebar()
    window, panel = sidebar.window, sidebar.window.panel
    with qtbot.waitSignal(panel.caller_shown, timeout=10_000):
        sidebar.calls.look_up(NUMBER)
    click(qtbot, panel.consent_button)
    assert isinstance(panel.flow, AgentPrompt) and sidebar.calls.held
    qtbot.keyClicks(window.lookup, "030 123456789")
    with qtbot.waitSignal(panel.caller_shown, timeout=10_000):
        click(qtbot, window.manual_button)  # no question: the prompt held nothing
    assert panel.flow is None and not sidebar.calls.held
    assert panel.call is not None and panel.call.number == OTHER and panel.call.is_live
