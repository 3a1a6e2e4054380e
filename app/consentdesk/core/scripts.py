"""Disclosure scripts: the texts agents read aloud before a capture.

HELPER-B fills in loading, rendering and selection below the type definitions.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import date

from consentdesk.core.model import Jurisdiction, Notice, RequestType


class ScriptKind(enum.StrEnum):
    CONSENT = "consent"
    WITHDRAWAL = "withdrawal"
    REQUEST = "request"


@dataclass(frozen=True, slots=True)
class Script:
    """One language version of a disclosure script, as published."""

    id: str
    version: str
    language: str
    kind: ScriptKind
    purposes: tuple[str, ...]
    jurisdiction: Jurisdiction | None
    effective_from: date
    template: str
    request_type: RequestType | None = None

    @property
    def template_sha256(self) -> str:
        return hashlib.sha256(self.template.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph of rendered text; verbatim blocks must be read word for word."""

    text: str
    verbatim: bool


@dataclass(frozen=True, slots=True)
class RenderedScript:
    """A script with its placeholders filled: exactly what the agent saw."""

    script: Script
    text: str
    blocks: tuple[Block, ...]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def notice(self) -> Notice:
        return Notice(
            script_id=self.script.id,
            version=self.script.version,
            language=self.script.language,
            sha256=self.sha256,
            text=self.text,
        )
