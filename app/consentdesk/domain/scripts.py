"""Disclosure scripts: the texts agents read aloud before a capture.

Scripts are published as Markdown files with TOML front matter; rendering fills
placeholders with plain text and keeps the verbatim passages marked, and the
SHA-256 of the rendered text is what a capture records.
"""

from __future__ import annotations

import enum
import hashlib
import re
import tomllib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from consentdesk.domain.model import (
    Channel,
    DomainError,
    Jurisdiction,
    Notice,
    Purpose,
    RequestType,
)
from consentdesk.domain.resources import resource_path

_E = TypeVar("_E", bound=enum.Enum)


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
    #: The placeholder values filled in, sorted by name (None: not known, as
    #: for a notice recorded before notices carried them).
    values: tuple[tuple[str, str], ...] | None = ()

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
            params=self.values,
        )


# --- parsing ---------------------------------------------------------------------
# A script file is ``resources/scripts/<script-id>/<lang>.md``: TOML front matter
# between two ``---`` lines, then paragraphs separated by blank lines. Passages
# to read word for word sit between a ``::: verbatim`` line and a ``:::`` line.

PLACEHOLDERS = frozenset(
    {
        "company",
        "agent_name",
        "customer_name",
        "purposes",
        "purpose_details",
        "channels",
        "reference",
        "due_date",
    }
)
MAX_VALUE_CHARS = 1000
ALL_PURPOSES = "*"

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
_SCRIPT_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_LANGUAGE = re.compile(r"[a-z]{2}")
_VERSION = re.compile(r"\d+(?:\.\d+)*")
_FENCE_OPEN = "::: verbatim"
_FENCE_CLOSE = ":::"
_FRONT_MATTER_KEYS = frozenset(
    {"version", "kind", "purposes", "jurisdiction", "request_type", "effective_from"}
)


def _template_blocks(template: str, where: str) -> tuple[Block, ...]:
    """Paragraphs of an unrendered template; raises DomainError on bad markup."""
    blocks: list[Block] = []
    lines: list[str] = []
    verbatim = False
    opened_at = 0

    def flush() -> None:
        if lines:
            blocks.append(Block("\n".join(lines), verbatim))
            lines.clear()

    for number, raw in enumerate(template.split("\n"), start=1):
        line = raw.strip()
        if line == _FENCE_OPEN:
            if verbatim:
                raise DomainError(f"{where}: line {number}: verbatim blocks cannot be nested")
            flush()
            verbatim, opened_at = True, number
        elif line == _FENCE_CLOSE:
            if not verbatim:
                raise DomainError(f"{where}: line {number}: ':::' closes no verbatim block")
            flush()
            verbatim = False
        elif line.startswith(":::"):
            raise DomainError(f"{where}: line {number}: unknown block marker {line!r}")
        elif not line:
            flush()
        else:
            _check_placeholders(line, f"{where}: line {number}")
            lines.append(line)
    if verbatim:
        raise DomainError(f"{where}: the verbatim block opened on line {opened_at} is not closed")
    flush()
    if not blocks:
        raise DomainError(f"{where}: the script has no text")
    return tuple(blocks)


def _check_placeholders(line: str, where: str) -> None:
    for name in _PLACEHOLDER.findall(line):
        if name not in PLACEHOLDERS:
            known = ", ".join(sorted(PLACEHOLDERS))
            raise DomainError(f"{where}: unknown placeholder {{{{{name}}}}} (known: {known})")
    rest = _PLACEHOLDER.sub("", line)
    if "{{" in rest or "}}" in rest:
        raise DomainError(f"{where}: malformed placeholder; write {{{{name}}}}")


def _split_front_matter(text: str, where: str) -> tuple[str, str]:
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        raise DomainError(f"{where}: must start with front matter between '---' lines")
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :])
    raise DomainError(f"{where}: the front matter has no closing '---' line")


def _front_matter(front: str, where: str) -> dict[str, Any]:
    try:
        meta = tomllib.loads(front)
    except tomllib.TOMLDecodeError as exc:
        raise DomainError(f"{where}: front matter is not valid TOML: {exc}") from None
    unknown = sorted(set(meta) - _FRONT_MATTER_KEYS)
    if unknown:
        raise DomainError(f"{where}: unknown front matter key(s): {', '.join(unknown)}")
    for key in ("version", "kind", "effective_from"):
        if key not in meta:
            raise DomainError(f"{where}: front matter needs {key!r}")
    return meta


def _version(value: Any, where: str) -> str:
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not _VERSION.fullmatch(text):
        raise DomainError(f'{where}: version must look like "1" or "1.2", got {value!r}')
    return text


def _effective_from(value: Any, where: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise DomainError(f"{where}: effective_from must be a date like 2024-05-01") from None


def _purposes(value: Any, kind: ScriptKind, where: str) -> tuple[str, ...]:
    if value is None:
        if kind == ScriptKind.REQUEST:
            return ()
        raise DomainError(f'{where}: a {kind} script needs purposes (["*"] for every purpose)')
    if not isinstance(value, list) or not value or not all(isinstance(p, str) for p in value):
        raise DomainError(f'{where}: purposes must be a non-empty list of ids, or ["*"]')
    if ALL_PURPOSES in value:
        if len(value) != 1:
            raise DomainError(f'{where}: "*" (every purpose) cannot be combined with ids')
        return ()
    return tuple(value)


def _enum_value(enum_type: type[_E], value: Any, key: str, where: str) -> _E:
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(str(v.value) for v in enum_type)
        raise DomainError(f"{where}: {key} must be one of {allowed}, got {value!r}") from None


def parse_script(text: str, *, script_id: str, language: str) -> Script:
    """Parse one script file; raises DomainError naming the script and the problem.

    Line endings are normalised and trailing spaces dropped, so the template (and
    its hash) does not depend on how the file was checked out.
    """
    where = f"script {script_id} ({language})"
    if not _SCRIPT_ID.fullmatch(script_id):
        raise DomainError(f"{where}: script ids are lower-case words joined by '-'")
    if not _LANGUAGE.fullmatch(language):
        raise DomainError(f"{where}: the language must be a two-letter code such as en")
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    front, body = _split_front_matter(text, where)
    meta = _front_matter(front, where)
    kind = _enum_value(ScriptKind, meta["kind"], "kind", where)
    request_type = None
    if "request_type" in meta:
        request_type = _enum_value(RequestType, meta["request_type"], "request_type", where)
    if (kind == ScriptKind.REQUEST) != (request_type is not None):
        raise DomainError(f"{where}: request_type is required for request scripts, and only there")
    jurisdiction = None
    if "jurisdiction" in meta:
        jurisdiction = _enum_value(Jurisdiction, meta["jurisdiction"], "jurisdiction", where)
    template = "\n".join(line.rstrip() for line in body.split("\n")).strip("\n")
    _template_blocks(template, where)
    return Script(
        id=script_id,
        version=_version(meta["version"], where),
        language=language,
        kind=kind,
        purposes=_purposes(meta.get("purposes"), kind, where),
        jurisdiction=jurisdiction,
        effective_from=_effective_from(meta["effective_from"], where),
        template=template,
        request_type=request_type,
    )


def load_scripts(root: Path | None = None) -> tuple[Script, ...]:
    """Every ``<script-id>/<lang>.md`` under *root* (default: the shipped scripts)."""
    root = root or resource_path("scripts")
    if not root.is_dir():
        raise DomainError(f"script folder {root} does not exist")
    scripts: list[Script] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(folder.glob("*.md")):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise DomainError(f"cannot read script {path}: {exc}") from None
            scripts.append(parse_script(text, script_id=folder.name, language=path.stem))
    if not scripts:
        raise DomainError(f"no scripts found in {root}")
    return tuple(scripts)


# --- rendering -------------------------------------------------------------------


def _plain(value: str, name: str, where: str) -> str:
    """A context value as one line of plain text, or DomainError."""
    spaced = "".join(
        " " if ch.isspace() else ch
        for ch in value
        if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )
    text = " ".join(spaced.split())
    if not text:
        raise DomainError(f"{where} needs a value for {{{{{name}}}}}")
    if len(text) > MAX_VALUE_CHARS:
        raise DomainError(
            f"{where}: the value for {{{{{name}}}}} is over {MAX_VALUE_CHARS} characters"
        )
    if "{" in text or "}" in text or ":::" in text:
        raise DomainError(f"{where}: the value for {{{{{name}}}}} contains script markup")
    return text


def render(script: Script, context: Mapping[str, str]) -> RenderedScript:
    """Fill the placeholders of *script* from *context*, as plain text.

    Values are inserted in one pass into the parsed blocks, so they can neither
    add placeholders nor open or close verbatim passages.
    """
    where = f"script {script.id} ({script.language})"
    used: dict[str, str] = {}

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        raw = context.get(name)
        if raw is None:
            raise DomainError(f"{where} needs a value for {{{{{name}}}}}")
        used[name] = _plain(raw, name, where)
        return used[name]

    blocks = tuple(
        Block(_PLACEHOLDER.sub(value, b.text), b.verbatim)
        for b in _template_blocks(script.template, where)
    )
    text = "\n\n".join(b.text for b in blocks)
    return RenderedScript(script, text, blocks, tuple(sorted(used.items())))


def rendered_notice(script: Script, notice: Notice) -> RenderedScript:
    """*notice* as the rendering of *script* it records (e.g. cited by a correction)."""
    return RenderedScript(script, notice.text, (Block(notice.text, False),), notice.params)


def template_pattern(script: Script) -> re.Pattern[str]:
    """A regex the rendered text of *script* must match, whatever the placeholders held.

    Rendering with marker values and escaping the result keeps every literal
    character of the published wording; only the placeholders become wildcards
    (rendered values are single lines of plain text).
    """
    markers = {name: f"QZX{name.upper()}QZX" for name in placeholders(script)}
    shape = re.escape(render(script, markers).text)
    for marker in markers.values():
        shape = shape.replace(re.escape(marker), r"[^\n]+?")
    return re.compile(shape)


# --- context helpers -------------------------------------------------------------

_AND = {"en": "and", "de": "und"}
_MONTHS = {
    "en": (
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ),
    "de": (
        "Januar", "Februar", "März", "April", "Mai", "Juni",
        "Juli", "August", "September", "Oktober", "November", "Dezember",
    ),
}  # fmt: skip
_CHANNELS = {
    "en": {
        "phone": "phone",
        "sms": "text message",
        "email": "email",
        "post": "post",
        "online": "online",
    },
    "de": {"phone": "Telefon", "sms": "SMS", "email": "E-Mail", "post": "Post", "online": "online"},
}


def list_phrase(items: Sequence[str], language: str) -> str:
    """``a, b and c`` in *language* (English wording for languages without a table)."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {_AND.get(language, _AND['en'])} {items[-1]}"


def channel_label(channel: Channel, language: str) -> str:
    return _CHANNELS.get(language, _CHANNELS["en"]).get(channel.value, channel.value)


def date_phrase(day: date, language: str) -> str:
    """A date as read aloud: ``14 March 2025`` / ``14. März 2025`` (ISO otherwise)."""
    if language == "de":
        return f"{day.day}. {_MONTHS['de'][day.month - 1]} {day.year}"
    if language == "en":
        return f"{day.day} {_MONTHS['en'][day.month - 1]} {day.year}"
    return day.isoformat()


def script_context(
    *,
    language: str,
    company: str,
    agent_name: str,
    customer_name: str | None = None,
    purposes: Sequence[Purpose] = (),
    channels: Sequence[Channel] = (),
    reference: str | None = None,
    due: date | None = None,
) -> dict[str, str]:
    """The placeholder values for a capture; absent ones stay out of the mapping,
    so a script that needs them fails to render with a clear message."""
    context = {"company": company}
    if agent_name.strip():  # never a stand-in (such as the agent id) for the name read out
        context["agent_name"] = agent_name
    if customer_name:
        context["customer_name"] = customer_name
    if purposes:
        context["purposes"] = list_phrase([p.title_in(language) for p in purposes], language)
        context["purpose_details"] = " ".join(
            f"{p.title_in(language)}: {p.description_in(language)}" for p in purposes
        )
    if channels:
        context["channels"] = list_phrase([channel_label(c, language) for c in channels], language)
    if reference:
        context["reference"] = reference
    if due is not None:
        context["due_date"] = date_phrase(due, language)
    return context


# --- selection -------------------------------------------------------------------


def version_key(version: str) -> tuple[int, ...]:
    """Numeric sort key of a dotted version ("1.10" after "1.9")."""
    parts = version.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else ()


def placeholders(script: Script) -> frozenset[str]:
    """The placeholder names *script* needs values for."""
    return frozenset(_PLACEHOLDER.findall(script.template))


def covers(script: Script, purpose: str) -> bool:
    """Whether *script* may be read for *purpose* (no purposes listed: every one)."""
    return not script.purposes or purpose in script.purposes


def _languages(language: str, fallback: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((language, *fallback)))


def select_script(
    scripts: Sequence[Script],
    *,
    kind: ScriptKind,
    language: str,
    fallback: Sequence[str] = ("en",),
    request_type: RequestType | None = None,
    jurisdiction: Jurisdiction | None = None,
    on: date | None = None,
) -> Script:
    """The script to read: in *language*, else the first fallback language that has one.

    Within a language, a script for exactly this jurisdiction beats a general
    one, then the highest version effective on *on* (default today) wins.
    """
    day = on or date.today()
    languages = _languages(language, fallback)
    for lang in languages:
        found = [
            s
            for s in scripts
            if s.language == lang
            and s.kind == kind
            and s.effective_from <= day
            and (request_type is None or s.request_type == request_type)
            and (jurisdiction is None or s.jurisdiction in (None, jurisdiction))
        ]
        if found:
            return max(
                found,
                key=lambda s: (
                    s.jurisdiction == jurisdiction,
                    version_key(s.version),
                    s.effective_from,
                    s.id,
                ),
            )
    what = f"{request_type} request" if request_type else str(kind)
    under = f" under {jurisdiction}" if jurisdiction else ""
    raise DomainError(
        f"no {what} script{under} in {' or '.join(languages)} effective on {day.isoformat()}"
    )


def script_by_id(
    scripts: Sequence[Script],
    script_id: str,
    language: str,
    *,
    fallback: Sequence[str] = ("en",),
    on: date | None = None,
) -> Script:
    """The highest version of *script_id* effective on *on*, by language then fallback."""
    same = [s for s in scripts if s.id == script_id]
    if not same:
        raise DomainError(f"unknown script {script_id!r}")
    day = on or date.today()
    languages = _languages(language, fallback)
    for lang in languages:
        found = [s for s in same if s.language == lang and s.effective_from <= day]
        if found:
            return max(found, key=lambda s: (version_key(s.version), s.effective_from))
    raise DomainError(
        f"script {script_id} has no version in {' or '.join(languages)} "
        f"effective on {day.isoformat()}"
    )
