"""Fixtures for the CLI tests: a demo-seeded data folder, copied fresh per test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import Run, run_cli


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with the demo seeded once; tests work on copies of it."""
    path = tmp_path_factory.mktemp("seeded") / "data"
    result = run_cli("demo", data_dir=path)
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture
def seeded(seeded_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "seeded"
    shutil.copytree(seeded_template, path)
    return path


@pytest.fixture
def cli(seeded: Path) -> Run:
    """``cli(*args)`` runs consentdesk on this test's copy of the seeded folder."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, data_dir=seeded, env=env)

    return run
