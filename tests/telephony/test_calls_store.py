"""Recent calls store: lifecycle folding, captures, retention and purge."""

from __future__ import annotations

import contextlib
import sqlite3
import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consentdesk.platform.config import Config
from consentdesk.telephony.calls import FILE_NAME, RecentCalls, retention_cutoff
from consentdesk.telephony.events import CallEvent, CallPhase, CallSource

T0 = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def ev(
    phase: CallPhase, call_id: str, at: datetime, number: str | None = "+4915112345678"
) -> CallEvent:
    return CallEvent(phase, call_id, CallSource.BARESIP, number, raw_number="015112345678", at=at)


def count(path: Path, table: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608


def test_lifecycle_folds_into_one_row(tmp_path: Path) -> None:
    store = RecentCalls(tmp_path / FILE_NAME, retention_hours=8, now=Clock(T0))
    store.record(ev(CallPhase.INCOMING, "c1", T0))
    store.record(ev(CallPhase.ANSWERED, "c1", T0 + timedelta(seconds=5)))
    store.record(ev(CallPhase.ANSWERED, "c1", T0 + timedelta(seconds=9)))  # repeat: first wins
    store.record(ev(CallPhase.ENDED, "c1", T0 + timedelta(minutes=3)))
    e1, e2 = uuid.uuid4(), uuid.uuid4()
    assert store.add_capture("c1", e1)
    assert store.add_capture("c1", e2)
    assert store.add_capture("c1", e2)  # idempotent
    assert not store.add_capture("unknown", uuid.uuid4())
    store.record(ev(CallPhase.INCOMING, "c2", T0 + timedelta(minutes=5), number=None))
    [second, first] = store.recent()
    assert first.call_id == "c1" and first.source == "baresip"
    assert first.incoming_at == T0
    assert first.answered_at == T0 + timedelta(seconds=5)
    assert first.ended_at == T0 + timedelta(minutes=3)
    assert first.captures == (e1, e2)
    assert second.number is None and second.answered_at is None
    assert count(tmp_path / FILE_NAME, "call_captures") == 2


def test_file_is_private(tmp_path: Path) -> None:
    RecentCalls(tmp_path / FILE_NAME)
    assert stat.S_IMODE((tmp_path / FILE_NAME).stat().st_mode) == 0o600


def test_two_users_of_one_file_see_each_other(tmp_path: Path) -> None:
    sidebar = RecentCalls(tmp_path / FILE_NAME, now=Clock(T0), retention_hours=8)
    command = RecentCalls(tmp_path / FILE_NAME, now=Clock(T0), retention_hours=8)
    sidebar.record(ev(CallPhase.INCOMING, "c1", T0))
    assert [r.call_id for r in command.recent()] == ["c1"]


def test_retention_hours_purges_on_read_and_open(tmp_path: Path) -> None:
    clock = Clock(T0)
    path = tmp_path / FILE_NAME
    store = RecentCalls(path, retention_hours=2, now=clock)
    store.record(ev(CallPhase.INCOMING, "old", T0 - timedelta(hours=3)))
    store.record(ev(CallPhase.INCOMING, "long", T0 - timedelta(hours=3)))
    store.record(ev(CallPhase.ENDED, "long", T0 - timedelta(hours=1)))  # recent activity
    store.record(ev(CallPhase.INCOMING, "new", T0))
    store.add_capture("old", uuid.uuid4())
    assert [r.call_id for r in store.recent()] == ["new", "long"]
    assert count(path, "call_captures") == 0  # went with its call
    clock.now = T0 + timedelta(hours=1, minutes=1)
    assert [r.call_id for r in store.recent()] == ["new"]
    RecentCalls(path, retention_hours=2, now=Clock(T0 + timedelta(hours=5)))
    assert count(path, "calls") == 0  # purged at open, before anything is read


def test_zero_retention_keeps_until_local_midnight(tmp_path: Path) -> None:
    local_noon = datetime.now().astimezone().replace(hour=12, minute=0, second=0, microsecond=0)
    clock = Clock(local_noon.astimezone(UTC))
    store = RecentCalls(tmp_path / FILE_NAME, retention_hours=0, now=clock)
    store.record(ev(CallPhase.INCOMING, "today", local_noon - timedelta(hours=11)))
    store.record(ev(CallPhase.INCOMING, "yesterday", local_noon - timedelta(hours=13)))
    assert [r.call_id for r in store.recent()] == ["today"]
    clock.now = (local_noon + timedelta(hours=12, minutes=1)).astimezone(UTC)  # next day
    assert store.recent() == []


@pytest.mark.parametrize("hours", [1, 24])
def test_cutoff_with_hours(hours: int) -> None:
    assert retention_cutoff(T0, hours) == T0 - timedelta(hours=hours)


def test_open_reads_retention_from_config(tmp_path: Path) -> None:
    user = tmp_path / "config.toml"
    user.write_text("[calls]\nretention_hours = 3\n", encoding="utf-8")
    store = RecentCalls.open(tmp_path, Config.load(user_file=user, site_files=[]))
    assert store.retention_hours == 3
    assert store.path == tmp_path / FILE_NAME


def test_a_burst_in_one_batch_folds_as_event_by_event(tmp_path: Path) -> None:
    s = timedelta(seconds=1)
    events = [
        ev(CallPhase.INCOMING, "a", T0),
        ev(CallPhase.ANSWERED, "b", T0 + s),  # auto-answer: no INCOMING first
        ev(CallPhase.ANSWERED, "a", T0 + 2 * s),
        ev(CallPhase.ENDED, "b", T0 + 3 * s),
        ev(CallPhase.ANSWERED, "a", T0 + 4 * s),  # repeat: first wins
        ev(CallPhase.ENDED, "a", T0 + 5 * s),
    ]
    one_by_one = RecentCalls(tmp_path / "one" / FILE_NAME, retention_hours=8, now=Clock(T0))
    for event in events[:2]:
        one_by_one.record(event)
    for event in events[2:]:
        one_by_one.record(event)
    batched = RecentCalls(tmp_path / "batch" / FILE_NAME, retention_hours=8, now=Clock(T0))
    batched.record_many(events[:2])  # a row from an earlier batch is folded into, too
    batched.record_many(events[2:])
    assert batched.recent() == one_by_one.recent()
    [b, a] = batched.recent()
    assert (a.incoming_at, a.answered_at, a.ended_at) == (T0, T0 + 2 * s, T0 + 5 * s)
    assert (b.incoming_at, b.answered_at, b.ended_at) == (T0 + s, T0 + s, T0 + 3 * s)
