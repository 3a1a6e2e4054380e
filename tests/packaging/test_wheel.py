"""The wheel and sdist carry the resources; the wheel installs and runs non-editable.

Builds both with ``python -m build`` (the command in the README), installs the
wheel into a fresh venv and runs ``demo``, ``status`` and ``serve`` from there,
with the working folder outside the source tree, as IT would.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from consentdesk.stores.demo import DEMO_CALLER

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = ROOT / "resources"


def _source_files() -> dict[str, bytes]:
    return {
        p.relative_to(RESOURCES).as_posix(): p.read_bytes()
        for p in RESOURCES.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("wheel-dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = out.glob("consentdesk-*.whl")
    (sdist,) = out.glob("consentdesk-*.tar.gz")
    return wheel, sdist


def test_wheel_carries_every_resource(built: tuple[Path, Path]) -> None:
    wheel, _ = built
    prefix = "consentdesk/_resources/"
    with zipfile.ZipFile(wheel) as zf:
        carried = {
            name.removeprefix(prefix): zf.read(name)
            for name in zf.namelist()
            if name.startswith(prefix) and not name.endswith("/")
        }
    assert carried == _source_files()


def test_sdist_carries_the_resources_source(built: tuple[Path, Path]) -> None:
    _, sdist = built
    with tarfile.open(sdist) as tf:
        top = tf.getnames()[0].split("/")[0]
        prefix = f"{top}/resources/"
        names = {n.removeprefix(prefix) for n in tf.getnames() if n.startswith(prefix)}
        assert "pyproject.toml" in {n.removeprefix(f"{top}/") for n in tf.getnames()}
    assert set(_source_files()) <= names


@pytest.fixture(scope="module")
def venv(built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel (and the server extra) installed, not editable."""
    wheel, _ = built
    home = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True, timeout=300)
    result = subprocess.run(
        [str(home / "bin" / "python"), "-m", "pip", "install", f"{wheel}[server]"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=_clean_env(),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return home


def _clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "CONSENTDESK_", "VIRTUAL_ENV"))
    }


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def installed(venv: Path, tmp_path: Path) -> Run:
    """Runs the venv's ``consentdesk`` with a cwd outside the repository."""
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {
        **_clean_env(),
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "CONSENTDESK_SITE_CONFIG": str(tmp_path / "site.toml"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(venv / "bin" / "consentdesk"), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
        )

    return run


def test_installed_package_is_not_the_checkout(venv: Path) -> None:
    result = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import consentdesk, consentdesk.domain.resources as r; "
            "print(consentdesk.__file__); print(r.resource_dir())",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=venv,
        env=_clean_env(),
    )
    module, resources = result.stdout.splitlines()
    assert Path(module).is_relative_to(venv) and not Path(module).is_relative_to(ROOT)
    assert Path(resources) == Path(module).parent / "_resources"


def test_installed_demo_and_status(installed: Run, tmp_path: Path) -> None:
    data = str(tmp_path / "ledger")
    demo = installed("--data-dir", data, "demo", "--json")
    assert demo.returncode == 0, demo.stderr
    assert DEMO_CALLER in json.loads(demo.stdout)["subjects"]
    status = installed("--data-dir", data, "status", DEMO_CALLER, "--json")
    assert status.returncode == 0, status.stderr
    body = json.loads(status.stdout)
    assert body["subject"]["number"] == DEMO_CALLER
    assert body["cells"]
    verify = installed("--data-dir", data, "ledger", "verify")
    assert verify.returncode == 0 and verify.stdout.startswith("OK: "), verify.stderr


@pytest.fixture
def served(venv: Path, installed: Run, tmp_path: Path) -> Iterator[str]:
    database = f"sqlite:///{tmp_path / 'team.db'}"
    upgrade = installed("db", "upgrade", "--database", database)
    assert upgrade.returncode == 0, upgrade.stderr
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(venv / "bin" / "consentdesk"), "serve", "--database", database, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        env=_clean_env(),
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        print((tmp_path / "serve.log").read_text(errors="replace")[-2000:])


def test_installed_serve_answers_health(served: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            health = httpx.get(f"{served}/healthz", timeout=2)
            ready = httpx.get(f"{served}/readyz", timeout=2)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the installed server never answered"
            time.sleep(0.2)
    assert health.status_code == 200, health.text
    assert ready.status_code == 200, ready.text
    openapi = httpx.get(f"{served}/v1/openapi.json", timeout=5)
    assert openapi.status_code == 200 and openapi.json()["openapi"].startswith("3.")
