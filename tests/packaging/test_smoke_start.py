"""``consentdesk --smoke`` from the source tree (the frozen build runs it in test_frozen_build)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def smoke(env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consentdesk", "--smoke"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.qt
def test_smoke_paints_the_sidebar_with_the_demo_caller(tmp_path: Path) -> None:
    data = tmp_path / "user-data"
    result = smoke({"CONSENTDESK_DATA_DIR": str(data)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("smoke ok: sidebar painted after ")
    assert "demo caller shown" in result.stdout
    # The user's own ledger is never touched.
    assert not data.exists()


def test_smoke_failure_is_one_line_and_non_zero(tmp_path: Path) -> None:
    result = smoke({"CONSENTDESK_RESOURCES": str(tmp_path)})
    assert result.returncode != 0
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.startswith("consentdesk:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr
