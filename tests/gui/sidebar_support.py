"""Helpers for the sidebar tests: arranging records, clicking, reading the ledger."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QRadioButton,
    QStyle,
    QStyleOptionButton,
    QWidget,
)
from pytestqt.qtbot import QtBot

from consentdesk.domain.capture import consent_event
from consentdesk.domain.catalogue import load_catalogue
from consentdesk.domain.model import Channel, ConsentEvent, ConsentState, Jurisdiction, Subject
from consentdesk.domain.scripts import (
    RenderedScript,
    ScriptKind,
    load_scripts,
    render,
    script_context,
    select_script,
)
from consentdesk.gui.flows import ScriptedFlow
from consentdesk.gui.main import Sidebar
from consentdesk.stores.ledger import EmbeddedLedger, open_ledger

NUMBER = "+4915112345678"
DIALLED = "0151 1234 5678"
AGENT = "t.agent"
AGENT_NAME = "Tess Agent"
CUSTOMER_NAME = "Maria Muster"
CUSTOMER_REF = "C-1001"


def ledger(data_dir: Path) -> EmbeddedLedger:
    """A second connection to the test's ledger, for arranging and asserting."""
    return open_ledger(data_dir)


def known_customer(data_dir: Path, number: str = NUMBER) -> None:
    """Arrange: *number* is a customer in our records (a profile, no consents yet)."""
    with ledger(data_dir) as led:
        led.save_subject(Subject(number, CUSTOMER_REF, CUSTOMER_NAME))


def rendered_consent(
    purposes: list[str],
    channels: list[Channel],
    *,
    kind: ScriptKind = ScriptKind.CONSENT,
    language: str = "en",
    company: str = "Example Energy GmbH",
) -> RenderedScript:
    """The script as the sidebar should show it, rendered independently of the GUI."""
    catalogue = load_catalogue()
    script = select_script(
        load_scripts(), kind=kind, language=language, jurisdiction=Jurisdiction.GDPR
    )
    context = script_context(
        language=script.language,
        company=company,
        agent_name=AGENT_NAME,
        purposes=[catalogue.get(p) for p in purposes],
        channels=channels,
    )
    return render(script, context)


def record_consent(
    data_dir: Path,
    purpose: str,
    channel: Channel,
    state: ConsentState = ConsentState.GIVEN,
    *,
    agent: str = "a.earlier",
) -> ConsentEvent:
    """Arrange: a consent captured on an earlier call, through the core helpers."""
    kind = ScriptKind.WITHDRAWAL if state == ConsentState.WITHDRAWN else ScriptKind.CONSENT
    event = consent_event(
        catalogue=load_catalogue(),
        purpose=purpose,
        channel=channel,
        state=state,
        rendered=rendered_consent([purpose], [channel], kind=kind),
        agent=agent,
        jurisdiction=Jurisdiction.GDPR,
        call_id="earlier-call",
        subject=NUMBER,
    )
    with ledger(data_dir) as led:
        led.capture(event)
    return event


def click(qtbot: QtBot, widget: QWidget, pos: QPoint | None = None) -> None:
    """A left click; on a check box or radio button, on its indicator (where a person
    clicks — the label only reaches as far as its text)."""
    assert widget.isVisible(), f"{widget.accessibleName() or widget} is not visible"
    assert widget.isEnabled(), f"{widget.accessibleName() or widget} is disabled"
    if pos is None and isinstance(widget, QCheckBox | QRadioButton):
        option = QStyleOptionButton()
        widget.initStyleOption(option)
        element = (
            QStyle.SubElement.SE_CheckBoxIndicator
            if isinstance(widget, QCheckBox)
            else QStyle.SubElement.SE_RadioButtonIndicator
        )
        pos = widget.style().subElementRect(element, option, widget).center()
    if pos is None:
        qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)
    else:
        qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=pos)


def tick_read_aloud(qtbot: QtBot, flow: ScriptedFlow) -> None:
    """Tick "read aloud" as the agent does: once the whole script has been on screen."""
    qtbot.waitUntil(flow.read_aloud.isEnabled, timeout=5000)
    click(qtbot, flow.read_aloud)
    assert flow.read_aloud.isChecked()


def click_index(qtbot: QtBot, view: QAbstractItemView, row: int, column: int = 0) -> None:
    index = view.model().index(row, column)
    view.scrollTo(index)
    rect = view.visualRect(index)
    assert rect.isValid(), "item is not laid out"
    click(qtbot, view.viewport(), rect.center())


def open_caller_by_typing(qtbot: QtBot, sidebar: Sidebar, text: str = DIALLED) -> None:
    """Type a number into the lookup box and press Manual call, as an agent would."""
    window = sidebar.window
    window.lookup.clear()
    qtbot.keyClicks(window.lookup, text)
    with qtbot.waitSignal(window.panel.caller_shown, timeout=10_000):
        click(qtbot, window.manual_button)


def active_popup() -> QWidget | None:
    return QApplication.activePopupWidget()
