"""Make a one-folder build fit for a Debian package: no build-machine paths, sane modes.

PyInstaller copies the build machine's Python, whose libraries carry an absolute
RUNPATH such as ``/root/.pyenv/versions/3.11.7/lib``. In the bundle the loader
already finds everything through ``$ORIGIN`` paths and the bootloader's library
path, so absolute search paths are dropped (``patchelf``), ``$ORIGIN`` ones kept.
Shared libraries lose their execute bits (Debian policy 8.1).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path


class HygieneError(Exception):
    """The bundle could not be cleaned; the message says why."""


def _is_elf(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"\x7fELF"


def search_path(path: Path) -> list[str]:
    """The RPATH/RUNPATH entries of one ELF file (empty if it has none)."""
    out = subprocess.run(
        ["readelf", "-d", str(path)], capture_output=True, text=True, check=False
    ).stdout
    entries: list[str] = []
    for found in re.findall(r"\((?:RPATH|RUNPATH)\)\s+Library r(?:un)?path: \[(.*?)\]", out):
        entries += [e for e in found.split(":") if e]
    return entries


def clean_search_paths(app: Path) -> int:
    """Drop every RPATH/RUNPATH entry that is not ``$ORIGIN``-relative; returns files changed."""
    patchelf = shutil.which("patchelf")
    if patchelf is None:
        raise HygieneError("patchelf is not installed (Debian: apt-get install patchelf)")
    changed = 0
    for path in sorted(app.rglob("*")):
        if not path.is_file() or path.is_symlink() or not _is_elf(path):
            continue
        entries = search_path(path)
        kept = [e for e in entries if e.startswith(("$ORIGIN", "${ORIGIN}"))]
        if kept == entries:
            continue
        cmd = [patchelf, "--remove-rpath", str(path)]
        if kept:
            cmd = [patchelf, "--set-rpath", ":".join(kept), str(path)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise HygieneError(f"patchelf failed on {path}: {result.stderr.strip()}")
        changed += 1
    return changed


def fix_library_modes(app: Path) -> None:
    """Shared libraries 0644; the executables stay 0755."""
    for path in app.rglob("*.so*"):
        if path.is_file() and not path.is_symlink() and re.search(r"\.so(\.\d+)*$", path.name):
            path.chmod(0o644)


def leaked_build_paths(app: Path, markers: tuple[str, ...]) -> list[Path]:
    """Files whose bytes still contain one of *markers* (e.g. the build Python's prefix)."""
    needles = [m.encode() for m in markers]
    return [
        p
        for p in sorted(app.rglob("*"))
        if p.is_file() and not p.is_symlink() and any(n in p.read_bytes() for n in needles)
    ]
