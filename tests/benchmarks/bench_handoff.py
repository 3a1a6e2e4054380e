"""Hand-off benchmark: ``consentdesk call`` / ``open-uri`` to a running sidebar.

    python -m pytest -m benchmark tests/benchmarks/bench_handoff.py

The sidebar is ``consentdesk`` in its own process (offscreen platform, demo
ledger). The command is run through a copy of the console script pip installs,
alternating with a bare ``python -c pass`` in the same run, HANDOFFS times
each: time until the command exited, acknowledged by the sidebar. Hand-offs
are SETTLE_S apart (a softphone does not pop two calls within milliseconds):
each one meets a sidebar that has finished showing the previous caller.
Targets (issue #16): p95 <= 80 ms and p95 <= 5x the median ``python -c pass``.

Results go to tests/artifacts/bench_handoff.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sidebar_process import HandoffCommand, SidebarProcess

from consentdesk.telephony.handoff import InstancePaths
from telephony.helpers import seeded_data_dir, write_config

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
HANDOFFS = int(os.environ.get("CONSENTDESK_HANDOFF_RUNS", "60"))
P95_MS = 80.0
RATIO = 5.0
SETTLE_S = 0.3


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def bare_ms() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return (time.perf_counter() - start) * 1000


def test_hand_off_to_a_running_sidebar(tmp_path: Path) -> None:
    data_dir = seeded_data_dir(tmp_path / "data")
    config = write_config(
        tmp_path / "config.toml",
        general={"agent": "agent-7", "region": "DE"},
        sidebar={"clear_after_seconds": 0},
    )
    sidebar = SidebarProcess(data_dir, config)
    try:
        command = HandoffCommand(tmp_path, data_dir, config)
        command.wait_until_acknowledged(Path(InstancePaths.for_data_dir(data_dir).server_name))
        bare: list[float] = []
        call: list[float] = []
        uri: list[float] = []
        for i in range(HANDOFFS):
            bare.append(bare_ms())
            ms, result = command.run("call", "0151 1234 5678", "--call-id", f"b-{i}")
            assert result.returncode == 0, result.stderr
            call.append(ms)
            time.sleep(SETTLE_S)
            ms, result = command.run(
                "open-uri", f"consentdesk://call?number=%2B4930901820&id=u-{i}&event=incoming"
            )
            assert result.returncode == 0, result.stderr
            uri.append(ms)
            for call_id in (f"b-{i}", f"u-{i}"):
                command.run("call", "+4930901820", "--call-id", call_id, "--event", "ended")
            time.sleep(SETTLE_S)
    finally:
        sidebar.stop()

    base = statistics.median(bare)
    rows = {
        "python -c pass": bare,
        "consentdesk call": call,
        "consentdesk open-uri": uri,
    }
    figures: dict[str, dict[str, float]] = {}
    print()
    print(f"{'command':22} {'p50 ms':>8} {'p95 ms':>8} {'p95/base':>9}   target")
    for name, values in rows.items():
        p50, p95 = statistics.median(values), pct(values, 95)
        figures[name] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1)}
        target = "baseline" if name.startswith("python") else f"p95 <= {P95_MS:.0f} ms, <= 5x"
        print(f"{name:22} {p50:8.1f} {p95:8.1f} {p95 / base:9.2f}   {target}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "bench_handoff.json").write_text(json.dumps(figures, indent=2) + "\n")
    for values in (call, uri):
        assert pct(values, 95) <= P95_MS
        assert pct(values, 95) <= RATIO * base
