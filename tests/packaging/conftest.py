"""Fixtures for the packaging group: the builder script, the frozen app and the .deb.

Each is built once per session by the same one command a person runs
(``packaging/build.py``), into a temporary folder.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "packaging" / "build.py"


def load_packaging_module(name: str) -> ModuleType:
    """A script under packaging/ as a module (that folder is not a package)."""
    path = ROOT / "packaging" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"consentdesk_packaging_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_build(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="session")
def builder() -> ModuleType:
    return load_packaging_module("build")


@pytest.fixture(scope="session")
def managed_config() -> ModuleType:
    return load_packaging_module("managed_config")


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dist")


@pytest.fixture(scope="session")
def frozen_app(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("pyinstaller-work")
    run_build("app", "--dist", str(dist), "--work", str(work))
    return dist / "consentdesk"


@pytest.fixture(scope="session")
def deb_file(frozen_app: Path, dist: Path) -> Path:
    run_build("deb", "--app", str(frozen_app), "--dist", str(dist))
    (deb,) = dist.glob("consentdesk_*.deb")
    return deb


@pytest.fixture(scope="session")
def installed_root(deb_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .deb's files unpacked into a throwaway root, as dpkg would lay them out."""
    root = tmp_path_factory.mktemp("root")
    subprocess.run(["dpkg-deb", "-x", str(deb_file), str(root)], check=True, timeout=300)
    return root


RunApp = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def app_environment(tmp_path: Path) -> dict[str, str]:
    """Environment for running a built binary: isolated folders, offscreen Qt."""
    tmp = tmp_path
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CONSENTDESK_", "PYTHON", "QT_"))
    }
    env.update(
        {
            "HOME": str(tmp / "home"),
            "XDG_CONFIG_HOME": str(tmp / "config"),
            "XDG_DATA_HOME": str(tmp / "data"),
            "XDG_STATE_HOME": str(tmp / "state"),
            "XDG_CACHE_HOME": str(tmp / "cache"),
            "CONSENTDESK_SITE_CONFIG": str(tmp / "site.toml"),
            "QT_QPA_PLATFORM": "offscreen",
        }
    )
    return env


@pytest.fixture
def run_app(app_environment: dict[str, str]) -> RunApp:
    """Runs a built binary with :func:`app_environment`; returns the result."""

    def run(*cmd: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(c) for c in cmd],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=app_environment,
        )

    return run
