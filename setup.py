"""Build hook: the wheel and sdist carry ``resources/`` as ``consentdesk/_resources``.

The top-level ``resources/`` folder stays the one source. A regular (non-editable)
build copies it into the package so ``importlib.resources`` finds it in an
installed wheel; an editable checkout and the frozen build read the folder itself
(see ``consentdesk.domain.resources``). Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py as _build_py

ROOT = Path(__file__).resolve().parent
SOURCE = ROOT / "resources"
TARGET = Path("consentdesk") / "_resources"


class build_py(_build_py):
    """Also copies ``resources/`` into the built package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # the checkout's resources/ is read in place
        if not (SOURCE / "purposes.toml").is_file():
            raise SystemExit(f"{SOURCE} is missing: cannot build a package without resources")
        dest = Path(self.build_lib) / TARGET
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(SOURCE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not self.editable_mode:
            dest = Path(self.build_lib) / TARGET
            outputs += [str(dest / p.relative_to(SOURCE)) for p in SOURCE.rglob("*") if p.is_file()]
        return outputs


setup(cmdclass={"build_py": build_py})
