"""Script first: with a form open on a 1366×768 screen, every shipped script (every
language) shows whole, with its read-aloud tick and the answer buttons, without
scrolling; the tick waits until all of the script has been on screen, and no
shortcut acts on a control the agent cannot see."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton, QWidget
from pytestqt.qtbot import QtBot
from sidebar_support import click, open_caller_by_typing, record_consent

from consentdesk.domain.model import Channel, Jurisdiction, RequestType
from consentdesk.domain.scripts import Script, ScriptKind, load_scripts
from consentdesk.gui.flows import ConsentFlow, RequestFlow, ScriptedFlow, WithdrawalFlow
from consentdesk.gui.flows.script_view import shown_rect
from consentdesk.gui.main import Sidebar

pytestmark = pytest.mark.usefixtures("known_caller")
MakeSidebar = Callable[..., Sidebar]
SCREEN_HEIGHT = 768  # a 1366×768 screen; the sidebar is docked full height
SIDEBAR_WIDTH = 380


def sized(qtbot: QtBot, sidebar: Sidebar, height: int) -> None:
    window = sidebar.window
    window.setGeometry(0, 0, SIDEBAR_WIDTH, height)
    qtbot.waitUntil(lambda: window.height() == height, timeout=5000)


def open_flow_for(sidebar: Sidebar, script: Script) -> ScriptedFlow:
    """Open the form that reads *script*, as the agent would choose it."""
    panel = sidebar.window.panel
    flow: ScriptedFlow | None
    if script.kind == ScriptKind.CONSENT:
        flow = panel.start_consent()
        assert isinstance(flow, ConsentFlow)
        flow.purpose_boxes["marketing-offers"].setChecked(True)
        flow.channel_boxes[Channel.EMAIL].setChecked(True)
    elif script.kind == ScriptKind.WITHDRAWAL:
        flow = panel.start_withdrawal()
        assert isinstance(flow, WithdrawalFlow)
        next(iter(flow.boxes.values())).setChecked(True)
    else:
        flow = panel.start_request()
        assert isinstance(flow, RequestFlow) and script.jurisdiction is not None
        flow.jurisdiction.setCurrentIndex(flow.jurisdiction.findData(script.jurisdiction))
        flow.type.setCurrentIndex(flow.type.findData(script.request_type))
    flow.language.setCurrentIndex(flow.language.findData(script.language))
    rendered = flow.script_view.rendered
    assert rendered is not None, flow.script_view.caption.text()
    assert (rendered.script.id, rendered.script.language) == (script.id, script.language)
    return flow


def wholly_on_screen(widget: QWidget) -> bool:
    return widget.isVisible() and shown_rect(widget) == widget.rect()


def test_every_shipped_script_fits_a_1366x768_screen_with_its_tick_and_answers(
    qtbot: QtBot, make_sidebar: MakeSidebar, data_dir: Path
) -> None:
    record_consent(data_dir, "marketing-offers", Channel.EMAIL)  # something to withdraw
    sidebar = make_sidebar()
    sized(qtbot, sidebar, SCREEN_HEIGHT)
    open_caller_by_typing(qtbot, sidebar)
    panel = sidebar.window.panel
    scripts = load_scripts()
    assert {s.language for s in scripts} == {"en", "de"} and len(scripts) >= 28
    problems = []
    for script in scripts:
        flow = open_flow_for(sidebar, script)
        view = flow.script_view
        qtbot.waitUntil(lambda v=view: v.seen_all, timeout=5000)  # seen without scrolling
        answers = [b for b in flow.findChildren(QPushButton) if b.parent() is flow]
        checks = {
            "script scrolls": view.scroll.verticalScrollBar().maximum() == 0,
            "script clipped": wholly_on_screen(view),
            "tick not on screen": wholly_on_screen(flow.read_aloud),
            "tick not available": flow.read_aloud.isEnabled(),
            "answers not on screen": all(wholly_on_screen(b) for b in answers) and answers,
        }
        problems += [f"{script.id}/{script.language}: {k}" for k, ok in checks.items() if not ok]
        flow.cancel()
        assert panel.flow is None
    assert not problems


def test_the_tick_waits_for_the_whole_script_and_alt_r_does_nothing_while_hidden(
    qtbot: QtBot, make_sidebar: MakeSidebar
) -> None:
    sidebar = make_sidebar()
    window = sidebar.window
    sized(qtbot, sidebar, 520)  # too short for the script: it has to scroll
    open_caller_by_typing(qtbot, sidebar)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    panel = window.panel
    panel.grid.setCurrentIndex(panel.grid_model.index_for("marketing-offers", Channel.EMAIL))
    click(qtbot, panel.consent_button)
    flow = panel.flow
    assert isinstance(flow, ConsentFlow)
    view = flow.script_view
    bar = view.scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and view.seen_to > 0, timeout=5000)
    assert view.seen_to <= bar.pageStep(), "only the first screenful has been shown"
    assert not view.seen_all and not flow.read_aloud.isEnabled()
    assert "whole script" in flow.read_aloud.toolTip()

    # A mnemonic presses its button at once (the click follows); nothing is pressed here.
    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.AltModifier)
    assert not flow.read_aloud.isDown() and not flow.read_aloud.isChecked()
    qtbot.keyClick(window, Qt.Key.Key_A, Qt.KeyboardModifier.AltModifier)
    assert not flow.agreed.isDown() and panel.flow is flow, "nothing ticked, nothing sent"
    flow.read_aloud.setChecked(True)  # even programmatically: not for unseen text
    assert not flow.read_aloud.isChecked()

    bar.setValue(bar.maximum() // 2)  # reading on…
    qtbot.waitUntil(lambda: view.seen_to > bar.pageStep(), timeout=5000)
    assert not view.seen_all
    bar.setValue(bar.maximum())  # …to the end: every line has been on screen
    qtbot.waitUntil(lambda: view.seen_all, timeout=5000)
    assert flow.read_aloud.isEnabled()
    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.AltModifier)
    assert flow.read_aloud.isDown(), "Alt+R works once the tick is on screen and available"
    qtbot.waitUntil(flow.read_aloud.isChecked, timeout=2000)
    assert flow.agreed.isEnabled()

    # A new script (another language) must be read again before the tick.
    flow.language.setCurrentIndex(flow.language.findData("de"))
    assert not flow.read_aloud.isChecked() and not flow.read_aloud.isEnabled()


def test_a_shortcut_to_a_control_scrolled_out_of_sight_does_nothing(
    qtbot: QtBot, make_sidebar: MakeSidebar
) -> None:
    sidebar = make_sidebar()
    window = sidebar.window
    sized(qtbot, sidebar, SCREEN_HEIGHT)
    open_caller_by_typing(qtbot, sidebar)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    flow = window.panel.start_request()
    assert isinstance(flow, RequestFlow)
    flow.jurisdiction.setCurrentIndex(flow.jurisdiction.findData(Jurisdiction.GDPR))
    flow.type.setCurrentIndex(flow.type.findData(RequestType.ERASURE))
    note = flow.note  # at the end of the choices, which scroll under the script
    qtbot.waitUntil(lambda: not shown_rect(note).isValid() or shown_rect(note).isEmpty())
    flow.type.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.AltModifier)  # "&Note"
    assert not note.hasFocus(), "Alt+N must not jump to a note field out of sight"
    flow.scroll_area.ensureWidgetVisible(note)
    qtbot.waitUntil(lambda: wholly_on_screen(note), timeout=5000)
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.AltModifier)
    assert note.hasFocus()


def test_panel_shortcuts_act_only_through_controls_on_screen(
    qtbot: QtBot, make_sidebar: MakeSidebar
) -> None:
    sidebar = make_sidebar()
    window = sidebar.window
    panel = window.panel
    open_caller_by_typing(qtbot, sidebar)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    ctrl = Qt.KeyboardModifier.ControlModifier

    window.set_collapsed(True)  # only the strip is on screen
    qtbot.keyClick(window, Qt.Key.Key_G, ctrl)
    assert panel.flow is None
    window.set_collapsed(False)
    qtbot.keyClick(window, Qt.Key.Key_W, ctrl)  # nothing is given: Withdraw is off
    assert panel.flow is None and not panel.withdraw_button.isEnabled()
    qtbot.keyClick(window, Qt.Key.Key_G, ctrl)
    flow = panel.flow
    assert isinstance(flow, ConsentFlow)
    qtbot.keyClick(window, Qt.Key.Key_P, ctrl)  # the request button is under the form
    qtbot.keyClick(window, Qt.Key.Key_I, ctrl)  # so is Check identity (compact header)
    assert panel.flow is flow
