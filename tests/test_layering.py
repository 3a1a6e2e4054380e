"""The package's layers, checked from the source.

- ``domain`` is the legal kernel: it imports nothing of ours outside itself.
- ``stores`` (embedded ledger, HTTP client and outbox) and ``platform``
  (settings, policy, secrets, logging) are adapters on the kernel.
- ``server`` stands on the kernel and the platform, never on desk adapters.
- ``telephony`` knows calls, not stores or UI.
- ``gui`` is the only place that builds UI and never imports the CLI.
- Nothing but ``gui`` (and the CLI and smoke start that launch it) loads Qt,
  and module-level imports form no loops.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import consentdesk

PACKAGE_DIR = Path(consentdesk.__file__).resolve().parent
QT_FREE = ("domain", "stores", "platform", "server", "telephony")
QT_MODULES = ("PySide6", "shiboken6")

# Which of our layers each layer may import (itself included). "version" is the
# bare package (its version string); "launch" the top-level start-up modules.
ALLOWED: dict[str, frozenset[str]] = {
    "domain": frozenset({"domain"}),
    "platform": frozenset({"platform", "domain", "version"}),
    "stores": frozenset({"stores", "platform", "domain", "version"}),
    "server": frozenset({"server", "platform", "domain", "version"}),
    "telephony": frozenset({"telephony", "platform", "domain", "version"}),
    "gui": frozenset({"gui", "stores", "platform", "domain", "telephony", "version"}),
    "cli": frozenset(
        {"cli", "gui", "server", "stores", "platform", "domain", "telephony", "version", "launch"}
    ),
    "launch": frozenset({"cli", "gui", "stores", "platform", "domain", "version", "launch"}),
    "version": frozenset({"version"}),
}

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


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(("consentdesk", *parts))


def _sources() -> list[Path]:
    return [
        p
        for p in sorted(PACKAGE_DIR.rglob("*.py"))
        # Alembic's environment script only runs inside Alembic.
        if not (p.parent.name == "migrations" and p.name == "env.py")
    ]


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "version"
    return parts[1] if parts[1] in ALLOWED else "launch"


def modules_of(package: str) -> list[str]:
    return [_module_name(p) for p in _sources() if layer_of(_module_name(p)) == package]


class Import:
    def __init__(self, target: str, line: int, top_level: bool) -> None:
        self.target, self.line, self.top_level = target, line, top_level


def imports_of(path: Path) -> list[Import]:
    """Every import in *path*; ``top_level`` when it runs at import time."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            deferred = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) or (
                isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
            )
            nested = top and not deferred
            if isinstance(child, ast.Import):
                found.extend(Import(a.name, child.lineno, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                found.append(Import(base, child.lineno, top))
                # ``from consentdesk.x import y`` may import the module x.y
                found.extend(Import(f"{base}.{a.name}", child.lineno, top) for a in child.names)
            elif isinstance(child, ast.Call) and child.args:
                func = child.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                arg = child.args[0]
                if called in {"import_module", "__import__"} and isinstance(arg, ast.Constant):
                    found.append(Import(str(arg.value), child.lineno, top))
            visit(child, nested)

    visit(tree, True)
    return found


def _ours() -> dict[str, Path]:
    return {_module_name(p): p for p in _sources()}


def layer_violations() -> list[str]:
    ours = _ours()
    bad = []
    for module, path in ours.items():
        layer = layer_of(module)
        for imp in imports_of(path):
            if imp.target.split(".")[0] in QT_MODULES and layer in QT_FREE:
                bad.append(f"{module}:{imp.line} imports Qt ({imp.target})")
            if imp.target not in ours:
                continue
            target_layer = layer_of(imp.target)
            if target_layer not in ALLOWED[layer]:
                bad.append(f"{module}:{imp.line} ({layer}) imports {imp.target} ({target_layer})")
    return sorted(set(bad))


def import_cycles() -> list[list[str]]:
    """Strongly connected groups of modules through import-time imports."""
    ours = _ours()
    graph = {
        m: sorted(
            {i.target for i in imports_of(p) if i.top_level and i.target in ours and i.target != m}
        )
        for m, p in ours.items()
    }
    # A package's __init__ runs before its submodules: importing consentdesk.x.y
    # from consentdesk.x's own __init__ is not a loop worth reporting.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            strongconnect(v)
    return cycles


def test_each_layer_imports_only_what_it_may() -> None:
    assert layer_violations() == []


def test_no_import_loops() -> None:
    assert import_cycles() == []


@pytest.mark.parametrize("package", QT_FREE)
def test_package_imports_with_pyside6_absent(package: str) -> None:
    assert (PACKAGE_DIR / package / "__init__.py").is_file(), f"consentdesk.{package} is missing"
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKED_IMPORT, *modules_of(package)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _plant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> None:
    root = tmp_path / "consentdesk"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE_DIR", root)


def test_the_checker_sees_each_forbidden_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _plant(
        tmp_path,
        monkeypatch,
        {
            "__init__.py": "",
            "domain/__init__.py": "",
            "domain/model.py": "from consentdesk.stores import ledger\n",
            "stores/__init__.py": "",
            "stores/ledger.py": "import importlib\nimportlib.import_module('PySide6')\n",
            "server/__init__.py": "",
            "server/app.py": "def f():\n    from consentdesk.stores.ledger import x\n",
            "gui/__init__.py": "",
            "gui/main.py": "from ..cli import common\n",
            "cli/__init__.py": "",
            "cli/common.py": "",
        },
    )
    assert layer_violations() == [
        "consentdesk.domain.model:1 (domain) imports consentdesk.stores (stores)",
        "consentdesk.domain.model:1 (domain) imports consentdesk.stores.ledger (stores)",
        "consentdesk.gui.main:1 (gui) imports consentdesk.cli (cli)",
        "consentdesk.gui.main:1 (gui) imports consentdesk.cli.common (cli)",
        "consentdesk.server.app:2 (server) imports consentdesk.stores.ledger (stores)",
        "consentdesk.stores.ledger:2 imports Qt (PySide6)",
    ]


def test_the_checker_sees_a_loop_but_not_a_deferred_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _plant(
        tmp_path,
        monkeypatch,
        {
            "__init__.py": "",
            "domain/__init__.py": "",
            "domain/a.py": "from consentdesk.domain import b\n",
            "domain/b.py": "import consentdesk.domain.a\n",
            "domain/c.py": "def f():\n    from consentdesk.domain import d\n",
            "domain/d.py": "from consentdesk.domain import c\n",
        },
    )
    assert import_cycles() == [["consentdesk.domain.a", "consentdesk.domain.b"]]


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
