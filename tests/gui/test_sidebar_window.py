"""The sidebar window: docking, collapsing, always on top, lookup, keyboard, accessibility,
settings."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QComboBox,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)
from pytestqt.qtbot import QtBot
from sidebar_support import NUMBER, click, open_caller_by_typing

from consentdesk.gui.flows import ConsentFlow, RequestFlow
from consentdesk.gui.main import Sidebar
from consentdesk.gui.settings import MANAGED, SettingsDialog
from consentdesk.gui.window import SIDEBAR_WIDTH, STRIP_WIDTH
from consentdesk.platform.config import Config

pytestmark = pytest.mark.usefixtures("known_caller")  # a customer in our records
MakeSidebar = Callable[..., Sidebar]
SHORTCUT = re.compile(r"\((Ctrl|Alt|F\d+|Esc|Enter)")


def screen_area() -> tuple[int, int, int, int]:
    area = QGuiApplication.primaryScreen().availableGeometry()
    return area.left(), area.top(), area.right(), area.height()


def test_docks_full_height_to_the_right_edge(qtbot: QtBot, make_sidebar: MakeSidebar) -> None:
    window = make_sidebar().window
    _left, top, right, height = screen_area()
    qtbot.waitUntil(lambda: window.frameGeometry().top() == top, timeout=2000)
    frame = window.frameGeometry()
    assert window.width() == SIDEBAR_WIDTH
    assert frame.right() == right
    assert frame.height() == height


def test_docks_left_when_configured(
    qtbot: QtBot, make_sidebar: MakeSidebar, config: Config
) -> None:
    config.set("sidebar.dock", "left")
    window = make_sidebar().window
    left, _, _, _ = screen_area()
    qtbot.waitUntil(lambda: window.frameGeometry().left() == left, timeout=2000)


def test_collapse_to_a_strip_and_expand(qtbot: QtBot, make_sidebar: MakeSidebar) -> None:
    window = make_sidebar().window
    _, _, right, _ = screen_area()
    click(qtbot, window.collapse_button)
    assert window.collapsed
    assert window.width() == STRIP_WIDTH
    assert window.frameGeometry().right() == right, "the strip stays at the docked edge"
    assert window.strip.isVisible() and not window.full.isVisible()
    click(qtbot, window.expand_button)
    assert not window.collapsed
    assert window.width() == SIDEBAR_WIDTH
    assert window.frameGeometry().right() == right


def test_always_on_top_toggle_is_saved(
    qtbot: QtBot, make_sidebar: MakeSidebar, config: Config
) -> None:
    window = make_sidebar().window
    assert config.user_file is not None and not config.user_file.exists(), "start-up saves nothing"
    assert window.windowFlags() & Qt.WindowType.WindowStaysOnTopHint  # default: on
    click(qtbot, window.on_top_button)
    assert not window.windowFlags() & Qt.WindowType.WindowStaysOnTopHint
    assert window.isVisible()
    assert config.get("sidebar.always_on_top") is False
    assert config.user_file is not None
    qtbot.waitUntil(
        lambda: (
            config.user_file is not None
            and config.user_file.exists()
            and "always_on_top = false" in config.user_file.read_text()
        ),
        timeout=5000,
    )


def test_remembers_its_place(qtbot: QtBot, make_sidebar: MakeSidebar) -> None:
    first = make_sidebar().window
    first.setGeometry(first.x() - 100, first.y() + 20, 400, 500)
    placed = first.frameGeometry()
    first.close()
    second = make_sidebar().window
    assert second.frameGeometry() == placed


def test_invalid_lookup_shows_an_inline_error(qtbot: QtBot, make_sidebar: MakeSidebar) -> None:
    sidebar = make_sidebar()
    window = sidebar.window
    qtbot.keyClicks(window.lookup, "12ab")
    qtbot.keyClick(window.lookup, Qt.Key.Key_Return)
    assert window.lookup_error.isVisible()
    assert window.lookup_error.text()
    assert sidebar.calls.active is None
    qtbot.keyClicks(window.lookup, "c")  # typing again hides the error
    assert not window.lookup_error.isVisible()


def test_lookup_in_any_format_shows_the_same_caller(
    qtbot: QtBot, make_sidebar: MakeSidebar
) -> None:
    sidebar = make_sidebar()
    window = sidebar.window
    for text in ("+49 151 12345678", "0151/1234 5678", "0049 151 12345678"):
        window.lookup.clear()
        qtbot.keyClicks(window.lookup, text)
        with qtbot.waitSignal(window.panel.caller_shown, timeout=10_000) as shown:
            qtbot.keyClick(window.lookup, Qt.Key.Key_Return)
        assert shown.args == [NUMBER]
        assert sidebar.calls.active is not None and sidebar.calls.active.is_lookup
        assert "Lookup" in window.panel.header.call_state.text()
        window.panel.header.end.click()
        assert sidebar.calls.active is None


def test_keyboard_shortcuts_open_flows(qtbot: QtBot, make_sidebar: MakeSidebar) -> None:
    sidebar = make_sidebar()
    window = sidebar.window
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert window.lookup.hasFocus()
    qtbot.keyClicks(window.lookup, "015112345678")
    with qtbot.waitSignal(window.panel.caller_shown, timeout=10_000):
        qtbot.keyClick(window.lookup, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    assert sidebar.calls.active is not None and sidebar.calls.active.is_manual
    qtbot.keyClick(window, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    assert isinstance(window.panel.flow, ConsentFlow)
    qtbot.keyClick(window.panel.flow, Qt.Key.Key_Escape)
    assert window.panel.flow is None
    qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert isinstance(window.panel.flow, RequestFlow)
    qtbot.keyClick(window.panel.flow, Qt.Key.Key_Escape)
    qtbot.keyClick(window, Qt.Key.Key_F12)
    assert window.collapsed
    qtbot.keyClick(window, Qt.Key.Key_F12)
    assert not window.collapsed


def _interactive(root: QWidget) -> list[QWidget]:
    kinds = (QAbstractButton, QLineEdit, QComboBox, QAbstractItemView, QSpinBox)
    return [w for w in root.findChildren(QWidget) if isinstance(w, kinds) and w.isVisible()]


def test_every_control_has_an_accessible_name_and_shortcut_tooltips(
    qtbot: QtBot, make_sidebar: MakeSidebar
) -> None:
    sidebar = make_sidebar()
    window = sidebar.window
    open_caller_by_typing(qtbot, sidebar)
    controls = _interactive(window)
    assert len(controls) > 10
    for w in controls:
        name = w.accessibleName() or (w.text() if isinstance(w, QAbstractButton) else "")
        assert name.strip(), f"{type(w).__name__} {w.objectName()!r} in {w.parent()} unnamed"
    panel = window.panel
    for w in (
        window.lookup,
        window.manual_button,
        window.on_top_button,
        window.settings_button,
        window.collapse_button,
        panel.consent_button,
        panel.withdraw_button,
        panel.request_button,
        panel.header.verify,
        panel.header.end,
    ):
        assert SHORTCUT.search(w.toolTip()), f"{w.accessibleName()}: {w.toolTip()!r}"
    # State is never colour alone: the identity chip says it in words.
    assert "not verified" in panel.header.identity.text()


def test_identity_check_marks_the_call_verified(qtbot: QtBot, make_sidebar: MakeSidebar) -> None:
    sidebar = make_sidebar()
    open_caller_by_typing(qtbot, sidebar)
    panel = sidebar.window.panel
    click(qtbot, panel.header.verify)
    flow = panel.flow
    assert flow is not None
    confirm = flow.confirm  # type: ignore[attr-defined]
    assert not confirm.isEnabled()
    for box in flow.checks:  # type: ignore[attr-defined]
        click(qtbot, box)
    click(qtbot, confirm)
    assert sidebar.calls.active is not None
    assert sidebar.calls.active.verified_by == "security questions"
    assert "verified: security questions" in panel.header.identity.text()
    assert not panel.header.verify.isVisible()


def test_settings_dialog_saves_and_shows_locked_keys(
    qtbot: QtBot, make_sidebar: MakeSidebar, tmp_path: Path
) -> None:
    site = tmp_path / "site.toml"
    site.write_text(
        '[sidebar]\ndock = "left"\n[managed]\nlocked = ["sidebar.dock"]\n', encoding="utf-8"
    )
    config = Config.load(user_file=tmp_path / "user.toml", site_files=[site])
    sidebar = make_sidebar()
    sidebar.desk.config = config
    dialog = SettingsDialog(sidebar.desk, sidebar.window)
    qtbot.addWidget(dialog)
    dialog.show()
    dock = dialog.fields["sidebar.dock"]
    assert not dock.isEnabled()
    managed = dialog.findChild(QLabel, "managed:sidebar.dock")
    assert managed is not None and MANAGED in managed.text()
    agent = dialog.fields["general.agent"]
    assert isinstance(agent, QLineEdit)
    qtbot.keyClicks(agent, "x.new")
    clear = dialog.fields["sidebar.clear_after_seconds"]
    assert isinstance(clear, QSpinBox)
    clear.setValue(12)
    assert ("sidebar.dock", "right") not in dialog.values()
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        click(qtbot, dialog.buttons.button(dialog.buttons.StandardButton.Save))
    assert config.get("general.agent") == "x.new"
    assert config.get("sidebar.clear_after_seconds") == 12
    assert sidebar.calls.clear_after_seconds == 12
    saved = (tmp_path / "user.toml").read_text()
    assert 'agent = "x.new"' in saved and "dock" not in saved


def test_settings_rejects_bad_languages_inline(qtbot: QtBot, make_sidebar: MakeSidebar) -> None:
    sidebar = make_sidebar()
    dialog = SettingsDialog(sidebar.desk, sidebar.window)
    qtbot.addWidget(dialog)
    dialog.show()
    langs = dialog.fields["general.languages"]
    assert isinstance(langs, QLineEdit)
    langs.clear()
    qtbot.keyClicks(langs, "english")
    click(qtbot, dialog.buttons.button(dialog.buttons.StandardButton.Save))
    assert dialog.isVisible()
    assert dialog.error.isVisible() and "two-letter" in dialog.error.text()


def test_extra_settings_pages_are_added_after_the_built_in_ones(
    qtbot: QtBot, make_sidebar: MakeSidebar
) -> None:
    sidebar = make_sidebar()
    page = QLabel("server sign-in goes here")
    index = SettingsDialog(sidebar.desk).add_page("Server", page)
    assert index == 2
