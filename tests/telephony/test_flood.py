"""Call floods: the waiting list is capped, the connector pushes back, the bar keeps up.

A misbehaving PBX or a retry storm sends thousands of call events a second.
These tests drive the real CallController, connector and window (nothing
timed: the bounds are counted, the speed lives in tests/benchmarks/bench_flood.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from consentdesk.gui.calls import MAX_SURPLUS, MAX_WAITING, CallController
from consentdesk.gui.telephony_glue import RECENT_BACKLOG
from consentdesk.telephony.events import CallEvent, CallPhase, CallSource
from consentdesk.telephony.inbox import EventInbox

from .flood_peer import FloodPeer, call_message, flood_events
from .helpers import OFFSCREEN_LIMITS, SidebarStarter

pytestmark = OFFSCREEN_LIMITS


def ev(phase: CallPhase, call_id: str, number: str = "+4930901820") -> CallEvent:
    return CallEvent(phase, call_id, CallSource.BARESIP, number, raw_number=number)


@pytest.fixture
def controller(qapp: QApplication) -> CallController:
    calls = CallController(clear_after_seconds=0)
    calls.handle(ev(CallPhase.ANSWERED, "talking"))  # the agent is on a call
    return calls


def test_waiting_list_is_capped_newest_kept_surplus_counted(controller: CallController) -> None:
    for i in range(300):
        controller.handle(ev(CallPhase.INCOMING, f"c{i}"))
    assert controller.active is not None and controller.active.call_id == "talking"
    assert [c.call_id for c in controller.waiting] == [f"c{i}" for i in range(292, 300)]
    assert len(controller.waiting) == MAX_WAITING
    assert controller.surplus == 300 - MAX_WAITING
    assert controller.surplus_total == 300 - MAX_WAITING
    # A repeated INCOMING of a surplus call changes nothing.
    controller.handle(ev(CallPhase.INCOMING, "c5"))
    assert controller.surplus == 292 and len(controller.waiting) == MAX_WAITING
    # Surplus calls that give up leave the count.
    controller.handle(ev(CallPhase.ENDED, "c0"))
    controller.handle(ev(CallPhase.ENDED, "c1"))
    assert controller.surplus == 290
    # A listed call that ends frees a place: the newest surplus call takes it.
    controller.handle(ev(CallPhase.ENDED, "c299"))
    assert controller.waiting[-1].call_id == "c291" and controller.surplus == 289


def test_surplus_call_answered_in_the_softphone_comes_on_screen(
    controller: CallController,
) -> None:
    for i in range(20):
        controller.handle(ev(CallPhase.INCOMING, f"c{i}"))
    controller.handle(ev(CallPhase.ANSWERED, "c3"))
    assert controller.active is not None and controller.active.call_id == "c3"
    ids = [c.call_id for c in controller.waiting]
    assert ids[0] == "talking", "the previous call is on hold and stays listed"
    assert len(ids) == MAX_WAITING and "c3" not in ids
    assert controller.surplus == 20 - MAX_WAITING - 1 + 1  # talking pushed one ringing call out


def test_surplus_memory_is_bounded(controller: CallController) -> None:
    for i in range(MAX_SURPLUS * 3):
        controller.handle(ev(CallPhase.INCOMING, f"c{i}"))
    assert len(controller.waiting) == MAX_WAITING
    assert controller.surplus == MAX_SURPLUS
    assert controller.surplus_total == MAX_SURPLUS * 3 - MAX_WAITING
    assert controller.waiting[-1].call_id == f"c{MAX_SURPLUS * 3 - 1}"


def test_inbox_blocks_the_producer_when_full() -> None:
    woken: list[int] = []
    inbox: EventInbox[int] = EventInbox(on_ready=lambda: woken.append(1), capacity=4)
    for i in range(4):
        assert inbox.put(i)
    assert woken == [1], "woken once per batch, not per item"
    import threading

    done = threading.Event()
    threading.Thread(target=lambda: (inbox.put(99), done.set()), daemon=True).start()
    assert not done.wait(0.2), "a full inbox makes the producer wait"
    assert inbox.take(2) == [0, 1]
    assert done.wait(5)
    assert inbox.blocked == 1 and inbox.high_water == 4
    assert inbox.take(10) == [2, 3, 99]
    inbox.close()
    assert inbox.put(5) is False


@pytest.fixture
def peer() -> Iterator[FloodPeer]:
    flood = FloodPeer()
    yield flood
    flood.close()


def test_flood_through_the_real_window_stays_bounded_and_shows_the_newest(
    qtbot: QtBot, start_sidebar: SidebarStarter, peer: FloodPeer
) -> None:
    running = start_sidebar(baresip=peer.address)
    qtbot.waitUntil(lambda: running.calls.link_up is True, timeout=10_000)
    peer.send(call_message("CALL_ESTABLISHED", "talking", "+4915112345678"))
    qtbot.waitUntil(lambda: running.calls.active is not None, timeout=10_000)
    telephony, bar = running.telephony, running.sidebar.window.waiting_bar
    renders_before = bar.refresh.runs

    calls = 3000
    peer.send(flood_events(0, calls))  # ~6,000 events in one burst
    time.sleep(0.5)  # the GUI thread is busy elsewhere: the connector must wait
    assert len(telephony.inbox) <= telephony.inbox.capacity
    assert telephony.inbox.blocked >= 1, "the connector stopped reading instead of buffering"
    peer.send(call_message("CALL_INCOMING", "newest", "+4930901820", "Newest Caller"))

    qtbot.waitUntil(
        lambda: bar.isVisible() and "Newest Caller" in bar._rows[-1].label.text(),
        timeout=30_000,
    )
    waiting = running.calls.waiting
    assert len(waiting) == MAX_WAITING and waiting[-1].call_id == "newest"
    # 50 flood calls still ring (see flood_peer.RINGING); the rest were closed.
    assert running.calls.surplus == 50 + 1 - MAX_WAITING
    assert f"+ {50 + 1 - MAX_WAITING} more calls ringing" in bar.surplus_label.text()
    assert len(bar._rows) <= MAX_WAITING, "rows are reused, not rebuilt per event"
    assert bar.refresh.runs - renders_before < calls // 10, "redraws are coalesced"
    assert telephony.inbox.high_water <= telephony.inbox.capacity
    assert len(telephony._unwritten) <= RECENT_BACKLOG
    assert running.calls.active is not None and running.calls.active.call_id == "talking"


def test_oversized_frame_is_skipped_and_the_next_event_delivered(
    qtbot: QtBot, start_sidebar: SidebarStarter, peer: FloodPeer
) -> None:
    running = start_sidebar(baresip=peer.address)
    qtbot.waitUntil(lambda: running.calls.link_up is True, timeout=10_000)
    junk = b"x" * 1_000_000
    peer.send(b"%d:%s," % (len(junk), junk) + call_message("CALL_INCOMING", "after", "+4930901820"))
    qtbot.waitUntil(lambda: running.calls.active is not None, timeout=10_000)
    assert running.calls.active.call_id == "after"
    assert running.calls.link_up is True, "the link stayed up"
