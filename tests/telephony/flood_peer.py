"""A fake baresip ``ctrl_tcp`` peer that floods its client with call events.

Used in-process by the flood tests and as a child process by the flood
benchmark (so its sending does not compete for the sidebar's interpreter):

    python flood_peer.py --rate 10000 --seconds 60

prints ``port N`` once listening, ``client`` when the sidebar connected (it
then puts the agent on an answered call), ``ready`` once the flood is framed,
waits for a line on stdin, floods,
``flood-done T sent`` (T = wall clock of the last event) when finished, and
exits when stdin closes.

The flood is a retry storm: every event is a new incoming call, and each call
is closed again ``RINGING`` calls later, so about that many ring at once. The
last call of the flood stays ringing: the sidebar must show it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import sys
import threading
import time

RINGING = 50


def netstring(payload: bytes) -> bytes:
    return b"%d:%s," % (len(payload), payload)


def call_message(kind: str, call_id: str, number: str, name: str = "") -> bytes:
    message = {
        "event": True,
        "class": "call",
        "type": kind,
        "accountaor": "sip:agent@127.0.0.1",
        "direction": "incoming",
        "peeruri": f"sip:{number}@127.0.0.1",
        "id": call_id,
        "param": "",
    }
    if name:
        message["peerdisplayname"] = name
    return netstring(json.dumps(message).encode())


def flood_number(i: int) -> str:
    return f"+49301{i % 10_000_000:07d}"


def flood_events(first: int, count: int, *, prefix: str = "flood") -> bytes:
    """Events *first* .. *first+count-1* of the storm, framed, in one buffer."""
    out = bytearray()
    for i in range(first, first + count):
        out += call_message("CALL_INCOMING", f"{prefix}-{i}", flood_number(i))
        if i >= RINGING:
            old = i - RINGING
            out += call_message("CALL_CLOSED", f"{prefix}-{old}", flood_number(old))
    return bytes(out)


class FloodPeer:
    """Listens on loopback; :meth:`client` waits for the connector to connect."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conn: socket.socket | None = None
        self._accepted = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        try:
            self.conn, _ = self.sock.accept()
        except OSError:
            return
        self._accepted.set()

    def client(self, timeout: float = 10.0) -> socket.socket:
        if not self._accepted.wait(timeout) or self.conn is None:
            raise TimeoutError("the connector did not connect")
        return self.conn

    def send(self, data: bytes) -> None:
        self.client().sendall(data)

    def prepare(self, rate: int, seconds: float, *, tick: float = 0.01) -> list[bytes]:
        """The flood's bytes, one chunk per tick of ``rate`` events per second
        (incoming + closing), framed before the clock starts: a PBX encodes on
        its own machine, so this peer spends its share of the CPU on sending."""
        per_tick = max(1, round(rate * tick / 2))  # each call is two events
        ticks = max(1, round(seconds / tick))
        return [flood_events(i * per_tick, per_tick) for i in range(ticks)]

    def flood(self, chunks: list[bytes], *, tick: float = 0.01) -> tuple[float, int]:
        """Send one chunk per tick, then the newest caller; returns (wall clock of
        the last send, events sent)."""
        conn = self.client()
        start = time.monotonic()
        for i, chunk in enumerate(chunks):
            conn.sendall(chunk)
            time.sleep(max(0.0, start + (i + 1) * tick - time.monotonic()))
        conn.sendall(call_message("CALL_INCOMING", "newest", "+4930901820", "Newest Caller"))
        return time.time(), sum(chunk.count(b'"event"') for chunk in chunks) + 1

    def close(self) -> None:
        for sock in (self.conn, self.sock):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    peer = FloodPeer()
    print(f"port {peer.port}", flush=True)
    peer.client(timeout=60)
    print("client", flush=True)
    # The agent is on a call: every flood call waits (the worst case for the bar).
    peer.send(call_message("CALL_ESTABLISHED", "talking", "+4915112345678"))
    chunks = peer.prepare(args.rate, args.seconds)
    print("ready", flush=True)
    # Wait for the go (a line on stdin) so the caller can set up first.
    if not sys.stdin.readline():
        return 0
    done_at, sent = peer.flood(chunks)
    print(f"flood-done {done_at:.6f} {sent}", flush=True)
    sys.stdin.read()  # hold the link until the caller is done
    peer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
