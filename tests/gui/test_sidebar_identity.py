"""The agent's identity is true: the id recorded and the name read in scripts are
asked for separately, and a script that says the name is never shown without one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from sidebar_support import AGENT, AGENT_NAME, NUMBER, click, ledger, open_caller_by_typing

from consentdesk.domain.catalogue import load_catalogue
from consentdesk.domain.model import Channel, DomainError
from consentdesk.domain.scripts import (
    ScriptKind,
    load_scripts,
    render,
    script_context,
    select_script,
)
from consentdesk.gui.flows import AgentPrompt, ConsentFlow
from consentdesk.gui.main import Sidebar
from consentdesk.gui.signin import SignInPage
from consentdesk.platform.config import Config

pytestmark = pytest.mark.usefixtures("known_caller")  # a customer in our records
MakeSidebar = Callable[..., Sidebar]


def ask_consent(qtbot: QtBot, sidebar: Sidebar) -> None:
    panel = sidebar.window.panel
    panel.grid.setCurrentIndex(panel.grid_model.index_for("marketing-offers", Channel.EMAIL))
    click(qtbot, panel.consent_button)


def test_first_capture_asks_for_the_id_and_the_name_read_in_scripts(
    qtbot: QtBot, make_sidebar: MakeSidebar, config: Config, data_dir: Path
) -> None:
    config.user.pop("general.agent")
    config.user.pop("general.agent_name")
    sidebar = make_sidebar()
    open_caller_by_typing(qtbot, sidebar)
    panel = sidebar.window.panel
    ask_consent(qtbot, sidebar)
    prompt = panel.flow
    assert isinstance(prompt, AgentPrompt)
    assert prompt.agent.text() == "" and prompt.name.text() == ""
    qtbot.keyClicks(prompt.agent, "n.new")
    assert not prompt.save_button.isEnabled(), "an id alone is not enough"
    qtbot.keyClick(prompt.agent, Qt.Key.Key_Return)
    assert panel.flow is prompt and prompt.name.hasFocus()
    qtbot.keyClicks(prompt.name, "Nina Neumann")
    qtbot.keyClick(prompt.name, Qt.Key.Key_Return)

    flow = panel.flow
    assert isinstance(flow, ConsentFlow), "the asked-for flow continues after the prompt"
    rendered = flow.script_view.rendered
    assert rendered is not None
    assert "My name is Nina Neumann" in rendered.text and "n.new" not in rendered.text
    qtbot.waitUntil(
        lambda: (
            config.user_file is not None
            and config.user_file.exists()
            and 'agent_name = "Nina Neumann"' in config.user_file.read_text()
        ),
        timeout=5000,
    )
    qtbot.waitUntil(flow.read_aloud.isEnabled, timeout=5000)
    click(qtbot, flow.read_aloud)
    with qtbot.waitSignal(panel.captured, timeout=10_000):
        click(qtbot, flow.agreed)
    with ledger(data_dir) as led:
        (event,) = led.history(NUMBER)
    assert event.agent == "n.new" and "My name is Nina Neumann" in event.notice.text


def test_with_an_id_but_no_name_only_the_name_is_asked(
    qtbot: QtBot, make_sidebar: MakeSidebar, config: Config
) -> None:
    config.user.pop("general.agent_name")
    sidebar = make_sidebar()
    open_caller_by_typing(qtbot, sidebar)
    ask_consent(qtbot, sidebar)
    prompt = sidebar.window.panel.flow
    assert isinstance(prompt, AgentPrompt)
    assert prompt.agent.text() == AGENT and prompt.name.hasFocus()
    assert not prompt.save_button.isEnabled()


def test_a_script_that_says_the_name_is_not_shown_without_one(
    qtbot: QtBot, make_sidebar: MakeSidebar, config: Config
) -> None:
    script = select_script(load_scripts(), kind=ScriptKind.CONSENT, language="en")
    context = script_context(
        language="en",
        company="X",
        agent_name="  ",
        purposes=[load_catalogue().get("marketing-offers")],
        channels=[Channel.EMAIL],
    )
    with pytest.raises(DomainError, match="agent_name"):
        render(script, context)

    sidebar = make_sidebar()
    open_caller_by_typing(qtbot, sidebar)
    ask_consent(qtbot, sidebar)
    flow = sidebar.window.panel.flow
    assert isinstance(flow, ConsentFlow)
    assert flow.script_view.rendered is not None
    config.user["general.agent_name"] = ""  # the name was removed (e.g. in Settings)
    flow.refresh()
    assert flow.script_view.rendered is None
    assert "no name is set" in flow.script_view.caption.text()
    assert not flow.agreed.isEnabled()


def test_sign_in_asks_for_the_name_read_in_scripts(
    qtbot: QtBot, make_sidebar: MakeSidebar, config: Config
) -> None:
    config.set("server.url", "https://ledger.invalid")
    sidebar = make_sidebar(wait_ready=False)
    page = SignInPage(sidebar.desk)
    qtbot.addWidget(page)
    page.show()
    assert page.agent_name.text() == AGENT_NAME
    page.agent_name.clear()
    qtbot.keyClicks(page.token, "some-token")
    qtbot.waitUntil(page.sign_in_button.isEnabled, timeout=5000)  # the keyring was asked
    click(qtbot, page.sign_in_button)
    assert "your name" in page.status.text().lower()
