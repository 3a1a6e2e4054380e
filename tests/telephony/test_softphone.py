"""Real softphone, real SIP: baresip with ctrl_tcp, sipp calling it on loopback, D's sidebar.

The caller must pop within 1 s of sipp's INVITE (asserted as a waitUntil
deadline, measured from sipp's own send time and reported), a hang-up must
clear it, a baresip restart must be survived, and every number form must land
on the same subject.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from pytestqt.qtbot import QtBot

from consentdesk.domain.model import ConsentEvent
from consentdesk.gui.flows import ConsentFlow
from consentdesk.stores.demo import DEMO_CALLER
from consentdesk.telephony.calls import CallRecord
from consentdesk.telephony.events import CallPhase, CallSource

from .helpers import OFFSCREEN_LIMITS, RunningSidebar
from .softphone import CANCEL_SCENARIO, Baresip, Sipp

pytestmark = [
    pytest.mark.softphone,
    OFFSCREEN_LIMITS,
]


@pytest.fixture
def baresip(tmp_path: Path) -> Iterator[Baresip]:
    phone = Baresip(tmp_path / "baresip")
    phone.start()
    yield phone
    phone.stop()


@pytest.fixture
def desk(
    qtbot: QtBot, baresip: Baresip, start_sidebar: Callable[..., RunningSidebar]
) -> RunningSidebar:
    running = start_sidebar(baresip=baresip.ctrl_address)
    qtbot.waitUntil(lambda: running.calls.link_up is True, timeout=10_000)
    return running


@pytest.fixture
def sipps() -> Iterator[list[Sipp]]:
    started: list[Sipp] = []
    yield started
    for sipp in started:
        if sipp.running():
            sipp.kill()


def place_call(sipps: list[Sipp], tmp_path: Path, baresip: Baresip, **kw: object) -> Sipp:
    sipp = Sipp(tmp_path / f"sipp{len(sipps)}", baresip.sip_port, **kw)  # type: ignore[arg-type]
    sipps.append(sipp)
    return sipp


def pop_latency(qtbot: QtBot, sipp: Sipp) -> float:
    """Seconds from sipp's INVITE to the caller on screen (already waited for)."""
    shown = time.time()
    qtbot.waitUntil(lambda: bool(sipp.invites()), timeout=5_000)
    return shown - sipp.invites()[0]


def read_through(qtbot: QtBot, page: ConsentFlow) -> None:
    """Scroll the script down page by page, as the agent reads it, until all of it has
    been on screen (the read-aloud tick waits for that; a small screen scrolls)."""
    view = page.script_view
    bar = view.scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: view.seen_all or view.seen_to > 0, timeout=5_000)
    for _ in range(bar.maximum() // max(bar.pageStep(), 1) + 1):
        if view.seen_all:
            break
        bar.setValue(min(bar.value() + bar.pageStep(), bar.maximum()))
        qtbot.waitUntil(lambda: view.seen_all or view.seen_to >= bar.value() + 1, timeout=5_000)
    qtbot.waitUntil(page.read_aloud.isEnabled, timeout=5_000)


def capture_consent(qtbot: QtBot, desk: RunningSidebar) -> tuple[ConsentEvent, ...]:
    """Record one consent with real clicks, as the agent would during the call."""
    page = desk.panel.start_consent()
    assert isinstance(page, ConsentFlow)
    purpose_id, box = next(iter(page.purpose_boxes.items()))
    channel = page.purposes[purpose_id].channels[0]
    for tick in (box, page.channel_boxes[channel], page.read_aloud):
        if tick is page.read_aloud:
            read_through(qtbot, page)
        # A check box takes clicks on its indicator and text, not the empty width.
        qtbot.mouseClick(tick, Qt.MouseButton.LeftButton, pos=QPoint(8, tick.height() // 2))
        assert tick.isChecked()
    assert page.agreed.isEnabled(), page.script_view.rendered
    with qtbot.waitSignal(desk.panel.captured, timeout=15_000) as captured:
        qtbot.mouseClick(page.agreed, Qt.MouseButton.LeftButton)
    events: tuple[ConsentEvent, ...] = captured.args[0].events
    assert events
    return events


def test_incoming_call_pops_the_right_caller_then_hang_up_clears_it(
    qtbot: QtBot,
    desk: RunningSidebar,
    baresip: Baresip,
    sipps: list[Sipp],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    calls = desk.calls
    sipp = place_call(sipps, tmp_path, baresip, user="+4915112345678", display="Erika M")
    qtbot.waitUntil(
        lambda: calls.active is not None and calls.active.number == DEMO_CALLER, timeout=1_000
    )
    record_property("pop_latency_s", round(pop_latency(qtbot, sipp), 4))
    active = calls.active
    assert active.source == CallSource.BARESIP and active.display_name == "Erika M"
    assert active.phase == CallPhase.INCOMING
    panel = desk.panel
    qtbot.waitUntil(
        lambda: panel.status is not None and panel.status.subject.number == DEMO_CALLER,
        timeout=10_000,
    )

    # The agent answers in the softphone: captures now carry this call's id.
    assert desk.telephony.connector.command("accept")
    qtbot.waitUntil(lambda: calls.active.phase == CallPhase.ANSWERED, timeout=5_000)
    call_id = calls.active.call_id
    assert call_id and call_id == active.call_id
    receipts = capture_consent(qtbot, desk)
    assert {e.call_id for e in receipts} == {call_id}
    in_ledger: list[object] = []
    desk.sidebar.runner.call(lambda b: b.history(DEMO_CALLER), on_success=in_ledger.append)
    qtbot.waitUntil(lambda: bool(in_ledger), timeout=10_000)
    recorded = {e.event_id: e.call_id for e in in_ledger[0]}
    assert all(recorded[e.event_id] == call_id for e in receipts)

    # sipp hangs up (BYE) after holding the call: the caller leaves the screen.
    qtbot.waitUntil(lambda: calls.active is None, timeout=15_000)
    qtbot.waitUntil(lambda: not sipp.running(), timeout=15_000)
    result = sipp.finish()
    assert result.returncode == 0, result.stderr
    assert [e.phase for e in desk.routed] == [
        CallPhase.INCOMING,
        CallPhase.ANSWERED,
        CallPhase.ENDED,
    ]
    assert {e.call_id for e in desk.routed} == {call_id}
    recent: list[list[CallRecord]] = []
    desk.telephony.recent_calls(recent.append)
    qtbot.waitUntil(lambda: bool(recent), timeout=10_000)
    [record] = recent[0]
    assert record.call_id == call_id and record.source == "baresip"
    assert record.answered_at is not None and record.ended_at is not None
    assert record.captures == tuple(e.event_id for e in receipts)


def test_caller_hanging_up_before_answer_clears_it(
    qtbot: QtBot, desk: RunningSidebar, baresip: Baresip, sipps: list[Sipp], tmp_path: Path
) -> None:
    sipp = place_call(
        sipps, tmp_path, baresip, user="+4915112345678", hold_ms=500, scenario=CANCEL_SCENARIO
    )
    qtbot.waitUntil(lambda: desk.calls.active is not None, timeout=1_000)
    qtbot.waitUntil(lambda: desk.calls.active is None, timeout=15_000)  # CANCEL: missed call
    assert [e.phase for e in desk.routed] == [CallPhase.INCOMING, CallPhase.ENDED]
    qtbot.waitUntil(lambda: not sipp.running(), timeout=15_000)
    result = sipp.finish()
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("user", "host", "params", "display"),
    [
        ("+4915112345678", "127.0.0.1", "", ""),
        ("015112345678", "127.0.0.1", ";user=phone", ""),
        ("004915112345678", "127.0.0.1", "", "Erika"),
        ("0151-1234-5678", "pbx.example.com", ";user=phone", ""),
        ("+49151%2012345678", "127.0.0.1", ";user=phone", ""),
    ],
)
def test_every_number_form_lands_on_the_same_subject(
    qtbot: QtBot,
    desk: RunningSidebar,
    baresip: Baresip,
    sipps: list[Sipp],
    tmp_path: Path,
    user: str,
    host: str,
    params: str,
    display: str,
) -> None:
    with qtbot.waitSignal(desk.panel.caller_shown, timeout=10_000) as shown:
        place_call(sipps, tmp_path, baresip, user=user, host=host, params=params, display=display)
    assert shown.args == [DEMO_CALLER]
    assert desk.calls.active.number == DEMO_CALLER
    assert desk.panel.status.subject.number == DEMO_CALLER


def test_withheld_caller_pops_as_withheld(
    qtbot: QtBot, desk: RunningSidebar, baresip: Baresip, sipps: list[Sipp], tmp_path: Path
) -> None:
    place_call(
        sipps, tmp_path, baresip, user="anonymous", host="anonymous.invalid", display="Anonymous"
    )
    qtbot.waitUntil(lambda: desk.calls.active is not None, timeout=1_000)
    active = desk.calls.active
    assert active.number is None and active.raw_number == ""
    assert desk.panel.header.name.text() == "Anonymous"
    assert "look the caller up" in desk.panel.header.number.text()


def test_baresip_restart_is_survived(
    qtbot: QtBot, desk: RunningSidebar, baresip: Baresip, sipps: list[Sipp], tmp_path: Path
) -> None:
    calls = desk.calls
    baresip.stop()
    qtbot.waitUntil(lambda: calls.link_up is False, timeout=10_000)
    assert "not reachable" in calls.link_detail
    baresip.start()
    qtbot.waitUntil(lambda: calls.link_up is True, timeout=15_000)
    place_call(sipps, tmp_path, baresip, user="015112345678", params=";user=phone")
    qtbot.waitUntil(
        lambda: calls.active is not None and calls.active.number == DEMO_CALLER, timeout=1_000
    )
    assert desk.telephony.connector.connects == 2


def test_second_call_while_one_is_active_waits(
    qtbot: QtBot, desk: RunningSidebar, baresip: Baresip, sipps: list[Sipp], tmp_path: Path
) -> None:
    calls = desk.calls
    place_call(sipps, tmp_path, baresip, user="+4915112345678", hold_ms=20_000)
    qtbot.waitUntil(lambda: calls.active is not None, timeout=1_000)
    assert desk.telephony.connector.command("accept")
    qtbot.waitUntil(lambda: calls.active.phase == CallPhase.ANSWERED, timeout=5_000)
    first = calls.active.call_id
    place_call(sipps, tmp_path, baresip, user="+4930901820")
    qtbot.waitUntil(lambda: len(calls.waiting) == 1, timeout=1_000)
    assert calls.active.call_id == first
    assert calls.waiting[0].number == "+4930901820"
