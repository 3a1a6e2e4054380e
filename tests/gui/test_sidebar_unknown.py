"""A caller who is not in our records looks plainly unknown: no grid of "Not asked",
no withdrawal, no account-based identity check; a new caller can still give consent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pytestqt.qtbot import QtBot
from sidebar_support import (
    CUSTOMER_NAME,
    NUMBER,
    click,
    known_customer,
    ledger,
    record_consent,
)

from consentdesk.domain import phone, rules
from consentdesk.domain.model import Channel, ConsentState, Jurisdiction, RequestType
from consentdesk.gui.flows import ConsentFlow, RequestFlow
from consentdesk.gui.main import Sidebar
from consentdesk.telephony.events import CallEvent, CallPhase, CallSource

MakeSidebar = Callable[..., Sidebar]


def incoming(qtbot: QtBot, sidebar: Sidebar) -> None:
    with qtbot.waitSignal(sidebar.window.panel.caller_shown, timeout=10_000):
        sidebar.calls.handle(CallEvent(CallPhase.INCOMING, "c1", CallSource.BARESIP, NUMBER))
    sidebar.calls.handle(CallEvent(CallPhase.ANSWERED, "c1", CallSource.BARESIP, NUMBER))


def test_an_unknown_caller_is_shown_as_not_in_our_records(
    qtbot: QtBot, make_sidebar: MakeSidebar
) -> None:
    sidebar = make_sidebar()
    incoming(qtbot, sidebar)
    panel = sidebar.window.panel
    header = panel.header
    assert header.name.text() == "Not in our records"
    assert header.number.text() == phone.display(NUMBER)
    assert header.record.isVisible() and "New caller" in header.record.text()
    assert not panel.grid.isVisible(), "no grid of 'Not asked' cells for a stranger"
    assert panel.unknown_note.isVisible()
    assert not panel.requests_title.isVisible()
    # What makes no sense without records is off; what a new caller can do stays.
    assert not panel.withdraw_button.isEnabled()
    assert "nothing to withdraw" in panel.withdraw_button.toolTip()
    assert panel.start_withdrawal() is None and panel.flow is None
    assert not header.verify.isVisible()
    assert "No customer account" in header.identity.text()
    assert panel.start_verify() is None and panel.flow is None
    assert panel.consent_button.isEnabled() and panel.request_button.isEnabled()


def test_a_new_caller_can_give_consent_and_is_then_in_our_records(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    sidebar = make_sidebar()
    incoming(qtbot, sidebar)
    panel = sidebar.window.panel
    click(qtbot, panel.consent_button)
    flow = panel.flow
    assert isinstance(flow, ConsentFlow)
    assert flow.pairs() == [], "nothing preselected: there was no cell to choose"
    click(qtbot, flow.purpose_boxes["marketing-offers"])
    click(qtbot, flow.channel_boxes[Channel.EMAIL])
    qtbot.waitUntil(flow.read_aloud.isEnabled, timeout=5000)
    click(qtbot, flow.read_aloud)
    with qtbot.waitSignal(panel.captured, timeout=10_000):
        click(qtbot, flow.agreed)
    with ledger(data_dir) as led:
        (event,) = led.history(NUMBER)
    assert (event.state, event.call_id) == (ConsentState.GIVEN, "c1")
    assert panel.grid.isVisible() and not panel.unknown_note.isVisible()
    assert panel.header.name.text() == "No name on file"
    assert not panel.header.record.isVisible()
    assert panel.withdraw_button.isEnabled()


def test_the_request_checklist_of_an_unknown_caller_matches_no_account(
    qtbot: QtBot, make_sidebar: MakeSidebar
) -> None:
    sidebar = make_sidebar()
    incoming(qtbot, sidebar)
    panel = sidebar.window.panel
    click(qtbot, panel.request_button)
    flow = panel.flow
    assert isinstance(flow, RequestFlow) and flow.chosen_type == RequestType.ACCESS
    texts = [b.full_text for b in flow.checks]
    assert texts == list(rules.unknown_caller_checklist(Jurisdiction.GDPR, RequestType.ACCESS))
    assert texts and not any("account" in t or "on file" in t for t in texts)
    assert "Not in our records" in flow.no_check.text()


def test_a_known_caller_keeps_the_grid_and_the_account_checks(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    known_customer(data_dir)
    record_consent(data_dir, "customer-survey", Channel.SMS)
    sidebar = make_sidebar()
    incoming(qtbot, sidebar)
    panel = sidebar.window.panel
    assert panel.header.name.text() == CUSTOMER_NAME
    assert panel.grid.isVisible() and not panel.unknown_note.isVisible()
    assert not panel.header.record.isVisible() and panel.header.verify.isVisible()
    assert panel.withdraw_button.isEnabled()
    click(qtbot, panel.request_button)
    flow = panel.flow
    assert isinstance(flow, RequestFlow)
    texts = [b.full_text for b in flow.checks]
    assert texts == list(rules.verification_checklist(Jurisdiction.GDPR, RequestType.ACCESS))
