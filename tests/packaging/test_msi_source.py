"""The WiX source, built with wixl from a stand-in payload and read back with msiinfo.

The real payload is the PyInstaller build made on Windows; here a small file tree
with the same layout stands in, which is all the tables below depend on.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from consentdesk import __version__
from consentdesk.platform.policy import POLICY_KEY, RegistryValue, read_policy

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(300)]

HKCR, HKLM = "0", "2"
PAYLOAD = {
    "consentdesk.exe": b"MZ console launcher",
    "consentdeskw.exe": b"MZ windowed launcher",
    "_internal/python311.dll": b"MZ python",
    "_internal/PySide6/Qt6Core.dll": b"MZ qt",
    "_internal/resources/purposes.toml": b"# purposes\n",
}


@pytest.fixture(scope="module")
def msi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    payload = tmp_path_factory.mktemp("windows-build") / "consentdesk"
    for name, data in PAYLOAD.items():
        (payload / name).parent.mkdir(parents=True, exist_ok=True)
        (payload / name).write_bytes(data)
    dist = tmp_path_factory.mktemp("msi")
    build = Path(__file__).resolve().parents[2] / "packaging" / "build.py"
    result = subprocess.run(
        [sys.executable, str(build), "msi", "--payload", str(payload), "--dist", str(dist)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (built,) = dist.glob("ConsentDesk-*.msi")
    return built


def table(msi: Path, name: str) -> list[dict[str, str]]:
    """An MSI table as rows of column → value (msiinfo's idt export)."""
    out = subprocess.run(
        ["msiinfo", "export", str(msi), name], capture_output=True, text=True, check=True
    ).stdout
    header, _types, _keys, *rows = out.splitlines()
    columns = header.split("\t")
    return [dict(zip(columns, row.split("\t"), strict=True)) for row in rows]


def registry(msi: Path) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(root, key, name) → (value, component) from the Registry table."""
    return {
        (r["Root"], r["Key"].rstrip("\\"), r["Name"]): (r["Value"], r["Component_"])
        for r in table(msi, "Registry")
    }


def test_url_protocol_is_registered_for_the_windowed_launcher(msi: Path) -> None:
    reg = registry(msi)
    assert reg[(HKCR, "consentdesk", "")][0] == "URL:Consent Desk"
    assert reg[(HKCR, "consentdesk", "URL Protocol")][0] == ""
    command = reg[(HKCR, "consentdesk\\shell\\open\\command", "")][0]
    assert command == '"[INSTALLDIR]consentdeskw.exe" open-uri "%1"'


def test_command_line_properties_become_managed_settings(msi: Path) -> None:
    reg = registry(msi)
    policy = POLICY_KEY
    expected = {
        (f"{policy}\\server", "url"): "[SERVER_URL]",
        (f"{policy}\\server", "ca_bundle"): "[SERVER_CA_BUNDLE]",
        (f"{policy}\\general", "region"): "[REGION]",
        (f"{policy}\\telephony", "baresip"): "[BARESIP]",
        (f"{policy}\\Locked", "server.url"): "[LOCK_SERVER_URL]",
        (f"{policy}\\Locked", "server.ca_bundle"): "[LOCK_SERVER_CA_BUNDLE]",
        (f"{policy}\\Locked", "general.region"): "[LOCK_REGION]",
        (f"{policy}\\Locked", "telephony.baresip"): "[LOCK_BARESIP]",
    }
    for (key, name), value in expected.items():
        assert reg[(HKLM, key, name)] == (value, "ManagedSettings")


def test_policy_written_by_a_silent_install_is_what_the_app_reads(msi: Path) -> None:
    """msiexec /qn SERVER_URL=... LOCK_SERVER_URL=1, formatted as Windows Installer would."""
    properties = {
        "SERVER_URL": "https://ledger.example.com",
        "LOCK_SERVER_URL": "1",
        "REGION": "AT",
    }
    keys: dict[str, dict[str, RegistryValue]] = {}
    for (root, key, name), (value, _component) in registry(msi).items():
        if root == HKLM and key.startswith(POLICY_KEY + "\\"):
            formatted = re.sub(r"\[(\w+)\]", lambda m: properties.get(m.group(1), ""), value)
            keys.setdefault(key, {})[name] = formatted

    class MsiWrittenRegistry:
        def subkeys(self, path: str) -> list[str]:
            return [k[len(path) + 1 :] for k in keys if k.startswith(path + "\\")]

        def values(self, path: str) -> dict[str, RegistryValue]:
            return keys.get(path, {})

    assert read_policy(MsiWrittenRegistry()) == {
        "server": {"url": "https://ledger.example.com"},
        "general": {"region": "AT"},
        "managed": {"locked": ["server.url"]},
    }


def test_properties_are_remembered_before_the_registry_is_written(msi: Path) -> None:
    sequence = {
        r["Action"]: (int(r["Sequence"]), r["Condition"])
        for r in table(msi, "InstallExecuteSequence")
    }
    search = {r["Signature_"]: r for r in table(msi, "RegLocator")}
    keep = {r["Action"]: r for r in table(msi, "CustomAction")}
    for prop in ("SERVER_URL", "SERVER_CA_BUNDLE", "REGION", "BARESIP", "LOCK_SERVER_URL"):
        (action,) = [a for a, row in keep.items() if row["Source"] == prop]
        assert keep[action]["Target"] == f"[SAVED_{prop}]"
        at, condition = sequence[action]
        assert sequence["AppSearch"][0] < at < sequence["WriteRegistryValues"][0]
        assert condition == f"NOT {prop} AND SAVED_{prop}"
    assert {row["Root"] for row in search.values()} == {HKLM}
    assert all(int(row["Type"]) & 16 for row in search.values()), "64-bit registry view"


def test_package_is_per_machine_and_versioned(msi: Path) -> None:
    props = {r["Property"]: r["Value"] for r in table(msi, "Property")}
    assert props["ALLUSERS"] == "1"
    assert props["ProductName"] == "Consent Desk"
    assert props["ProductVersion"] == re.match(r"\d+(\.\d+){0,2}", __version__).group(0)  # type: ignore[union-attr]
    assert props["UpgradeCode"] == "{6B0F2F6E-4A39-4F59-9D7E-3F6A2F9C1A10}"
    assert props["ARPPRODUCTICON"] == "ConsentDeskIcon"
    assert "WIX_UPGRADE_DETECTED" in props["SecureCustomProperties"]
    info = subprocess.run(
        ["msiinfo", "suminfo", str(msi)], capture_output=True, text=True, check=True
    ).stdout
    assert re.search(r"Template: x64;1033", info)


def test_payload_files_menu_and_optional_autostart(msi: Path) -> None:
    files = {r["FileName"] for r in table(msi, "File")}
    assert files == {Path(name).name for name in PAYLOAD}
    (shortcut,) = table(msi, "Shortcut")
    assert shortcut["Target"] == "[INSTALLDIR]consentdeskw.exe"
    features = {r["Feature"]: int(r["Level"]) for r in table(msi, "Feature")}
    # Autostart is off unless the admin asks (ADDLOCAL=ALL or INSTALLLEVEL=1000).
    assert features == {"Main": 1, "Autostart": 1000}
    reg = registry(msi)
    run_key = (HKLM, "Software\\Microsoft\\Windows\\CurrentVersion\\Run", "Consent Desk")
    assert reg[run_key] == ('"[INSTALLDIR]consentdeskw.exe"', "Autostart")
    autostart = {
        r["Component_"] for r in table(msi, "FeatureComponents") if r["Feature_"] == "Autostart"
    }
    assert autostart == {"Autostart"}


def test_payload_without_the_windowed_launcher_is_refused(
    tmp_path: Path, builder: ModuleType
) -> None:
    (tmp_path / "consentdesk.exe").write_bytes(b"MZ")
    with pytest.raises(builder.BuildError, match=r"no consentdeskw\.exe"):
        builder.build_msi(tmp_path, tmp_path / "dist")
