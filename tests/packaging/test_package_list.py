"""pyproject.toml lists the packages (a finder would miss resources/): the list
must name every package of the source tree and every folder of resources/."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _listed() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return set(config["tool"]["setuptools"]["packages"])


def test_every_package_of_the_tree_is_listed() -> None:
    found = {
        ".".join(p.parent.relative_to(ROOT / "app").parts)
        for p in (ROOT / "app" / "consentdesk").rglob("__init__.py")
    }
    # Folders of resources/ whose names Python could import are packages to setuptools;
    # the others (scripts/consent-general, icons/.../16x16) are plain data below them.
    found |= {
        ".".join(("consentdesk", "_resources", *d.relative_to(ROOT / "resources").parts))
        for d in [ROOT / "resources", *(ROOT / "resources").rglob("*")]
        if d.is_dir() and all(part.isidentifier() for part in d.relative_to(ROOT).parts)
    }
    assert _listed() == found
