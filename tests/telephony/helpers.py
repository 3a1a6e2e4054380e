"""Helpers for telephony tests and the screen-pop benchmark: child processes read
line by line with deadlines, and a real sidebar (D's) wired as ``consentdesk`` wires it."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent

# Hand-off sockets, spools and instance locks of test sidebars live in a private
# runtime folder (mkdtemp makes it 0700), never the user's; children inherit it.
if not os.environ.get("XDG_RUNTIME_DIR", "").startswith(tempfile.gettempdir() + "/cd-rt-"):
    os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="cd-rt-")

# What the offscreen platform cannot do for a real window; not our warnings.
OFFSCREEN_LIMITS = pytest.mark.qt_log_ignore(
    r"This plugin does not support (propagateSizeHints|raise|requestActivate)\(\)"
)


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
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
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


def peer_args(data_dir: Path) -> list[str]:
    return [sys.executable, str(HERE / "ipc_peer.py"), str(data_dir)]


# --- a real sidebar (D's), wired the way gui.main.run_sidebar wires it --------------


@dataclass
class RunningSidebar:
    sidebar: Any  # consentdesk.gui.main.Sidebar
    telephony: Any  # consentdesk.gui.telephony_glue.Telephony
    ctx: Any  # consentdesk.cli.common.Context
    routed: list[Any]

    @property
    def calls(self) -> Any:
        return self.sidebar.calls

    @property
    def panel(self) -> Any:
        return self.sidebar.window.panel


def write_config(path: Path, **sections: dict[str, object]) -> Path:
    lines = []
    for section, body in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in body.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def seeded_data_dir(path: Path) -> Path:
    from consentdesk.stores.demo import seed
    from consentdesk.stores.ledger import open_ledger

    ledger = open_ledger(path)
    try:
        seed(ledger, region="DE")
    finally:
        ledger.close()
    return path


def default_config(path: Path) -> Path:
    return write_config(
        path,
        general={"agent": "agent-7", "agent_name": "Alex Seven", "region": "DE"},
        sidebar={"clear_after_seconds": 0},
    )


class SidebarStarter:
    """Starts real sidebars on one seeded data folder; :meth:`close` shuts them all."""

    def __init__(self, qtbot: Any, data_dir: Path, config_file: Path) -> None:
        self.qtbot = qtbot
        self.data_dir = seeded_data_dir(data_dir)
        self.config_file = config_file
        self.started: list[RunningSidebar] = []

    def __call__(self, *, baresip: str | None = None) -> RunningSidebar:
        from consentdesk.gui.ipc import claim_instance
        from consentdesk.gui.main import build_sidebar
        from consentdesk.gui.telephony_glue import attach_telephony
        from consentdesk.platform.config import Config
        from consentdesk.platform.context import Context

        qtbot, data_dir = self.qtbot, self.data_dir
        config = Config.load(user_file=self.config_file, site_files=[])
        ctx = Context(config=config, data_dir=data_dir)
        args = argparse.Namespace()
        if baresip is not None:
            args.baresip = baresip
        server = claim_instance(data_dir)
        assert server is not None, "another sidebar holds this data folder"
        sidebar = build_sidebar(ctx)
        telephony = attach_telephony(sidebar.calls, ctx, args, server=server, tasks=sidebar.runner)
        sidebar.cleanups.append(telephony.stop)
        server.show_requested.connect(sidebar.window.bring_forward)
        sidebar.window.panel.captured.connect(
            lambda outcome: [
                telephony.note_capture(event.call_id, event.event_id) for event in outcome.events
            ]
        )
        routed: list[Any] = []
        telephony.event_routed.connect(routed.append)
        qtbot.addWidget(sidebar.window)
        sidebar.window.show()
        sidebar.desk.load()
        qtbot.waitUntil(lambda: sidebar.desk.loaded, timeout=15_000)
        running = RunningSidebar(sidebar, telephony, ctx, routed)
        self.started.append(running)
        return running

    def close(self) -> None:
        for running in self.started:
            running.sidebar.shutdown()
        self.started.clear()
