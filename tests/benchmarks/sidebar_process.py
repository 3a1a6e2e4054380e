"""A real sidebar process and the hand-off command as a user runs them (benchmarks).

The sidebar is ``consentdesk`` itself (``cli.main``) on the offscreen platform,
started through a launcher that only adds an observer: when the call bar
first lists a caller named ``WATCH_NAME`` it prints ``shown <wall clock>``.
The hand-off client is run through a copy of the console-script wrapper pip
installs (``consentdesk call …``), so its start-up is what a softphone pays.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
APP = TESTS.parent / "app"

# What pip writes as bin/consentdesk for ``consentdesk = "consentdesk.cli:main"``.
CONSOLE_SCRIPT = """\
import re
import sys
from consentdesk.cli import main
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(main())
"""

LAUNCHER = """\
import sys, time
from consentdesk.gui import call_bar

WATCH_NAME = sys.argv[1]
_render = call_bar.WaitingBar.render
_seen = []

def render(self):
    _render(self)
    if not _seen and any(
        row.isVisible() and WATCH_NAME in row.label.text() for row in self._rows
    ):
        _seen.append(time.time())
        print(f"shown {_seen[0]:.6f}", flush=True)

call_bar.WaitingBar.render = render
from consentdesk.cli import main
sys.exit(main(sys.argv[2:]))
"""


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(APP), env.get("PYTHONPATH", "")] if p)
    return env


def peak_and_current_rss_kib(pid: int) -> tuple[int, int]:
    """(VmHWM, VmRSS) of *pid* in KiB, from /proc."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                fields[key] = int(value.split()[0])
    return fields["VmHWM"], fields["VmRSS"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time *pid* has used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SidebarProcess:
    """``consentdesk --data-dir D --config C`` in its own process; lines on a queue."""

    def __init__(
        self, data_dir: Path, config: Path, *, watch_name: str = "(no caller watched)"
    ) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                LAUNCHER,
                watch_name,
                "--data-dir",
                str(data_dir),
                "--config",
                str(config),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        self.stderr.extend(self.proc.stderr)

    def wait_line(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                if left <= 0:
                    raise AssertionError(
                        f"sidebar printed no {prefix!r} within {timeout} s; "
                        f"stderr: {''.join(self.stderr)[-2000:]}"
                    ) from None
                continue
            if line.startswith(prefix):
                return line[len(prefix) :].strip()

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def rss(self) -> tuple[int, int]:
        return peak_and_current_rss_kib(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class HandoffCommand:
    """Runs ``consentdesk [--data-dir D --config C] ARGS…`` as the installed script would."""

    def __init__(self, workdir: Path, data_dir: Path, config: Path) -> None:
        self.script = workdir / "consentdesk"
        self.script.write_text(CONSOLE_SCRIPT, encoding="utf-8")
        self.base = [sys.executable, str(self.script), "--data-dir", str(data_dir)]
        self.base += ["--config", str(config)]
        self.env = child_env()

    def run(self, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
        """(milliseconds until it exited, result)."""
        start = time.perf_counter()
        result = subprocess.run(
            [*self.base, *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=30,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        return (time.perf_counter() - start) * 1000, result

    def wait_until_acknowledged(self, socket_path: Path, timeout: float = 60.0) -> None:
        """Wait for the sidebar's hand-off socket, then until it answers a hand-off.

        Never hands off before the socket exists: that would start a second sidebar.
        """
        deadline = time.monotonic() + timeout
        while not socket_path.exists():
            if time.monotonic() > deadline:
                raise AssertionError("the sidebar never listened for hand-offs")
            time.sleep(0.1)
        while True:
            _ms, result = self.run("call", "+4930901820", "--call-id", "warm-up")
            if result.returncode == 0:
                self.run("call", "+4930901820", "--call-id", "warm-up", "--event", "ended")
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"no sidebar answered: {result.stderr}")
            time.sleep(0.2)


def baseline_ms(runs: int = 1) -> float:
    """Wall time of one bare ``python -c pass``."""
    start = time.perf_counter()
    for _ in range(runs):
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    return (time.perf_counter() - start) * 1000 / runs
