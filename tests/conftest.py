"""Test-wide isolation: no real user config, data or keyring is ever touched."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

_ISOLATED = Path(tempfile.mkdtemp(prefix="consentdesk-tests-"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
for var in (
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "XDG_CACHE_HOME",
    "XDG_RUNTIME_DIR",  # sidebars' single-instance sockets
):
    os.environ[var] = str(_ISOLATED / var.lower())
    (_ISOLATED / var.lower()).mkdir(mode=0o700)
os.environ["CONSENTDESK_SITE_CONFIG"] = str(_ISOLATED / "site-config.toml")
os.environ.pop("CONSENTDESK_DATA_DIR", None)
os.environ.pop("CONSENTDESK_TOKEN", None)


class MemoryKeyring(KeyringBackend):
    """In-memory keyring: headless Linux has no OS keyring backend."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


@pytest.fixture(autouse=True)
def memory_keyring() -> MemoryKeyring:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    return backend


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


# --- real system components ------------------------------------------------------
# Tests marked xvfb / softphone / postgres drive real programs. On a developer's
# machine without them they are skipped with the package to install; in CI (CI=true,
# where .ci/run installs everything) a missing one fails the run instead.

_NEEDS = {
    "xvfb": (("Xvfb",), "Debian package xvfb"),
    "softphone": (("baresip", "sipp"), "Debian packages baresip-core and sip-tester"),
}


def _postgres_up() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def pytest_runtest_setup(item: pytest.Item) -> None:
    import shutil

    missing: list[str] = []
    for marker, (programs, package) in _NEEDS.items():
        if item.get_closest_marker(marker):
            absent = [p for p in programs if shutil.which(p) is None]
            if absent:
                missing.append(f"{', '.join(absent)} not installed ({package})")
    if item.get_closest_marker("postgres") and not _postgres_up():
        missing.append("PostgreSQL is not listening on 127.0.0.1:5432")
    if missing:
        reason = "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide this: {reason}", pytrace=False)
        pytest.skip(reason)
