"""Capture flows end to end: real clicks and keys on the real window, real ledger."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtWidgets import QApplication, QCheckBox, QMenu, QStyle, QStyleOptionToolButton
from pytestqt.qtbot import QtBot
from sidebar_support import (
    AGENT,
    NUMBER,
    click,
    click_index,
    ledger,
    open_caller_by_typing,
    record_consent,
    rendered_consent,
    tick_read_aloud,
)

from consentdesk.domain import rules
from consentdesk.domain.model import (
    Channel,
    CollectionMethod,
    ConsentState,
    Jurisdiction,
    RequestType,
    VerificationResult,
)
from consentdesk.domain.scripts import ScriptKind
from consentdesk.gui.flows import (
    AgentPrompt,
    ConsentFlow,
    CorrectionFlow,
    RequestFlow,
    WithdrawalFlow,
)
from consentdesk.gui.main import Sidebar
from consentdesk.gui.models import StateRole
from consentdesk.gui.widgets import Banner
from consentdesk.platform.config import Config
from consentdesk.telephony.events import CallEvent, CallPhase, CallSource

pytestmark = pytest.mark.usefixtures("known_caller")  # a customer in our records
MakeSidebar = Callable[..., Sidebar]


def select_cell(qtbot: QtBot, sidebar: Sidebar, purpose: str, channel: Channel) -> None:
    panel = sidebar.window.panel
    index = panel.grid_model.index_for(purpose, channel)
    assert index.isValid()
    click_index(qtbot, panel.grid, index.row(), index.column())
    assert panel.selected_cell() == (purpose, channel)


def cell_state(sidebar: Sidebar, purpose: str, channel: Channel) -> ConsentState:
    model = sidebar.window.panel.grid_model
    return ConsentState(model.index_for(purpose, channel).data(StateRole))


def wait_captured(qtbot: QtBot, sidebar: Sidebar, action: Callable[[], None]) -> None:
    with qtbot.waitSignal(sidebar.window.panel.captured, timeout=10_000):
        action()


def test_consent_agreed_records_exactly_what_was_read(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    sidebar = make_sidebar()
    open_caller_by_typing(qtbot, sidebar)
    call_id = sidebar.calls.active.call_id if sidebar.calls.active else None
    assert call_id and call_id.startswith("manual-")
    panel = sidebar.window.panel
    assert cell_state(sidebar, "marketing-offers", Channel.EMAIL) == ConsentState.UNKNOWN

    # Two clicks from the caller panel: the cell, then "Ask consent".
    select_cell(qtbot, sidebar, "marketing-offers", Channel.EMAIL)
    click(qtbot, panel.consent_button)
    flow = panel.flow
    assert isinstance(flow, ConsentFlow)
    assert flow.pairs() == [("marketing-offers", Channel.EMAIL)]
    expected = rendered_consent(["marketing-offers"], [Channel.EMAIL])
    assert flow.script_view.rendered is not None
    assert flow.script_view.rendered.text == expected.text
    assert any(b.verbatim for b in flow.script_view.rendered.blocks)
    assert not flow.agreed.isEnabled(), "nothing may be recorded before the read-aloud tick"

    tick_read_aloud(qtbot, flow)
    assert flow.agreed.isEnabled()
    wait_captured(qtbot, sidebar, lambda: click(qtbot, flow.agreed))

    assert panel.flow is None
    assert panel.banner.mode == Banner.SUCCESS
    assert panel.banner.text.text().startswith("Recorded: consent given")
    assert cell_state(sidebar, "marketing-offers", Channel.EMAIL) == ConsentState.GIVEN

    with ledger(data_dir) as led:
        history = list(led.history(NUMBER))
    assert len(history) == 1
    event = history[0]
    assert (event.purpose, event.channel, event.state) == (
        "marketing-offers",
        Channel.EMAIL,
        ConsentState.GIVEN,
    )
    assert event.call_id == call_id
    assert event.agent == AGENT
    assert event.method == CollectionMethod.VERBAL_CALL
    assert event.notice.text == expected.text
    assert event.notice.sha256 == hashlib.sha256(expected.text.encode()).hexdigest()
    assert (event.notice.script_id, event.notice.version) == (
        expected.script.id,
        expected.script.version,
    )

    # Selecting the cell shows that record's proof, hash included.
    select_cell(qtbot, sidebar, "marketing-offers", Channel.EMAIL)
    qtbot.waitUntil(lambda: panel.history_model.rowCount() == 1, timeout=5000)
    assert panel.selected_event() == event
    assert event.notice.sha256 in panel.proof.toPlainText()
    assert call_id in panel.proof.toPlainText()


def test_declined_records_a_refusal_and_unsure_records_nothing(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    sidebar = make_sidebar()
    open_caller_by_typing(qtbot, sidebar)
    panel = sidebar.window.panel

    select_cell(qtbot, sidebar, "customer-survey", Channel.SMS)
    click(qtbot, panel.consent_button)
    flow = panel.flow
    assert isinstance(flow, ConsentFlow)
    tick_read_aloud(qtbot, flow)
    click(qtbot, flow.unsure)
    assert panel.flow is None
    assert panel.banner.mode == Banner.INFO
    assert "nothing recorded" in panel.banner.text.text()
    with ledger(data_dir) as led:
        assert list(led.history(NUMBER)) == []

    click(qtbot, panel.consent_button)
    flow = panel.flow
    assert isinstance(flow, ConsentFlow)
    tick_read_aloud(qtbot, flow)
    wait_captured(qtbot, sidebar, lambda: click(qtbot, flow.declined))
    assert cell_state(sidebar, "customer-survey", Channel.SMS) == ConsentState.REFUSED
    with ledger(data_dir) as led:
        history = list(led.history(NUMBER))
    assert [(e.purpose, e.channel, e.state) for e in history] == [
        ("customer-survey", Channel.SMS, ConsentState.REFUSED)
    ]


def test_several_purposes_and_channels_in_one_answer(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    sidebar = make_sidebar()
    open_caller_by_typing(qtbot, sidebar)
    panel = sidebar.window.panel
    select_cell(qtbot, sidebar, "marketing-offers", Channel.PHONE)
    click(qtbot, panel.consent_button)
    flow = panel.flow
    assert isinstance(flow, ConsentFlow)
    click(qtbot, flow.purpose_boxes["partner-offers"])
    click(qtbot, flow.channel_boxes[Channel.SMS])
    # partner offers are not sent by SMS: three answers, not four
    assert sorted(flow.pairs()) == [
        ("marketing-offers", Channel.PHONE),
        ("marketing-offers", Channel.SMS),
        ("partner-offers", Channel.PHONE),
    ]
    tick_read_aloud(qtbot, flow)
    wait_captured(qtbot, sidebar, lambda: click(qtbot, flow.agreed))
    with ledger(data_dir) as led:
        history = list(led.history(NUMBER))
    assert sorted((e.purpose, e.channel) for e in history) == sorted(flow.pairs())
    assert len({e.notice.sha256 for e in history}) == 1, "one script read for all answers"


def test_escape_cancels_a_flow_and_records_nothing(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    sidebar = make_sidebar()
    open_caller_by_typing(qtbot, sidebar)
    panel = sidebar.window.panel
    select_cell(qtbot, sidebar, "marketing-offers", Channel.EMAIL)
    click(qtbot, panel.consent_button)
    flow = panel.flow
    assert isinstance(flow, ConsentFlow)
    tick_read_aloud(qtbot, flow)
    qtbot.keyClick(flow.read_aloud, Qt.Key.Key_Escape)
    assert panel.flow is None
    assert "Cancelled" in panel.banner.text.text()
    with ledger(data_dir) as led:
        assert list(led.history(NUMBER)) == []


def test_withdrawal_of_one_cell_takes_no_more_clicks_than_consent(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    given = record_consent(data_dir, "marketing-offers", Channel.EMAIL)
    sidebar = make_sidebar()
    open_caller_by_typing(qtbot, sidebar)
    panel = sidebar.window.panel
    assert cell_state(sidebar, "marketing-offers", Channel.EMAIL) == ConsentState.GIVEN

    select_cell(qtbot, sidebar, "marketing-offers", Channel.EMAIL)  # click 1
    click(qtbot, panel.withdraw_button)  # click 2
    flow = panel.flow
    assert isinstance(flow, WithdrawalFlow)
    assert flow.selected() == [("marketing-offers", Channel.EMAIL)]
    assert flow.script_view.rendered is not None
    assert flow.script_view.rendered.script.kind == ScriptKind.WITHDRAWAL
    tick_read_aloud(qtbot, flow)  # click 3
    wait_captured(qtbot, sidebar, lambda: click(qtbot, flow.record))  # click 4

    assert cell_state(sidebar, "marketing-offers", Channel.EMAIL) == ConsentState.WITHDRAWN
    with ledger(data_dir) as led:
        history = list(led.history(NUMBER))
    assert [e.event_id for e in history[:1]] == [given.event_id]
    assert len(history) == 2
    withdrawn = history[1]
    assert (withdrawn.state, withdrawn.purpose, withdrawn.channel) == (
        ConsentState.WITHDRAWN,
        "marketing-offers",
        Channel.EMAIL,
    )
    expected = rendered_consent(["marketing-offers"], [Channel.EMAIL], kind=ScriptKind.WITHDRAWAL)
    assert withdrawn.notice.sha256 == expected.sha256


def _menu_arrow_pos(button: object) -> QPoint:
    from PySide6.QtWidgets import QToolButton

    assert isinstance(button, QToolButton)
    option = QStyleOptionToolButton()
    button.initStyleOption(option)
    rect = button.style().subControlRect(
        QStyle.ComplexControl.CC_ToolButton, option, QStyle.SubControl.SC_ToolButtonMenu, button
    )
    return rect.center()


def test_withdraw_all_marketing_from_the_menu(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    record_consent(data_dir, "marketing-offers", Channel.PHONE)
    record_consent(data_dir, "marketing-offers", Channel.POST)
    record_consent(data_dir, "partner-offers", Channel.EMAIL)
    record_consent(data_dir, "customer-survey", Channel.SMS)  # another group: stays
    sidebar = make_sidebar()
    open_caller_by_typing(qtbot, sidebar)
    panel = sidebar.window.panel

    chosen: list[str] = []

    def pick_marketing() -> None:
        menu = QApplication.activePopupWidget()
        if not isinstance(menu, QMenu):
            QTimer.singleShot(20, pick_marketing)
            return
        action = next(a for a in menu.actions() if a.text().startswith("All marketing"))
        chosen.append(action.text())
        qtbot.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(action).center())

    QTimer.singleShot(0, pick_marketing)
    click(qtbot, panel.withdraw_button, _menu_arrow_pos(panel.withdraw_button))  # click 1
    qtbot.waitUntil(lambda: panel.flow is not None, timeout=5000)  # click 2 in the menu
    assert chosen == ["All marketing (3)"]
    flow = panel.flow
    assert isinstance(flow, WithdrawalFlow)
    assert sorted(flow.selected()) == [
        ("marketing-offers", Channel.PHONE),
        ("marketing-offers", Channel.POST),
        ("partner-offers", Channel.EMAIL),
    ]
    tick_read_aloud(qtbot, flow)
    wait_captured(qtbot, sidebar, lambda: click(qtbot, flow.record))
    with ledger(data_dir) as led:
        withdrawn = [e for e in led.history(NUMBER) if e.state == ConsentState.WITHDRAWN]
    assert sorted((e.purpose, e.channel) for e in withdrawn) == sorted(flow.selected())
    assert cell_state(sidebar, "customer-survey", Channel.SMS) == ConsentState.GIVEN


def test_access_request_with_checklist_shows_the_reference_large(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    sidebar = make_sidebar()
    open_caller_by_typing(qtbot, sidebar)
    panel = sidebar.window.panel
    click(qtbot, panel.request_button)  # one click
    flow = panel.flow
    assert isinstance(flow, RequestFlow)
    assert flow.chosen_type == RequestType.ACCESS
    assert flow.chosen_jurisdiction == Jurisdiction.GDPR
    today = date.today()
    due = rules.due_date(Jurisdiction.GDPR, RequestType.ACCESS, today)
    assert due.strftime("%d %b %Y") in flow.due.text()
    checklist = rules.verification_checklist(Jurisdiction.GDPR, RequestType.ACCESS)
    assert [b.full_text for b in flow.checks] == list(checklist)
    reference = flow.reference_text
    assert flow.script_view.rendered is not None
    assert reference in flow.script_view.rendered.text
    for box in flow.checks:
        click(qtbot, box)
    qtbot.keyClicks(flow.note, "Copy by email please")
    tick_read_aloud(qtbot, flow)
    wait_captured(qtbot, sidebar, lambda: click(qtbot, flow.record))

    # The flow stays to show the reference, large, until Done.
    assert panel.flow is flow
    assert flow.reference.text() == reference
    assert flow.reference.font().pointSizeF() >= 1.8 * flow.font().pointSizeF()
    assert panel.banner.text.text().startswith("Recorded: Access request")
    with ledger(data_dir) as led:
        requests = list(led.requests(number=NUMBER))
    assert len(requests) == 1
    request = requests[0]
    assert (request.reference, request.type, request.due) == (reference, RequestType.ACCESS, due)
    assert request.note == "Copy by email please"
    assert request.call_id == (sidebar.calls.active.call_id if sidebar.calls.active else None)
    assert [v.result for v in request.verifications] == [VerificationResult.PASSED]
    assert panel.requests_model.rowCount() == 1
    # The call now counts as verified.
    assert sidebar.calls.active is not None and sidebar.calls.active.verified_by
    click(qtbot, flow.cancel_button)  # "Done"
    assert panel.flow is None


def test_ccpa_opt_out_needs_no_verification(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    sidebar = make_sidebar()
    open_caller_by_typing(qtbot, sidebar)
    panel = sidebar.window.panel
    click(qtbot, panel.request_button)
    flow = panel.flow
    assert isinstance(flow, RequestFlow)
    flow.jurisdiction.setFocus()
    qtbot.keyClick(flow.jurisdiction, Qt.Key.Key_Down)  # GDPR -> CCPA, keyboard only
    assert flow.chosen_jurisdiction == Jurisdiction.CCPA
    flow.type.setFocus()
    while flow.chosen_type != RequestType.OPT_OUT_SALE:
        before = flow.type.currentIndex()
        qtbot.keyClick(flow.type, Qt.Key.Key_Down)
        assert flow.type.currentIndex() != before, "opt-out is offered under the CCPA"
    assert flow.checks == []
    assert "No identity verification is needed" in flow.no_check.text()
    tick_read_aloud(qtbot, flow)
    wait_captured(qtbot, sidebar, lambda: click(qtbot, flow.record))
    with ledger(data_dir) as led:
        (request,) = list(led.requests(number=NUMBER))
    assert request.type == RequestType.OPT_OUT_SALE
    assert request.jurisdiction == Jurisdiction.CCPA
    assert [v.result for v in request.verifications] == [VerificationResult.NOT_REQUIRED]
    assert request.due == rules.due_date(Jurisdiction.CCPA, RequestType.OPT_OUT_SALE, date.today())


def test_correction_voids_a_mistaken_record_without_deleting_it(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    mistaken = record_consent(data_dir, "call-recording", Channel.PHONE)
    sidebar = make_sidebar()
    open_caller_by_typing(qtbot, sidebar)
    panel = sidebar.window.panel
    select_cell(qtbot, sidebar, "call-recording", Channel.PHONE)
    qtbot.waitUntil(lambda: panel.history_model.rowCount() == 1, timeout=5000)
    click_index(qtbot, panel.history, 0)
    assert panel.selected_event() == mistaken
    click(qtbot, panel.correct_button)
    flow = panel.flow
    assert isinstance(flow, CorrectionFlow)
    assert not flow.record.isEnabled()
    click(qtbot, flow.options[ConsentState.VOID])
    qtbot.keyClicks(flow.reason, "Asked the wrong customer")
    wait_captured(qtbot, sidebar, lambda: click(qtbot, flow.record))

    with ledger(data_dir) as led:
        history = list(led.history(NUMBER))
    assert [e.event_id for e in history][:1] == [mistaken.event_id], "the original stays"
    assert len(history) == 2
    correction = history[1]
    assert correction.corrects == mistaken.event_id
    assert correction.state == ConsentState.VOID
    assert correction.correction_reason == "Asked the wrong customer"
    assert correction.agent == AGENT
    assert correction.notice == mistaken.notice
    assert cell_state(sidebar, "call-recording", Channel.PHONE) == ConsentState.UNKNOWN


def test_agent_id_is_asked_once_when_config_has_none(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path, config: Config
) -> None:
    config.user.pop("general.agent")
    sidebar = make_sidebar()
    open_caller_by_typing(qtbot, sidebar)
    panel = sidebar.window.panel
    select_cell(qtbot, sidebar, "marketing-offers", Channel.SMS)
    click(qtbot, panel.consent_button)
    prompt = panel.flow
    assert isinstance(prompt, AgentPrompt)
    qtbot.keyClicks(prompt.agent, "n.new")
    qtbot.keyClick(prompt.agent, Qt.Key.Key_Return)
    flow = panel.flow
    assert isinstance(flow, ConsentFlow), "the asked-for flow continues after the prompt"
    assert flow.pairs() == [("marketing-offers", Channel.SMS)]
    assert config.user_file is not None
    qtbot.waitUntil(
        lambda: (
            config.user_file is not None
            and config.user_file.exists()
            and 'agent = "n.new"' in config.user_file.read_text()
        ),
        timeout=5000,
    )
    tick_read_aloud(qtbot, flow)
    wait_captured(qtbot, sidebar, lambda: click(qtbot, flow.agreed))
    with ledger(data_dir) as led:
        assert [e.agent for e in led.history(NUMBER)] == ["n.new"]


def test_capture_during_a_softphone_call_carries_its_call_id(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    sidebar = make_sidebar()
    panel = sidebar.window.panel
    with qtbot.waitSignal(panel.caller_shown, timeout=10_000):
        sidebar.calls.handle(
            CallEvent(CallPhase.INCOMING, "a84b4c76e66710@pc33", CallSource.BARESIP, NUMBER)
        )
    sidebar.calls.handle(
        CallEvent(CallPhase.ANSWERED, "a84b4c76e66710@pc33", CallSource.BARESIP, NUMBER)
    )
    select_cell(qtbot, sidebar, "call-recording", Channel.PHONE)
    qtbot.keyClick(panel.grid, Qt.Key.Key_Return)  # Enter on a cell asks for consent
    flow = panel.flow
    assert isinstance(flow, ConsentFlow)
    qtbot.waitUntil(flow.read_aloud.isEnabled, timeout=5000)  # the script was on screen
    qtbot.keyClick(flow.read_aloud, Qt.Key.Key_Space)
    assert flow.read_aloud.isChecked()
    wait_captured(
        qtbot, sidebar, lambda: qtbot.keyClick(flow, Qt.Key.Key_A, Qt.KeyboardModifier.AltModifier)
    )
    with ledger(data_dir) as led:
        (event,) = list(led.history(NUMBER))
    assert event.call_id == "a84b4c76e66710@pc33"
    assert event.state == ConsentState.GIVEN


@pytest.mark.parametrize("language", ["de"])
def test_script_language_follows_the_customer(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path, language: str
) -> None:
    from consentdesk.domain.capture import consent_event
    from consentdesk.domain.catalogue import load_catalogue
    from consentdesk.domain.scripts import load_scripts, render, script_context, select_script

    script = select_script(
        load_scripts(), kind=ScriptKind.CONSENT, language=language, jurisdiction=Jurisdiction.GDPR
    )
    catalogue = load_catalogue()
    rendered = render(
        script,
        script_context(
            language=language,
            company="Example Energy GmbH",
            agent_name="Frau Früher",
            purposes=[catalogue.get("customer-survey")],
            channels=[Channel.EMAIL],
        ),
    )
    with ledger(data_dir) as led:
        led.capture(
            consent_event(
                catalogue=catalogue,
                purpose="customer-survey",
                channel=Channel.EMAIL,
                state=ConsentState.GIVEN,
                rendered=rendered,
                agent="f.frueher",
                jurisdiction=Jurisdiction.GDPR,
                subject=NUMBER,
            )
        )
    sidebar = make_sidebar()
    open_caller_by_typing(qtbot, sidebar)
    panel = sidebar.window.panel
    select_cell(qtbot, sidebar, "marketing-offers", Channel.EMAIL)
    click(qtbot, panel.consent_button)
    flow = panel.flow
    assert isinstance(flow, ConsentFlow)
    assert flow.chosen_language == language
    assert flow.script_view.rendered is not None
    assert flow.script_view.rendered.script.language == language
    assert "Example Energy GmbH" in flow.script_view.rendered.text
    assert "{{" not in flow.script_view.rendered.text


def test_checkboxes_in_flows_have_accessible_names(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    record_consent(data_dir, "customer-survey", Channel.SMS)  # something to withdraw
    sidebar = make_sidebar()
    open_caller_by_typing(qtbot, sidebar)
    panel = sidebar.window.panel
    for start in (panel.start_consent, panel.start_withdrawal, panel.start_request):
        flow = start()
        assert flow is not None
        for box in flow.findChildren(QCheckBox):
            assert box.accessibleName(), box.text()
        flow.cancel()
