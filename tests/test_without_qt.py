"""The README's test command on a machine where Qt cannot load (only python3, no
EGL/GL/X libraries): what needs Qt is skipped with the package to install, the rest
runs; with CI=true the run fails instead. Qt's absence is simulated by a PySide6
that fails to import the way a missing system library makes it fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MISSING = "libEGL.so.1: cannot open shared object file: No such file or directory"


def run_pytest(tmp_path: Path, *args: str, ci: bool = False) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "no-qt" / "PySide6"
    fake.mkdir(parents=True, exist_ok=True)
    (fake / "__init__.py").write_text(f"raise ImportError({MISSING!r})\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(fake.parent), str(ROOT / "app")])
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_qt_the_qt_tests_are_skipped_with_the_package_to_install(
    tmp_path: Path,
) -> None:
    # The folder tests/gui (its conftest needs Qt), a module that imports Qt, tests
    # that use qtbot, and tests that need none of it.
    result = run_pytest(
        tmp_path,
        "tests",
        *(f"--ignore=tests/{d}" for d in ("server", "core", "cli", "review", "packaging")),
        "--ignore=tests/benchmarks",
        "--deselect=tests/test_without_qt.py",
        "-k",
        "test_sidebar or test_cli or test_glue or test_layering",
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-2000:]
    assert "SKIPPED tests/gui: Qt cannot load here" in out
    assert "apt-get install libegl1" in out
    assert " passed" in out and " skipped" in out  # what needs no Qt still ran


def test_in_ci_a_missing_qt_fails_the_run(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "tests/test_layering.py", ci=True)
    assert result.returncode != 0
    assert "libEGL.so.1" in result.stdout + result.stderr
