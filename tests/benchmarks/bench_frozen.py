"""Frozen (PyInstaller) build: cold start to the first painted sidebar window.

    python -m pytest -m benchmark tests/benchmarks/bench_frozen.py

Builds the one-folder app with packaging/build.py, then starts it 10 times as a
new process under Xvfb (real xcb platform) and 10 times offscreen, each with a
fresh data folder. The sidebar's start-up probe (CONSENTDESK_STARTUP_PROBE)
writes the monotonic time of the window's first paint and the peak memory, then
quits; start time is taken just before the process is spawned. Those runs find the
app's files in the page cache, as on an agent's desktop after the first start of the
day; where the benchmark runs as root it also makes 3 runs with the page cache
dropped first, as after a reboot. Target on a 2-core machine: median <= 1.5 s for
each. Results go to tests/artifacts/bench_frozen.json.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
RUNS = 10
COLD_RUNS = 3
TARGET_S = 1.5
DROP_CACHES = "/proc/sys/vm/drop_caches"


@pytest.fixture(scope="module")
def frozen_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    work = tmp_path_factory.mktemp("work")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "packaging" / "build.py"),
            "app",
            "--dist",
            str(dist),
            "--work",
            str(work),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dist / "consentdesk"


@pytest.fixture(scope="module")
def xvfb_display() -> Iterator[str]:
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is not installed (apt-get install xvfb)")
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    try:
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def start_once(app: Path, tmp: Path, platform_env: dict[str, str]) -> tuple[float, int]:
    """Seconds from spawn to first paint, and peak memory in KiB."""
    probe = tmp / "probe.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONSENTDESK_", "PYTHON"))}
    env.update(platform_env)
    env.update(
        {
            "CONSENTDESK_STARTUP_PROBE": str(probe),
            "CONSENTDESK_DATA_DIR": str(tmp / "data"),
            "CONSENTDESK_SITE_CONFIG": str(tmp / "site.toml"),
            "XDG_CONFIG_HOME": str(tmp / "config"),
            "XDG_STATE_HOME": str(tmp / "state"),
            # Short: the instance socket lives here, and socket paths max out at 108 bytes.
            "XDG_RUNTIME_DIR": tempfile.mkdtemp(prefix="cdrun-"),
        }
    )
    started = time.monotonic()
    result = subprocess.run(
        [str(app / "consentdesk")], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    shutil.rmtree(env["XDG_RUNTIME_DIR"])
    assert result.returncode == 0 and probe.is_file(), result.stdout + result.stderr
    painted, peak_kb = probe.read_text(encoding="utf-8").split()
    return float(painted) - started, int(peak_kb)


def drop_page_cache() -> None:
    """Evict the app's files from memory, as after a reboot (needs root)."""
    os.sync()
    Path(DROP_CACHES).write_text("3\n", encoding="ascii")


def measure(
    app: Path, tmp: Path, platform_env: dict[str, str], *, runs: int = RUNS, cold: bool = False
) -> dict[str, float]:
    seconds, peaks = [], []
    for run in range(runs):
        folder = tmp / f"run{run}"
        folder.mkdir()
        if cold:
            drop_page_cache()
        elapsed, peak = start_once(app, folder, platform_env)
        seconds.append(elapsed)
        peaks.append(peak)
    return {
        "first_s": round(seconds[0], 3),
        "median_s": round(statistics.median(seconds), 3),
        "max_s": round(max(seconds), 3),
        "peak_rss_mib": round(max(peaks) / 1024, 1),
    }


def test_frozen_cold_start_to_first_paint(
    frozen_app: Path, xvfb_display: str, tmp_path: Path
) -> None:
    xcb_dir, offscreen_dir = tmp_path / "xcb", tmp_path / "offscreen"
    xcb_dir.mkdir()
    offscreen_dir.mkdir()
    xcb = measure(frozen_app, xcb_dir, {"QT_QPA_PLATFORM": "xcb", "DISPLAY": xvfb_display})
    offscreen = measure(frozen_app, offscreen_dir, {"QT_QPA_PLATFORM": "offscreen"})
    results: dict[str, object] = {
        "runs": RUNS,
        "target_median_s": TARGET_S,
        "xcb_xvfb": xcb,
        "offscreen": offscreen,
    }
    cold = None
    if os.access(DROP_CACHES, os.W_OK):
        cold_dir = tmp_path / "cold"
        cold_dir.mkdir()
        cold = measure(
            frozen_app,
            cold_dir,
            {"QT_QPA_PLATFORM": "xcb", "DISPLAY": xvfb_display},
            runs=COLD_RUNS,
            cold=True,
        )
        results["xcb_xvfb_page_cache_dropped"] = cold
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "bench_frozen.json").write_text(
        json.dumps(results, indent=2) + "\n", encoding="utf-8"
    )
    print(json.dumps(results, indent=2))
    assert xcb["median_s"] <= TARGET_S
    assert offscreen["median_s"] <= TARGET_S
    if cold is not None:
        assert cold["median_s"] <= TARGET_S
