"""Application set-up and the `consentdesk` / `consentdesk sidebar` commands."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, qInstallMessageHandler, qWarning
from PySide6.QtWidgets import QApplication

from consentdesk.gui.app import (
    APP_NAME,
    DisplayUnavailable,
    check_display,
    create_app,
    display_problem,
    install_qt_logging,
)
from consentdesk.gui.main import STARTUP_PROBE_ENV


def run_cli(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consentdesk", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def base_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["CONSENTDESK_DATA_DIR"] = str(data_dir)
    env["XDG_CONFIG_HOME"] = str(data_dir.parent / "xdg-config")
    env.pop("QT_QPA_PLATFORM", None)
    return env


def test_qt_messages_go_to_python_logging(
    qapp: QApplication, caplog: pytest.LogCaptureFixture
) -> None:
    previous = install_qt_logging()
    try:
        with caplog.at_level(logging.DEBUG, logger="consentdesk.qt"):
            qWarning("a test warning from Qt")
    finally:
        qInstallMessageHandler(previous)  # type: ignore[arg-type]
    records = [r for r in caplog.records if r.name == "consentdesk.qt"]
    assert [r.levelno for r in records] == [logging.WARNING]
    assert "a test warning from Qt" in records[0].getMessage()


def test_create_app_names_the_application(qapp: QApplication) -> None:
    app = create_app()
    assert app is qapp
    assert QCoreApplication.applicationName() == APP_NAME
    assert not app.windowIcon().isNull()


def test_display_problems_are_one_clear_line() -> None:
    no_display = display_problem(["could not connect to display ", "xcb failed"])
    assert "no graphical display could be reached" in no_display
    missing = display_problem(
        ['Could not load the Qt platform plugin "xcb" in "" even though it was found.']
    )
    assert "libxcb-cursor0" in missing and "\n" not in missing


def test_check_display_without_any_display(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    if sys.platform.startswith("linux"):
        with pytest.raises(DisplayUnavailable, match="no graphical display"):
            check_display()
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    check_display()  # an explicit platform is the user's choice


def test_no_display_is_a_clear_error_not_a_crash(data_dir: Path) -> None:
    result = run_cli("sidebar", env=base_env(data_dir))
    assert result.returncode == 2
    assert result.stderr.startswith("consentdesk: cannot open the sidebar window")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# The X libraries Qt's xcb platform links against but a minimal system lacks, and
# the Debian/Ubuntu packages that bring them.
XCB_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
}


def missing_xcb_packages() -> list[str]:
    """Packages whose libraries Qt's xcb plugin cannot find here (ldd says "not found")."""
    import shutil

    import PySide6

    qt = Path(PySide6.__file__).parent / "Qt"
    binaries = [qt / "plugins" / "platforms" / "libqxcb.so", *qt.glob("lib/libQt6XcbQpa.so*")]
    if shutil.which("ldd") is None or not binaries[0].exists():
        return []
    missing: set[str] = set()
    for binary in binaries:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
        for line in out.stdout.splitlines():
            if "not found" in line:
                lib = line.split("=>")[0].strip()
                missing.add(XCB_PACKAGES.get(lib, lib))
    return sorted(missing)


def test_unreachable_x_display_is_a_clear_error(data_dir: Path) -> None:
    missing = missing_xcb_packages()
    if missing and os.environ.get("CI"):
        pytest.fail(f"CI must provide the X libraries: install {', '.join(missing)}")
    env = base_env(data_dir) | {"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":987"}
    result = run_cli(env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "Aborted" not in result.stderr
    if missing:
        # Without its libraries Qt cannot even try the display: the one clear line
        # names what to install instead (the README promises this on a fresh machine).
        assert "cannot open the sidebar window" in result.stderr
        assert any(package in result.stderr for package in missing), result.stderr
        pytest.skip(f"X libraries missing, so no display was tried: install {missing}")
    assert "no graphical display could be reached" in result.stderr


def test_bad_caller_number_is_a_usage_error(data_dir: Path) -> None:
    env = base_env(data_dir) | {"QT_QPA_PLATFORM": "offscreen"}
    result = run_cli("sidebar", "--caller", "not a number", env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("consentdesk: --caller: ")
    assert "Traceback" not in result.stderr


def test_sidebar_command_is_listed_with_its_options(data_dir: Path) -> None:
    env = base_env(data_dir)
    assert "sidebar" in run_cli("--help", env=env).stdout
    help_text = run_cli("sidebar", "--help", env=env).stdout
    assert "--caller NUMBER" in help_text and "--baresip" in help_text


@pytest.mark.parametrize("extra", [[], ["sidebar", "--caller", "0151 1234 5678"]])
def test_the_real_launch_paints_a_window(data_dir: Path, tmp_path: Path, extra: list[str]) -> None:
    """Plain `consentdesk` and `consentdesk sidebar --caller`: the whole start-up path
    (single instance, telephony, worker) up to the first painted frame."""
    probe = tmp_path / "painted.txt"
    env = base_env(data_dir) | {"QT_QPA_PLATFORM": "offscreen", STARTUP_PROBE_ENV: str(probe)}
    result = run_cli(*extra, env=env)
    assert result.returncode == 0, result.stderr
    painted, at_paint_kb, ledger_open_kb = probe.read_text().split()
    assert float(painted) > 0 and 0 < int(at_paint_kb) <= int(ledger_open_kb)
    assert (data_dir / "ledger.sqlite3").exists() or any(data_dir.iterdir()), "ledger opened"
