"""Netstring decoding: split reads, several frames per read, hostile framing."""

from __future__ import annotations

import itertools
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentdesk.telephony.netstring import NetstringDecoder, NetstringError, encode


def test_whole_frames_in_one_read() -> None:
    decoder = NetstringDecoder()
    assert decoder.feed(b"5:hello,0:,3:abc,") == [b"hello", b"", b"abc"]
    assert decoder.buffered == 0


def test_frame_split_at_every_byte() -> None:
    stream = encode(b'{"event":true}') + encode(b"x")
    decoder = NetstringDecoder()
    out: list[bytes] = []
    for i in range(len(stream)):
        out += decoder.feed(stream[i : i + 1])
    assert out == [b'{"event":true}', b"x"]


def test_truncated_frame_waits_without_output() -> None:
    decoder = NetstringDecoder()
    assert decoder.feed(b"10:hello") == []
    assert decoder.buffered == len("hello")
    assert decoder.feed(b"world,") == [b"helloworld"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"abc:hello,", "not a decimal"),
        (b":hello,", "not a decimal"),
        (b"5:hello;", "does not end with ','"),
        (b"05:hello,", "leading zero"),
        (b"-1:x,", "not a decimal"),
        (b"1" * 40, "no length header"),
        (b"5x", "not a decimal"),
    ],
)
def test_malformed_framing_raises_and_poisons(data: bytes, reason: str) -> None:
    decoder = NetstringDecoder(max_frame=1000)
    with pytest.raises(NetstringError, match=reason):
        decoder.feed(data)
    # Boundaries are lost: further input is refused until reset, never misread.
    with pytest.raises(NetstringError):
        decoder.feed(b"2:ok,")
    decoder.reset()
    assert decoder.feed(b"2:ok,") == [b"ok"]


def test_oversized_frame_is_skipped_unbuffered_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    decoder = NetstringDecoder(max_frame=16)
    caplog.set_level(logging.WARNING, logger="consentdesk.telephony")
    secret = b"+4915112345678 " * 4
    out = decoder.feed(b"%d:" % len(secret) + secret[:10])
    assert out == []
    assert decoder.buffered == 0  # the oversized payload is not held
    out = decoder.feed(secret[10:] + b",2:ok,")
    assert out == [b"ok"]
    assert decoder.dropped == 1
    assert "exceeds the 16 byte limit" in caplog.text
    assert "4915112345678" not in caplog.text


@pytest.mark.parametrize("size", [1_000_000, 12_345_678])
def test_frame_of_a_million_bytes_is_skipped_and_the_next_frame_delivered(size: int) -> None:
    decoder = NetstringDecoder()  # the connector's default limit (64 KiB)
    event = b'{"event":true,"type":"CALL_INCOMING"}'
    # One read holding the whole oversized frame and a valid frame after it.
    assert decoder.feed(encode(b"x" * size) + encode(event)) == [event]
    assert decoder.dropped == 1 and decoder.buffered == 0
    # The same again, arriving in pieces: never buffered, still in step.
    stream = encode(b"y" * size) + encode(event)
    out: list[bytes] = []
    for i in range(0, len(stream), 65536):
        out += decoder.feed(stream[i : i + 65536])
        assert decoder.buffered <= 65536
    assert out == [event] and decoder.dropped == 2


def test_oversized_frame_without_comma_breaks_stream() -> None:
    decoder = NetstringDecoder(max_frame=4)
    with pytest.raises(NetstringError, match="oversized"):
        decoder.feed(b"6:abcdefX")


def test_length_header_cannot_grow_unbounded() -> None:
    decoder = NetstringDecoder(max_frame=65536)
    with pytest.raises(NetstringError):
        for _ in range(100):
            decoder.feed(b"9")
    assert decoder.buffered == 0


@settings(max_examples=300, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=80), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=10),
)
def test_any_split_of_valid_frames_round_trips(payloads: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(encode(p) for p in payloads)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    decoder = NetstringDecoder(max_frame=100)
    out: list[bytes] = []
    for a, b in itertools.pairwise(points):
        out += decoder.feed(stream[a:b])
    assert out == payloads
    assert decoder.buffered == 0


@settings(max_examples=500, deadline=None)
@given(chunks=st.lists(st.binary(max_size=200), max_size=20))
def test_arbitrary_bytes_never_crash_hang_or_overbuffer(chunks: list[bytes]) -> None:
    decoder = NetstringDecoder(max_frame=64)
    for chunk in chunks:
        try:
            frames = decoder.feed(chunk)
        except NetstringError:
            decoder.reset()
            continue
        assert all(len(f) <= 64 for f in frames)
        # Never more than one frame plus its header and comma waiting.
        assert decoder.buffered <= 64 + 1 + len("64") + 2
