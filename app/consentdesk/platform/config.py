"""One typed registry of settings, read from defaults, the site file and the user file.

Order (later wins, unless the site locks a key): built-in defaults, the site-wide
file IT manages (platformdirs ``site_config_dir``), then the user's own file.
A site file may lock keys with ``[managed] locked = ["server.url", ...]``.
Secrets never live here: tokens are only in the OS keyring.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

APP = "consentdesk"


class ConfigError(ValueError):
    """A config file or value is wrong; the message names the file and key."""


class LockedSetting(ConfigError):
    """The site administrator has locked this setting."""


class _Choice:
    """One of a fixed set of texts; ``allowed`` also feeds the Windows policy templates."""

    def __init__(self, *allowed: str) -> None:
        self.allowed = allowed

    def __call__(self, value: Any) -> str:
        if value not in self.allowed:
            raise ValueError(f"must be one of {', '.join(self.allowed)}")
        return str(value)


_choice = _Choice


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be text")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _seconds(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3600:
        raise ValueError("must be a whole number of seconds from 0 to 3600")
    return value


def _languages(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, str) and re.fullmatch(r"[a-z]{2}", v) for v in value
    ):
        raise ValueError('must be a list of two-letter language codes, e.g. ["en", "de"]')
    return tuple(value)


def _region(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{2}", value):
        raise ValueError("must be a two-letter region code such as DE or US")
    return value.upper()


def _hostport(value: Any) -> str:
    if not isinstance(value, str) or (value and not re.fullmatch(r"[\w.\-]+:\d{1,5}", value)):
        raise ValueError("must be HOST:PORT, or empty to turn it off")
    return value


def _timezone(value: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(value, str):
        raise ValueError("must be a time zone name such as Europe/Berlin")
    if value:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"is not a known time zone: {value!r}") from None
    return value


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError("must be a port number from 1 to 65535")
    return value


def _str_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError('must be a list of texts, e.g. ["Partner GmbH"]')
    return tuple(value)


def _secret_free(value: Any) -> str:
    text = _str(value)
    if re.search(r"(?i)(token|password|secret)=", text):
        raise ValueError("must not carry credentials; tokens live in the OS keyring")
    return text


@dataclass(frozen=True, slots=True)
class Setting:
    key: str
    default: Any
    parse: Callable[[Any], Any]
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("general.region", "DE", _region, "Region for numbers dialled without +country"),
    Setting("general.company", "Example Energy GmbH", _str, "Company name read in scripts"),
    Setting("general.agent", "", _str, "Agent id recorded with captures (before sign-in)"),
    Setting("general.agent_name", "", _str, "Agent name read in scripts"),
    Setting("general.jurisdiction", "gdpr", _choice("gdpr", "ccpa"), "Default jurisdiction"),
    Setting("general.languages", ("en", "de"), _languages, "Languages offered for scripts"),
    Setting("general.fallback_languages", ("en",), _languages, "Script language fallback"),
    Setting("sidebar.dock", "right", _choice("right", "left"), "Screen edge the sidebar docks to"),
    Setting("sidebar.always_on_top", True, _bool, "Keep the sidebar above other windows"),
    Setting("sidebar.clear_after_seconds", 5, _seconds, "Seconds the caller stays after hang-up"),
    Setting("server.url", "", _secret_free, "Team ledger server (empty: embedded ledger)"),
    Setting("server.ca_bundle", "", _str, "Extra CA bundle file for the server's TLS"),
    Setting("telephony.baresip", "", _hostport, "baresip ctrl_tcp address, e.g. 127.0.0.1:4444"),
    Setting("calls.retention_hours", 0, _seconds, "Hours recent calls are kept (0: end of day)"),
    Setting("general.timezone", "", _timezone, "Time zone for local times (empty: the system's)"),
    Setting("privacy.controller_name", "", _str, "Controller named in exports (empty: company)"),
    Setting(
        "privacy.controller_address",
        "Musterstraße 1, 10115 Berlin, Germany",
        _str,
        "Controller's postal address in consent records and receipts",
    ),
    Setting("privacy.controller_email", "privacy@example.com", _str, "Controller's privacy email"),
    Setting("privacy.controller_phone", "+49 30 1234567", _str, "Controller's privacy phone"),
    Setting("privacy.controller_url", "https://www.example.com", _str, "Controller's website"),
    Setting("privacy.contact", "Data Protection Officer", _str, "Privacy contact in receipts"),
    Setting("privacy.policy_url", "https://www.example.com/privacy", _str, "Privacy policy URL"),
    Setting("privacy.storage_location", "EU", _str, "Where consent data is stored (27560 export)"),
    Setting(
        "privacy.retention",
        "While the consent is in force and 3 years after it ends",
        _str,
        "Retention period stated in consent records",
    ),
    Setting(
        "privacy.withdrawal_method",
        "Withdraw at any time by telling any agent on a call; it is as easy as giving consent.",
        _str,
        "How a customer withdraws consent, as stated in exports",
    ),
    Setting("privacy.third_parties", (), _str_list, "Recipients named in exports (empty: none)"),
    Setting("mail.smtp_host", "", _str, "SMTP server for receipt e-mails (empty: no receipts)"),
    Setting("mail.smtp_port", 587, _port, "SMTP port (587 with STARTTLS, 25 without)"),
    Setting("mail.starttls", True, _bool, "Upgrade the SMTP connection with STARTTLS"),
    Setting("mail.smtp_user", "", _str, "SMTP user (the password lives in the OS keyring)"),
    Setting("mail.sender", "", _str, "From address of receipt e-mails"),
    Setting("mail.ca_bundle", "", _str, "Extra CA bundle file for the SMTP server's TLS"),
    Setting(
        "general.role",
        "agent",
        _choice("agent", "lead", "admin"),
        "Role on the embedded ledger: agent, lead or admin (leads and admins can review)",
    ),
)
_BY_KEY = {s.key: s for s in SETTINGS}


def user_config_file() -> Path:
    return Path(platformdirs.user_config_dir(APP, appauthor=False)) / "config.toml"


def site_config_files() -> list[Path]:
    """Site-wide files, most important last (``CONSENTDESK_SITE_CONFIG`` overrides)."""
    override = os.environ.get("CONSENTDESK_SITE_CONFIG")
    if override:
        return [Path(override)]
    dirs = platformdirs.site_config_dir(APP, appauthor=False, multipath=True).split(os.pathsep)
    return [Path(d) / "config.toml" for d in reversed(dirs)]


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a config source, located as precisely as the file allows."""

    source: str
    line: int | None
    key: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        if not self.message:
            return where  # a whole-file problem, already worded in ``source``
        return f"{where}: {self.key} {self.message}" if self.key else f"{where}: {self.message}"


_HEADER = re.compile(r"\s*\[\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\s*(#.*)?$")
_ASSIGN = re.compile(r"\s*([A-Za-z0-9_\-]+(?:\s*\.\s*[A-Za-z0-9_\-]+)*)\s*=")


def key_lines(text: str) -> dict[str, int]:
    """Line numbers of ``[section]`` headers and ``section.name`` keys in TOML text.

    A light scan, good for the flat files settings use (tables of plain keys,
    dotted keys); a key it cannot place is reported without a line.
    """
    found: dict[str, int] = {}
    section = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header and not line.lstrip().startswith("[["):
            section = header.group(1).replace('"', "").replace("'", "").replace(" ", "")
            found.setdefault(f"[{section}]", number)
            continue
        assign = _ASSIGN.match(line)
        if assign:
            name = re.sub(r"\s+", "", assign.group(1))
            found.setdefault(f"{section}.{name}" if section else name, number)
    return found


def _suggest(name: str, section: str | None) -> str:
    """A hint for an unknown key: the closest known one, or where it belongs."""
    import difflib

    if section is None:
        homes = [s.key for s in SETTINGS if s.key.split(".", 1)[1] == name]
        if homes:
            home = homes[0].split(".", 1)[0]
            return f" (put it under [{home}], as {homes[0]})"
        return ""
    close = difflib.get_close_matches(f"{section}.{name}", list(_BY_KEY), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def check_data(
    data: Mapping[str, Any], source: Path | str, lines: Mapping[str, int] | None = None
) -> tuple[dict[str, Any], list[Problem]]:
    """The valid settings of one parsed source and every problem in it."""
    lines = lines or {}
    label = str(source)
    out: dict[str, Any] = {}
    problems: list[Problem] = []
    for section, body in data.items():
        if section == "managed":
            problems += _check_managed(body, label, lines)
            continue
        if not isinstance(body, Mapping):
            problems.append(
                Problem(
                    label,
                    lines.get(section),
                    section,
                    "is outside any [section]" + _suggest(section, None),
                )
            )
            continue
        for name, raw in body.items():
            key = f"{section}.{name}"
            line = lines.get(key) or lines.get(f"[{section}]")
            setting = _BY_KEY.get(key)
            if setting is None:
                problems.append(
                    Problem(label, line, key, "is not a known setting" + _suggest(name, section))
                )
                continue
            try:
                out[key] = setting.parse(raw)
            except ValueError as exc:
                problems.append(Problem(label, line, key, str(exc)))
    return out, problems


def _check_managed(body: Any, label: str, lines: Mapping[str, int]) -> list[Problem]:
    line = lines.get("managed.locked") or lines.get("[managed]")
    keys = body.get("locked", []) if isinstance(body, Mapping) else None
    if not isinstance(keys, list):
        return [Problem(label, line, "managed.locked", "must list setting keys")]
    unknown = [k for k in keys if k not in _BY_KEY]
    if unknown:
        return [Problem(label, line, "managed.locked", f"lists unknown settings: {unknown}")]
    return []


def _flatten(
    data: Mapping[str, Any], source: Path | str, lines: Mapping[str, int] | None = None
) -> dict[str, Any]:
    out, problems = check_data(data, source, lines)
    if problems:
        more = len(problems) - 1
        extra = f" (and {more} more: run `consentdesk config check`)" if more else ""
        raise ConfigError(f"{problems[0]}{extra}")
    return out


def read_source(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """A config file's data and key lines; a missing file is empty."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return tomllib.loads(text), key_lines(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        where = f"{path}:{found.group(1)}" if found else str(path)
        raise ConfigError(f"{where}: not valid TOML: {reason}") from None


def _read(path: Path) -> dict[str, Any]:
    return read_source(path)[0]


@dataclass
class Config:
    """Effective settings with where each came from."""

    site: dict[str, Any] = field(default_factory=dict)
    locked: frozenset[str] = frozenset()
    user: dict[str, Any] = field(default_factory=dict)
    user_file: Path | None = None

    @classmethod
    def load(
        cls, user_file: Path | None = None, site_files: Iterable[Path] | None = None
    ) -> Config:
        site: dict[str, Any] = {}
        locked: set[str] = set()
        for path in site_config_files() if site_files is None else site_files:
            data, lines = read_source(path)
            site.update(_flatten(data, path, lines))
            locked.update(data.get("managed", {}).get("locked", []))
        if site_files is None:
            # Windows Group Policy (HKLM\Software\Policies) outranks the site file.
            from consentdesk.platform.policy import POLICY_LABEL, read_policy

            policy = read_policy()
            site.update(_flatten(policy, POLICY_LABEL))
            locked.update(policy.get("managed", {}).get("locked", []))
        user_file = user_file or user_config_file()
        user = _flatten(*_user_source(user_file))
        return cls(site=site, locked=frozenset(locked), user=user, user_file=user_file)

    def get(self, key: str) -> Any:
        setting = _BY_KEY[key]
        if key in self.locked:
            # Locked: the site's value, or the default if the site only froze it.
            return self.site.get(key, setting.default)
        if key in self.user:
            return self.user[key]
        return self.site.get(key, setting.default)

    def is_locked(self, key: str) -> bool:
        return key in self.locked

    def source(self, key: str) -> str:
        """Where the effective value comes from: managed, site, user or default."""
        if key in self.locked:
            return "managed"
        if key in self.user:
            return "user"
        return "site" if key in self.site else "default"

    def set(self, key: str, value: Any) -> None:
        """Change a user setting in memory (call :meth:`save` to keep it)."""
        if key in self.locked:
            raise LockedSetting(f"{key} is managed by your administrator")
        setting = _BY_KEY.get(key)
        if setting is None:
            raise ConfigError(f"unknown setting {key}")
        try:
            self.user[key] = setting.parse(value)
        except ValueError as exc:
            raise ConfigError(f"{key} {exc}") from None

    def save(self) -> None:
        """Write the user's settings, atomically."""
        if self.user_file is None:
            raise ConfigError("no user config file")
        sections: dict[str, dict[str, Any]] = {}
        for key, value in sorted(self.user.items()):
            section, name = key.split(".", 1)
            sections.setdefault(section, {})[name] = value
        lines: list[str] = []
        for section, body in sections.items():
            lines.append(f"[{section}]")
            lines.extend(f"{name} = {_toml_value(v)}" for name, v in body.items())
            lines.append("")
        self.user_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.user_file.with_suffix(".tmp")
        tmp.write_text("\n".join(lines), encoding="utf-8")
        os.replace(tmp, self.user_file)


def _user_source(path: Path) -> tuple[dict[str, Any], Path, dict[str, int]]:
    """The user's file: ``[managed]`` belongs to site files only."""
    data, lines = read_source(path)
    if "managed" in data:
        where = f"{path}:{lines['[managed]']}" if "[managed]" in lines else str(path)
        raise ConfigError(f"{where}: [managed] belongs in the site file, not a user's own")
    return data, path, lines


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
