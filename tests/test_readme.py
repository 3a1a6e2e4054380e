"""The README's promises: two copy-paste commands that work, CI runs the test one,
and the documented settings and commands are the real ones."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from consentdesk.cli import build_parser
from consentdesk.platform.config import SETTINGS
from consentdesk.stores.demo import DEMO_CALLER

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def quick_start() -> list[str]:
    section = README.split("## Try it", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, flags=re.DOTALL)


def test_exactly_two_one_line_commands_each_with_its_own_venv() -> None:
    commands = quick_start()
    assert len(commands) == 2
    for command in commands:
        assert "\n" not in command
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install -e ")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    test_command = quick_start()[1]
    assert "pytest" in test_command
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()
    assert ci.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in ci


def test_ci_runs_the_linters_and_type_checker() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for tool in ("ruff check app tests", "ruff format --check app tests", "mypy"):
        assert tool in ci


@pytest.mark.qt
def test_the_main_command_works(tmp_path: Path) -> None:
    """Run the first command's consentdesk steps with this interpreter, in a scratch folder:
    the demo seeds, the sidebar starts on the demo caller and stays up, and the
    terminal view the README offers shows the same caller."""
    steps = quick_start()[0].split(" && ")
    consentdesk = [shlex.split(s)[1:] for s in steps if s.startswith(".venv/bin/consentdesk ")]
    *setup, sidebar = consentdesk
    assert "sidebar" in sidebar and sidebar[-1] == DEMO_CALLER
    for argv in setup:
        result = run_cli(argv, tmp_path)
        assert result.returncode == 0, result.stderr
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "consentdesk", *sidebar],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # A start that fails exits at once with one line; a working one runs until closed.
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=8)
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert "Traceback" not in stderr
    status = run_cli([*sidebar[: sidebar.index("sidebar")], "status", DEMO_CALLER], tmp_path)
    assert status.returncode == 0, status.stderr
    assert "Anna Schmidt" in status.stdout
    assert "Open privacy requests" in status.stdout


def run_cli(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consentdesk", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_setting_is_documented() -> None:
    missing = [s.key for s in SETTINGS if f"| `{s.key}` |" not in README]
    assert missing == []


def _subcommands(parser: object) -> dict[str, object]:
    for action in getattr(parser, "_actions", []):
        if hasattr(action, "choices") and isinstance(action.choices, dict):
            return dict(action.choices)
    return {}


@pytest.mark.parametrize(
    "command",
    sorted(set(re.findall(r"^\| `consentdesk ([a-z-]+(?: [a-z-]+)?)", README, re.MULTILINE))),
)
def test_documented_commands_exist(command: str) -> None:
    parser: object = build_parser()
    for word in command.split():
        commands = _subcommands(parser)
        assert word in commands, f"consentdesk {command}: no such command"
        parser = commands[word]
