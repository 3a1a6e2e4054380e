"""Where the shipped resources (purposes, scripts, schemas, icons) live."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def resource_dir() -> Path:
    """The ``resources`` folder: beside a frozen build, or at the source tree's top."""
    override = os.environ.get("CONSENTDESK_RESOURCES")
    if override:
        return Path(override)
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parents[3] / "resources"


def resource_path(*parts: str) -> Path:
    return resource_dir().joinpath(*parts)
