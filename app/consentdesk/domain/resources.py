"""Where the shipped resources (purposes, scripts, schemas, icons) live.

The top-level ``resources/`` folder of the source tree is the one source. An
installed wheel carries a copy as package data (``consentdesk/_resources``, put
there by the build), found through :mod:`importlib.resources`; a frozen build
carries it beside the executable; an editable checkout reads the folder itself.
"""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

from consentdesk.domain.model import DomainError

PACKAGE_DATA = "_resources"


class ResourcesMissing(DomainError):
    """No resources folder could be found: a broken installation."""


def _package_data() -> Path | None:
    """``consentdesk/_resources`` of an installed wheel, if this installation has it."""
    try:
        root = resources.files("consentdesk").joinpath(PACKAGE_DATA)
    except (ModuleNotFoundError, TypeError):
        return None
    # Wheels install as plain files; a zipped install is not supported.
    if isinstance(root, Path) and root.joinpath("purposes.toml").is_file():
        return root
    return None


def resource_dir() -> Path:
    """The resources folder: override, frozen build, installed package, or source tree."""
    override = os.environ.get("CONSENTDESK_RESOURCES")
    if override:
        return Path(override)
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    installed = _package_data()
    if installed is not None:
        return installed
    source = Path(__file__).resolve().parents[3] / "resources"
    if source.joinpath("purposes.toml").is_file():
        return source
    raise ResourcesMissing(
        "cannot find Consent Desk's resources (purposes, scripts, schemas): neither "
        f"{PACKAGE_DATA} in the installed package nor {source}; reinstall the package "
        "or set CONSENTDESK_RESOURCES to a resources folder"
    )


def resource_path(*parts: str) -> Path:
    return resource_dir().joinpath(*parts)
