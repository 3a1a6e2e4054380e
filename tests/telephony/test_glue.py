"""The sidebar's telephony wiring: URL events, config, shutdown, show requests."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QUrl
from PySide6.QtGui import QFileOpenEvent
from pytestqt.qtbot import QtBot

from consentdesk.gui.calls import CallController
from consentdesk.gui.telephony_glue import attach_telephony
from consentdesk.platform.config import Config, ConfigError
from consentdesk.platform.context import Context
from consentdesk.stores.demo import DEMO_CALLER
from consentdesk.telephony.events import CallSource

from .helpers import OFFSCREEN_LIMITS, RunningSidebar, write_config
from .test_cli import run

pytestmark = OFFSCREEN_LIMITS


def test_url_delivered_to_the_running_app_pops_the_caller(
    qtbot: QtBot, start_sidebar: Callable[..., RunningSidebar]
) -> None:
    running = start_sidebar()
    url = QUrl("consentdesk://call?number=%2B4915112345678&id=mac-1")
    with qtbot.waitSignal(running.telephony.event_routed, timeout=10_000):
        QCoreApplication.sendEvent(QCoreApplication.instance(), QFileOpenEvent(url))
    active = running.calls.active
    assert (active.call_id, active.number, active.source) == ("mac-1", DEMO_CALLER, CallSource.URI)


def test_hostile_url_event_is_refused_with_a_log_line(
    qtbot: QtBot, start_sidebar: Callable[..., RunningSidebar], caplog: pytest.LogCaptureFixture
) -> None:
    running = start_sidebar()
    assert not running.telephony.open_uri("consentdesk://call?number=javascript%3Aalert(1)")
    assert running.routed == [] and running.calls.active is None
    assert "refused a call URI" in caplog.text


def test_open_uri_without_a_url_brings_the_sidebar_forward(
    qtbot: QtBot, start_sidebar: Callable[..., RunningSidebar], data_dir: Path, config_file: Path
) -> None:
    running = start_sidebar()
    with qtbot.waitSignal(running.telephony.server.show_requested, timeout=20_000):
        assert run(qtbot, data_dir, config_file, "open-uri") == (0, "", "")


def test_stop_is_clean_and_idempotent(
    qtbot: QtBot, start_sidebar: Callable[..., RunningSidebar]
) -> None:
    running = start_sidebar()
    running.telephony.stop()
    running.telephony.stop()
    url = QUrl("consentdesk://call?number=%2B4915112345678")
    QCoreApplication.sendEvent(QCoreApplication.instance(), QFileOpenEvent(url))
    assert running.routed == []  # the URL filter went with it


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:0", "host:99999"])
def test_bad_baresip_address_is_a_usage_error(
    qtbot: QtBot, tmp_path: Path, data_dir: Path, address: str
) -> None:
    ctx = Context(
        config=Config.load(user_file=tmp_path / "none.toml", site_files=[]), data_dir=data_dir
    )
    controller = CallController()
    with pytest.raises(ConfigError, match="HOST:PORT"):
        attach_telephony(
            controller, ctx, argparse.Namespace(baresip=address), server=None, tasks=None
        )


def test_baresip_address_from_config_and_flag(qtbot: QtBot, tmp_path: Path, data_dir: Path) -> None:
    config = write_config(tmp_path / "c.toml", telephony={"baresip": "127.0.0.1:1"})
    ctx = Context(config=Config.load(user_file=config, site_files=[]), data_dir=data_dir)
    controller = CallController()
    from_config = attach_telephony(controller, ctx, argparse.Namespace(), server=None, tasks=None)
    try:
        assert from_config.connector is not None and from_config.connector.port == 1
        assert controller.link_up is False and "127.0.0.1:1" in controller.link_detail
    finally:
        from_config.stop()
    off = attach_telephony(controller, ctx, argparse.Namespace(baresip=""), server=None, tasks=None)
    assert off.connector is None  # --baresip '' turns it off
    off.stop()
