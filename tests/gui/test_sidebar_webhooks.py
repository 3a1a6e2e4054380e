"""A withdrawal in the sidebar, on the team server, reaches a real webhook receiver
signed (checked with the ``standardwebhooks`` library) and the change feed."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
from pytestqt.qtbot import QtBot
from sidebar_support import click, open_caller_by_typing, tick_read_aloud
from test_sidebar_server import (  # noqa: F401 (fixtures)
    WAIT_MS,
    MakeSidebar,
    TeamServer,
    fail_to_load,
    free_port,
    give_consent,
    make_desk,
    select_cell,
    sign_in_in_settings,
    team_server,
)

from consentdesk.domain.model import Channel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from webhook_receiver import Receiver


def test_a_withdrawal_in_the_sidebar_reaches_a_signed_webhook_and_the_feed(
    qtbot: QtBot,
    team_server: TeamServer,  # noqa: F811
    make_desk: MakeSidebar,  # noqa: F811
) -> None:
    token = team_server.add_user("alice", "agent", "red")
    admin = team_server.add_user("adam", "admin", "ops")
    receiver = Receiver(free_port()).start()
    try:
        answer = httpx.post(
            f"{team_server.url}/v1/admin/webhooks",
            json={"url": receiver.url, "events": ["consent.changed"]},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert answer.status_code == 201, answer.text
        receiver.secret = answer.json()["secret"]

        desk = make_desk("alice", team_server.url)
        fail_to_load(qtbot, desk)
        sign_in_in_settings(qtbot, desk, token)
        open_caller_by_typing(qtbot, desk)
        give_consent(qtbot, desk, "marketing-offers", Channel.EMAIL)
        panel = desk.window.panel
        select_cell(qtbot, desk, "marketing-offers", Channel.EMAIL)
        click(qtbot, panel.withdraw_button)
        flow = panel.flow
        tick_read_aloud(qtbot, flow)
        with qtbot.waitSignal(panel.captured, timeout=WAIT_MS) as captured:
            click(qtbot, flow.record)
        (withdrawal,) = captured.args[0].events

        def arrived() -> bool:
            return any(
                p["data"]["event_id"] == str(withdrawal.event_id) for p in receiver.payloads()
            )

        qtbot.waitUntil(arrived, timeout=WAIT_MS)
    finally:
        receiver.stop()
    assert receiver.rejected == []
    states = [(p["data"]["state"], p["data"]["previous_state"]) for p in receiver.payloads()]
    assert states == [("given", "unknown"), ("withdrawn", "given")]
    feed = team_server.get(admin, "/v1/changes")
    assert [c["data"]["event_id"] for c in feed["changes"]][-1] == str(withdrawal.event_id)
