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


# --- Qt itself ---------------------------------------------------------------------
# The sidebar's tests need Qt's widgets, and Qt loads system libraries (EGL, GL,
# fontconfig, xkbcommon, ...) that a machine with only python3 may lack. There the
# tests that need Qt are skipped with the package to install, and pytest-qt (which
# loads Qt as it starts) is switched off; in CI a missing library fails the run.

QT_LIBRARY_PACKAGES = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
    "libX11.so.6": "libx11-6",
    "libxcb.so.1": "libxcb1",
}


def _qt_error() -> ImportError | None:
    try:
        import PySide6.QtWidgets  # noqa: F401
    except ImportError as exc:
        return exc
    return None


def qt_problem(error: ImportError) -> str:
    """One line: why Qt cannot load, and the Debian/Ubuntu package that fixes it."""
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    library = first.split(":", 1)[0].strip()
    package = QT_LIBRARY_PACKAGES.get(library)
    fix = f"apt-get install {package}" if package else "install the library it names"
    return f"Qt cannot load here ({first}); {fix}"


_QT_ERROR = _qt_error()
_QT_DIRS_NOT_RUN: list[Path] = []


def _off_without_qt() -> bool:
    return _QT_ERROR is not None and not os.environ.get("CI")


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    if _off_without_qt():
        plugin = pluginmanager.get_plugin("pytest-qt")
        if plugin is not None:
            pluginmanager.unregister(plugin)


def pytest_configure(config: pytest.Config) -> None:
    if _off_without_qt():  # pytest-qt's markers, still used by modules that need no Qt
        for marker in ("qt_no_exception_capture", "qt_log_level_fail", "qt_log_ignore"):
            config.addinivalue_line("markers", f"{marker}: pytest-qt (off: Qt cannot load)")
        config.addinivalue_line("markers", "no_qt_log: pytest-qt (off: Qt cannot load)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _QT_ERROR is None or not _off_without_qt():
        return
    skip = pytest.mark.skip(reason=qt_problem(_QT_ERROR))
    for item in items:
        uses_qt = {"qtbot", "qapp"} & set(getattr(item, "fixturenames", ()))
        if uses_qt or item.get_closest_marker("qt"):
            item.add_marker(skip)


def _imports_qt(path: Path) -> bool:
    import re

    text = path.read_text(encoding="utf-8", errors="replace")
    return bool(re.search(r"^(from|import) (PySide6|pytestqt|consentdesk\.gui)\b", text, re.M))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A test folder whose conftest needs Qt is not entered (it could not load)."""
    conftest = collection_path / "conftest.py"
    if (
        _off_without_qt()
        and collection_path.is_dir()
        and conftest.exists()
        and _imports_qt(conftest)
    ):
        _QT_DIRS_NOT_RUN.append(collection_path)
        return True
    return None


class _QtModule(pytest.Module):
    """A test module that is skipped (not an error) when it fails to import for want
    of Qt's libraries."""

    def _getobj(self) -> object:
        try:
            return super()._getobj()
        except self.CollectError as exc:
            cause = exc.__cause__
            if (
                _QT_ERROR is not None
                and isinstance(cause, ImportError)
                and str(cause) == str(_QT_ERROR)
            ):
                pytest.skip(qt_problem(_QT_ERROR), allow_module_level=True)
            raise


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> object:
    if _off_without_qt():
        return _QtModule.from_parent(parent, path=module_path)
    return None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _QT_ERROR is not None and _QT_DIRS_NOT_RUN:
        where = ", ".join(str(p.relative_to(Path.cwd())) for p in _QT_DIRS_NOT_RUN)
        terminalreporter.write_line(f"SKIPPED {where}: {qt_problem(_QT_ERROR)}", yellow=True)
