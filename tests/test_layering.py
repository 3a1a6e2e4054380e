"""The Qt-free layers (core, server, telephony) import and work without PySide6."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import consentdesk

PACKAGE_DIR = Path(consentdesk.__file__).resolve().parent
QT_FREE = ("core", "server", "telephony")
QT_MODULES = ("PySide6", "shiboken6")

# Run in a fresh interpreter where any attempt to import Qt raises ImportError,
# exactly as on a machine without PySide6 installed.
_BLOCKED_IMPORT = textwrap.dedent(
    """
    import importlib, sys

    class NoQt:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"PySide6", "shiboken6"}:
                raise ImportError(f"{name} is blocked for this test")
            return None

    sys.meta_path.insert(0, NoQt())
    failed = []
    for name in sys.argv[1:]:
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"PySide6", "shiboken6"})
    print("\\n".join(failed + [f"loaded {m}" for m in loaded]))
    sys.exit(1 if failed or loaded else 0)
    """
)


def modules_of(package: str) -> list[str]:
    root = PACKAGE_DIR / package
    names = []
    for path in sorted(root.rglob("*.py")):
        if path.parent.name == "migrations" and path.name == "env.py":
            continue  # Alembic's environment script only runs inside Alembic
        parts = path.relative_to(PACKAGE_DIR).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(("consentdesk", *parts)))
    return names


@pytest.mark.parametrize("package", QT_FREE)
def test_package_imports_with_pyside6_absent(package: str) -> None:
    assert (PACKAGE_DIR / package / "__init__.py").is_file(), f"consentdesk.{package} is missing"
    names = modules_of(package)
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKED_IMPORT, *names],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _qt_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0]
            if called in {"import_module", "__import__"} and isinstance(arg, ast.Constant):
                names = [str(arg.value)]
        found += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in QT_MODULES]
    return found


@pytest.mark.parametrize("package", QT_FREE)
def test_package_source_never_imports_qt(package: str) -> None:
    files = sorted((PACKAGE_DIR / package).rglob("*.py"))
    assert files, f"consentdesk.{package} has no modules"
    offenders = [hit for path in files for hit in _qt_imports(path)]
    assert offenders == []


def test_the_checker_sees_a_qt_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import importlib\nfrom PySide6 import QtCore\nimportlib.import_module('shiboken6')\n",
        encoding="utf-8",
    )
    assert _qt_imports(sample) == ["sample.py:2 PySide6", "sample.py:3 shiboken6"]


def test_the_blocker_blocks_pyside6() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKED_IMPORT, "PySide6.QtCore"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "PySide6.QtCore: ImportError" in result.stdout
