"""Hand-off plumbing without Qt: wire format, spool, launch marker, call ids."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentdesk.domain.model import to_jsonable
from consentdesk.telephony.events import CallEvent, CallPhase, CallSource, call_event_from_json
from consentdesk.telephony.handoff import (
    HEADER,
    MAX_MESSAGE,
    SPOOL_MAX_FILES,
    CallIdResolver,
    FrameReader,
    HandoffError,
    InstancePaths,
    call_message,
    claim_launch,
    decode_body,
    drain_spool,
    encode_message,
    release_launch,
    spool_event,
)

ERIKA = "+4915112345678"


def event(phase: CallPhase = CallPhase.INCOMING, call_id: str = "c1", **kw: object) -> CallEvent:
    fields: dict[str, object] = {"number": ERIKA, "raw_number": "015112345678"}
    fields.update(kw)
    return CallEvent(phase, call_id, CallSource.COMMAND, **fields)  # type: ignore[arg-type]


@pytest.fixture
def paths(tmp_path: Path) -> InstancePaths:
    return InstancePaths.for_data_dir(tmp_path / "data")


def test_instance_paths_are_private_and_per_data_dir(tmp_path: Path) -> None:
    a = InstancePaths.for_data_dir(tmp_path / "a")
    b = InstancePaths.for_data_dir(tmp_path / "b")
    assert a.server_name != b.server_name
    assert str(os.getuid()) in a.key
    info = os.stat(a.runtime_dir)
    assert stat.S_IMODE(info.st_mode) & 0o077 == 0
    assert info.st_uid == os.getuid()
    assert len(a.server_name.encode()) < 100  # AF_UNIX path limit is 108


def test_call_event_round_trips_through_json() -> None:
    original = event(display_name="Erika")
    assert call_event_from_json(json.loads(json.dumps(to_jsonable(original)))) == original


@pytest.mark.parametrize(
    "mutate",
    [
        {"phase": "exploded"},
        {"source": None},
        {"number": "015112345678"},
        {"number": "+49 151"},
        {"call_id": "a b"},
        {"call_id": "x" * 257},
        {"raw_number": "\x1b[31m"},
        {"display_name": 5},
        {"at": "yesterday"},
        {"at": "2025-01-01T10:00:00"},
        {"at": None},
    ],
)
def test_call_event_json_is_validated(mutate: dict[str, object]) -> None:
    data = to_jsonable(event())
    data.update(mutate)
    with pytest.raises(ValueError):
        call_event_from_json(data)


def test_frames_round_trip_split_and_joined() -> None:
    sent = event()
    frames = encode_message(call_message(sent)) + encode_message({"v": 1, "kind": "show"})
    reader = FrameReader()
    bodies = [b for i in range(len(frames)) for b in reader.feed(frames[i : i + 1])]
    assert [decode_body(b)["kind"] for b in bodies] == ["call", "show"]
    assert decode_body(bodies[0])["event"] == sent


def test_oversized_frame_is_refused_before_reading_it() -> None:
    with pytest.raises(HandoffError, match="exceeds"):
        list(FrameReader().feed(HEADER.pack(MAX_MESSAGE + 1)))
    with pytest.raises(HandoffError, match="too large"):
        encode_message({"v": 1, "kind": "show", "pad": "x" * MAX_MESSAGE})


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe",
        b"not json",
        b"[1,2]",
        b'{"v":2,"kind":"call"}',
        b'{"v":1,"kind":"exec","cmd":"rm -rf /"}',
        b'{"v":1,"kind":"call","event":{"phase":"incoming"}}',
        b"[" * 5000 + b"]" * 5000,
        b'{"v":1,"kind":"call","event":' + b"9" * 5000 + b"}",
    ],
)
def test_garbage_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(HandoffError):
        decode_body(body)


@given(st.binary(max_size=600))
def test_decode_body_only_raises_handoff_error(body: bytes) -> None:
    with contextlib.suppress(HandoffError):
        decode_body(body)


def test_spool_is_private_ordered_and_drained_once(paths: InstancePaths) -> None:
    first = spool_event(paths, event(call_id="a"))
    spool_event(paths, event(CallPhase.ANSWERED, call_id="a"))
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.spool_dir.stat().st_mode) & 0o077 == 0
    drained = drain_spool(paths)
    assert [(e.call_id, e.phase) for e in drained] == [
        ("a", CallPhase.INCOMING),
        ("a", CallPhase.ANSWERED),
    ]
    assert drain_spool(paths) == []
    assert list(paths.spool_dir.iterdir()) == []


def test_spool_drops_stale_and_broken_files(
    paths: InstancePaths, caplog: pytest.LogCaptureFixture
) -> None:
    old = datetime.now(UTC) - timedelta(minutes=10)
    spool_event(paths, event(call_id="old", at=old))
    (paths.spool_dir / "00000000000000000001-1-x.json").write_bytes(b"garbage +4915112345678")
    spool_event(paths, event(call_id="fresh"))
    assert [e.call_id for e in drain_spool(paths)] == ["fresh"]
    assert "dropped a spooled hand-off" in caplog.text
    assert "4915112345678" not in caplog.text
    assert list(paths.spool_dir.iterdir()) == []


def test_spool_is_bounded(paths: InstancePaths) -> None:
    for i in range(SPOOL_MAX_FILES + 5):
        spool_event(paths, event(call_id=f"c{i:03d}"))
    drained = drain_spool(paths)
    assert len(drained) == SPOOL_MAX_FILES
    assert drained[-1].call_id == f"c{SPOOL_MAX_FILES + 4:03d}"


def test_launch_marker_lets_one_starter_through(paths: InstancePaths) -> None:
    assert claim_launch(paths) is True
    assert claim_launch(paths) is False  # a sidebar is already starting
    release_launch(paths)
    assert claim_launch(paths) is True
    stale = time.time() - 3600
    os.utime(paths.launch_marker, (stale, stale))
    assert claim_launch(paths) is True  # that start evidently failed


def test_resolver_gives_one_id_per_call_matched_by_number() -> None:
    resolver = CallIdResolver()
    incoming = resolver.resolve(event(call_id=""))
    answered = resolver.resolve(event(CallPhase.ANSWERED, call_id=""))
    ended = resolver.resolve(event(CallPhase.ENDED, call_id=""))
    assert incoming.call_id.startswith("desk-")
    assert incoming.call_id == answered.call_id == ended.call_id
    again = resolver.resolve(event(call_id=""))
    assert again.call_id != incoming.call_id  # a new call from the same number
    other = resolver.resolve(event(call_id="", number="+493012345678"))
    assert other.call_id != again.call_id
    assert resolver.resolve(event(call_id="given")).call_id == "given"


def test_resolver_answered_without_incoming_gets_an_id() -> None:
    resolver = CallIdResolver()
    answered = resolver.resolve(event(CallPhase.ANSWERED, call_id=""))
    assert answered.call_id
    assert resolver.resolve(event(CallPhase.ENDED, call_id="")).call_id == answered.call_id
