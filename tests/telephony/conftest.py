"""Helpers for telephony tests: child processes read line by line with deadlines."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


class LineProcess:
    """A child process whose stdout lines arrive on a queue (no blocking reads)."""

    def __init__(self, args: list[str], **kw: object) -> None:
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kw,  # type: ignore[call-overload]
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self._out = threading.Thread(target=self._pump, daemon=True)
        self._out.start()
        self._err = threading.Thread(target=self._pump_err, daemon=True)
        self._err.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        self.stderr.extend(self.proc.stderr)

    def expect(self, prefix: str, timeout: float = 15.0) -> str:
        """The next line, which must start with *prefix*."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"no {prefix!r} line within {timeout} s; stderr: {''.join(self.stderr)}"
            ) from None
        assert line.startswith(prefix), (line, "".join(self.stderr))
        return line[len(prefix) :].strip()

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None and self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout)
        self._out.join(timeout)
        self._err.join(timeout)
        for stream in (self.proc.stdout, self.proc.stderr, self.proc.stdin):
            if stream is not None and not stream.closed:
                stream.close()
        return code


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


def peer_args(data_dir: Path) -> list[str]:
    return [sys.executable, str(HERE / "ipc_peer.py"), str(data_dir)]
