"""Sidebar test fixtures: a real embedded ledger in tmp_path and the real window."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot
from sidebar_support import AGENT, AGENT_NAME, known_customer

from consentdesk.domain.backend import Backend
from consentdesk.gui.app import create_app
from consentdesk.gui.main import Sidebar, build_sidebar
from consentdesk.gui.window import GEOMETRY_KEY
from consentdesk.platform.config import Config
from consentdesk.platform.context import Context


@pytest.fixture
def config(tmp_path: Path) -> Config:
    cfg = Config.load(user_file=tmp_path / "config.toml", site_files=[])
    cfg.set("general.agent", AGENT)
    cfg.set("general.agent_name", AGENT_NAME)
    cfg.set("general.languages", ["en", "de"])
    cfg.set("sidebar.clear_after_seconds", 1)
    return cfg


@pytest.fixture
def known_caller(data_dir: Path) -> None:
    """The test's caller (NUMBER) is a customer in our records."""
    known_customer(data_dir)


@pytest.fixture
def ctx(config: Config, data_dir: Path) -> Context:
    return Context(config=config, data_dir=data_dir)


@pytest.fixture
def make_sidebar(qtbot: QtBot, ctx: Context) -> Iterator[Callable[..., Sidebar]]:
    """Build, show and (at teardown) shut down sidebars on the test's ledger."""
    create_app()
    QSettings().remove(GEOMETRY_KEY)  # each test starts docked, not where the last one left
    made: list[Sidebar] = []

    def make(
        *, open_backend: Callable[[], Backend] | None = None, wait_ready: bool = True
    ) -> Sidebar:
        sidebar = build_sidebar(ctx, open_backend=open_backend)
        made.append(sidebar)
        with qtbot.waitExposed(sidebar.window):
            sidebar.window.show()
        if wait_ready:
            with qtbot.waitSignal(sidebar.desk.ready, timeout=10_000):
                sidebar.desk.load()
        return sidebar

    yield make
    for sidebar in made:
        sidebar.shutdown()
