"""Fixtures for telephony tests (helpers live in helpers.py, shared with benchmarks)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import LineProcess, SidebarStarter, default_config


@pytest.fixture
def spawn() -> Iterator[type[LineProcess]]:
    started: list[LineProcess] = []

    class Tracked(LineProcess):
        def __init__(self, args: list[str], **kw: object) -> None:
            super().__init__(args, **kw)
            started.append(self)

    yield Tracked
    for proc in started:
        proc.stop()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return default_config(tmp_path / "config.toml")


@pytest.fixture
def start_sidebar(qtbot: Any, data_dir: Path, config_file: Path) -> Iterator[SidebarStarter]:
    starter = SidebarStarter(qtbot, data_dir, config_file)
    yield starter
    starter.close()
