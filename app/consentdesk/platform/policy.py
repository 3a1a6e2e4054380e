r"""Windows Group Policy as a source of managed settings.

IT (a GPO, or the MSI's command-line properties) writes under
``HKLM\Software\Policies\ConsentDesk``:

- ``<section>`` subkey, value ``<name>``: the setting ``section.name``, as REG_SZ,
  REG_DWORD (numbers and true/false as 1/0) or REG_MULTI_SZ (lists). An empty
  REG_SZ means "not set": the MSI writes every property it knows, empty when
  the admin did not give it.
- ``Locked`` subkey, value ``<section.name>``: 1 (REG_DWORD, or "1"/"true"/"yes")
  locks that setting so the user cannot change it.

The result has the shape of a parsed site TOML file, so :mod:`consentdesk.platform.config`
validates it exactly like one. The registry is reached through a small reader
interface so the mapping is tested off Windows with a fake.
"""

from __future__ import annotations

import re
import sys
from typing import Any, Protocol

from consentdesk.platform.config import SETTINGS, ConfigError

POLICY_KEY = r"Software\Policies\ConsentDesk"
POLICY_LABEL = r"HKLM\Software\Policies\ConsentDesk"
LOCKED_SUBKEY = "Locked"

RegistryValue = str | int | list[str]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class RegistryReader(Protocol):
    """Read-only view of one registry hive (paths are relative to HKLM)."""

    def subkeys(self, path: str) -> list[str]:
        """Names of the subkeys of ``path``; empty if ``path`` does not exist."""
        ...

    def values(self, path: str) -> dict[str, RegistryValue]:
        """Values of ``path`` by name; empty if ``path`` does not exist."""
        ...


def _flag(value: RegistryValue, where: str) -> bool:
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"{where} must be 1 or 0")


def _coerce(default: Any, value: RegistryValue, where: str) -> Any:
    """Registry types to the types a TOML file would carry for this setting."""
    if isinstance(default, bool):
        return _flag(value, where)
    if isinstance(default, int):
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
        return value
    if isinstance(default, tuple):
        if isinstance(value, str):
            return [part.strip() for part in re.split(r"[,;]", value) if part.strip()]
        return value
    return value


def _is_unset(value: RegistryValue) -> bool:
    return value == "" or value == []


def read_policy(reader: RegistryReader | None = None) -> dict[str, Any]:
    """The policy as site-file data: ``{section: {name: value}, "managed": {"locked": [...]}}``.

    Without a reader, uses the real registry on Windows and returns ``{}`` elsewhere.
    """
    if reader is None:
        reader = system_reader()
        if reader is None:
            return {}
    defaults = {s.key: s.default for s in SETTINGS}
    data: dict[str, Any] = {}
    locked: list[str] = []
    for subkey in reader.subkeys(POLICY_KEY):
        path = f"{POLICY_KEY}\\{subkey}"
        label = f"{POLICY_LABEL}\\{subkey}"
        if subkey.lower() == LOCKED_SUBKEY.lower():
            for name, value in reader.values(path).items():
                key = name.lower()
                if key not in defaults:
                    raise ConfigError(f"{label}: unknown setting {name}")
                if not _is_unset(value) and _flag(value, f"{label}\\{name}"):
                    locked.append(key)
            continue
        section = subkey.lower()
        for name, value in reader.values(path).items():
            if _is_unset(value):
                continue
            key = f"{section}.{name.lower()}"
            # Unknown keys pass through so the config registry reports them by name.
            default = defaults.get(key, "")
            data.setdefault(section, {})[name.lower()] = _coerce(default, value, f"{label}\\{name}")
    if locked:
        data["managed"] = {"locked": sorted(locked)}
    return data


if sys.platform != "win32":

    def system_reader() -> RegistryReader | None:
        """The machine's HKLM on Windows; ``None`` on other platforms."""
        return None

else:
    import winreg

    class _WinRegReader:
        """HKLM through :mod:`winreg`, 64-bit view (where the MSI and GPOs write)."""

        _ACCESS = winreg.KEY_READ | winreg.KEY_WOW64_64KEY

        def subkeys(self, path: str) -> list[str]:
            try:
                with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, path, 0, self._ACCESS) as key:
                    count = winreg.QueryInfoKey(key)[0]
                    return [winreg.EnumKey(key, i) for i in range(count)]
            except FileNotFoundError:
                return []

        def values(self, path: str) -> dict[str, RegistryValue]:
            out: dict[str, RegistryValue] = {}
            try:
                with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, path, 0, self._ACCESS) as key:
                    count = winreg.QueryInfoKey(key)[1]
                    for i in range(count):
                        name, data, kind = winreg.EnumValue(key, i)
                        if kind in (winreg.REG_SZ, winreg.REG_EXPAND_SZ):
                            out[name] = str(data)
                        elif kind in (winreg.REG_DWORD, winreg.REG_QWORD):
                            out[name] = int(data)
                        elif kind == winreg.REG_MULTI_SZ:
                            out[name] = [str(v) for v in data]
                        else:
                            raise ConfigError(f"HKLM\\{path}\\{name}: unsupported registry type")
            except FileNotFoundError:
                return {}
            return out

    def system_reader() -> RegistryReader | None:
        """The machine's HKLM on Windows; ``None`` on other platforms."""
        return _WinRegReader()
