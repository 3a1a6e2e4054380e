"""The real window on a real X server (Xvfb, xcb platform), with a demo caller:
the screenshot in the README comes from here (packaging/screenshots/sidebar.png)."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

pytestmark = pytest.mark.xvfb

ROOT = Path(__file__).resolve().parents[2]
DOCS_SHOT = ROOT / "packaging" / "screenshots" / "sidebar.png"
FORM_SHOT = ROOT / "packaging" / "screenshots" / "sidebar-consent-form.png"
ARTIFACTS = ROOT / "tests" / "artifacts"
HELPER = Path(__file__).with_name("sidebar_screenshot.py")
FORM_HELPER = Path(__file__).with_name("sidebar_form_screenshot.py")
START_DEADLINE = 20.0


@pytest.fixture
def xvfb() -> Iterator[str]:
    """A private Xvfb with a 1920×1080 screen."""
    with _xvfb("1920x1080x24") as display:
        yield display


@pytest.fixture
def xvfb_1366() -> Iterator[str]:
    """A private Xvfb with a 1366×768 screen (the smallest the sidebar is made for)."""
    with _xvfb("1366x768x24") as display:
        yield display


@contextmanager
def _xvfb(screen: str) -> Iterator[str]:
    """A private Xvfb; it names its own free display (-displayfd), read with a deadline."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is not installed (Debian: apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", screen, "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        number = b""
        deadline = time.monotonic() + START_DEADLINE
        while not number.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([read_fd], [], [], max(left, 0))
            if not ready:
                pytest.fail(f"Xvfb did not report a display within {START_DEADLINE:.0f} s")
            chunk = os.read(read_fd, 16)
            if not chunk:
                pytest.fail(f"Xvfb exited early with code {proc.wait()}")
            number += chunk
        yield f":{number.decode().strip()}"
    finally:
        os.close(read_fd)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _env(display: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb", CONSENTDESK_DATA_DIR=str(data_dir))
    # A fresh settings folder: no window place remembered from other tests.
    env["XDG_CONFIG_HOME"] = str(data_dir.parent / "xdg-config")
    env.update(extra)
    return env


def _shoot(
    display: str, data_dir: Path, config: Path, out: Path, helper: Path = HELPER, **extra: str
) -> dict[str, object]:
    report = out.with_suffix(".json")
    result = subprocess.run(
        [sys.executable, str(helper), str(data_dir), str(config), str(out), str(report)],
        env=_env(display, data_dir, **extra),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _distinct_colours(image: QImage) -> int:
    step = max(1, image.width() // 40)
    return len(
        {
            image.pixel(x, y)
            for x in range(0, image.width(), step)
            for y in range(0, image.height(), step)
        }
    )


def test_real_window_with_a_demo_caller(xvfb: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    seeded = subprocess.run(
        [sys.executable, "-m", "consentdesk", "--data-dir", str(data_dir), "demo"],
        env=_env(xvfb, data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert seeded.returncode == 0, seeded.stderr
    config = tmp_path / "config.toml"
    config.write_text(
        '[general]\nagent = "a.meyer"\nagent_name = "Andrea Meyer"\n', encoding="utf-8"
    )

    shot = tmp_path / "sidebar.png"
    report = _shoot(xvfb, data_dir, config, shot)
    assert report["platform"] == "xcb"
    assert report["name"] == "Anna Schmidt"
    assert report["body_fits"] is True
    assert report["grid_rows"] and report["history_rows"] and report["requests"]
    window = report["window"]
    assert isinstance(window, list)
    assert window[2] == 380 and window[3] == 1080, "full height, 380 px wide"
    image = QImage(str(shot))
    assert (image.width(), image.height()) == (380, 1080)
    assert _distinct_colours(image) > 20, "the grab shows the painted window, not a blank"
    DOCS_SHOT.parent.mkdir(exist_ok=True)
    shutil.copyfile(shot, DOCS_SHOT)

    # 200 % scaling: the logical screen is 960 x 540; the sidebar still fits its width.
    big = tmp_path / "sidebar-200.png"
    report = _shoot(xvfb, data_dir, config, big, QT_SCALE_FACTOR="2")
    assert report["ratio"] == 2.0
    assert report["body_fits"] is True
    window = report["window"]
    assert isinstance(window, list) and window[2] == 380 and window[3] == 540
    image = QImage(str(big))
    assert (image.width(), image.height()) == (760, 1080)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(big, ARTIFACTS / "screenshot-sidebar-200pct.png")


def _demo(display: str, tmp_path: Path) -> tuple[Path, Path]:
    """A demo ledger and an agent config, made by the real commands."""
    data_dir = tmp_path / "data"
    seeded = subprocess.run(
        [sys.executable, "-m", "consentdesk", "--data-dir", str(data_dir), "demo"],
        env=_env(display, data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert seeded.returncode == 0, seeded.stderr
    config = tmp_path / "config.toml"
    config.write_text(
        '[general]\nagent = "a.meyer"\nagent_name = "Andrea Meyer"\n', encoding="utf-8"
    )
    return data_dir, config


def test_a_consent_form_fits_a_1366x768_screen(xvfb_1366: str, tmp_path: Path) -> None:
    data_dir, config = _demo(xvfb_1366, tmp_path)
    shot = tmp_path / "sidebar-consent-form.png"
    report = _shoot(xvfb_1366, data_dir, config, shot, helper=FORM_HELPER)
    assert report["platform"] == "xcb" and report["screen"] == [1366, 768]
    assert report["script"] == "consent-general"
    window = report["window"]
    assert isinstance(window, list) and window[2] == 380 and window[3] == 768
    # The whole script, the read-aloud tick and the answers on screen, no scrolling.
    assert report["seen_all"] is True and report["script_scrolls"] is False
    assert report["tick_shown"] is True and report["answers_shown"] is True
    image = QImage(str(shot))
    assert (image.width(), image.height()) == (380, 768)
    assert _distinct_colours(image) > 20, "the grab shows the painted window, not a blank"
    FORM_SHOT.parent.mkdir(exist_ok=True)
    shutil.copyfile(shot, FORM_SHOT)
