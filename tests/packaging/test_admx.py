"""The Group Policy templates (ADMX/ADML) cover every registry value the app reads.

The templates are parsed as XML here, independently of the generator: each
policy's registry key and value name must be exactly the keys the settings
registry and consentdesk.platform.policy read; every reference between the two
files must resolve; and what each policy element writes, fed through the real
policy reader, must give a valid, locked setting.
"""

from __future__ import annotations

import importlib.util
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from test_windows_policy import FakeRegistry

from consentdesk.platform.config import SETTINGS, check_data
from consentdesk.platform.policy import LOCKED_SUBKEY, POLICY_KEY, POLICY_LABEL, read_policy

ROOT = Path(__file__).resolve().parents[2]
ADMX = ROOT / "packaging" / "windows" / "ConsentDesk.admx"
ADML = ROOT / "packaging" / "windows" / "en-US" / "ConsentDesk.adml"
NS = {"p": "http://schemas.microsoft.com/GroupPolicy/2006/07/PolicyDefinitions"}
VALUE_ELEMENTS = ("text", "decimal", "boolean", "enum", "multiText", "list")


@pytest.fixture(scope="module")
def make_admx() -> ModuleType:
    path = ROOT / "packaging" / "windows" / "make_admx.py"
    spec = importlib.util.spec_from_file_location("consentdesk_packaging_make_admx", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _policies() -> list[ET.Element]:
    return ET.parse(ADMX).getroot().findall("p:policies/p:policy", NS)


def _written_values(policy: ET.Element) -> list[tuple[str, str, str, ET.Element]]:
    """(registry key, value name, element kind, element) for each value a policy writes."""
    out = []
    for element in policy.find("p:elements", NS) or []:
        kind = element.tag.split("}")[1]
        assert kind in VALUE_ELEMENTS, kind
        key = element.get("key", policy.get("key"))
        out.append((key, element.get("valueName"), kind, element))
    return out


def test_committed_templates_match_the_settings_registry(make_admx: ModuleType) -> None:
    assert ADMX.read_text(encoding="utf-8") == make_admx.render_admx(), (
        "ConsentDesk.admx is stale: run python packaging/windows/make_admx.py"
    )
    assert ADML.read_text(encoding="utf-8") == make_admx.render_adml()


def test_every_registry_value_the_code_reads_has_a_policy_and_no_more() -> None:
    written = {(key, name) for p in _policies() for key, name, _, _ in _written_values(p)}
    expected = set()
    for setting in SETTINGS:
        section, name = setting.key.split(".", 1)
        expected.add((f"{POLICY_KEY}\\{section}", name))
        expected.add((f"{POLICY_KEY}\\{LOCKED_SUBKEY}", setting.key))
    assert written == expected
    assert all(p.get("class") == "Machine" for p in _policies()), "HKLM only"


def test_every_reference_between_admx_and_adml_resolves() -> None:
    admx_text = ADMX.read_text(encoding="utf-8")
    adml = ET.parse(ADML).getroot()
    strings = {s.get("id") for s in adml.iter(f"{{{NS['p']}}}string")}
    presentations = {
        p.get("id"): {child.get("refId") for child in p}
        for p in adml.iter(f"{{{NS['p']}}}presentation")
    }
    for ref in re.findall(r"\$\(string\.([^)]+)\)", admx_text):
        assert ref in strings, ref
    for policy in _policies():
        name = policy.get("presentation", "").removeprefix("$(presentation.").removesuffix(")")
        ids = {element.get("id") for _, _, _, element in _written_values(policy)}
        assert presentations[name] == ids, name
    root = ET.parse(ADMX).getroot()
    categories = {c.get("name") for c in root.iter(f"{{{NS['p']}}}category")}
    for ref in root.iter(f"{{{NS['p']}}}parentCategory"):
        assert ref.get("ref") in categories


def _registry_value(kind: str, element: ET.Element, default: Any) -> Any:
    """What this element writes when the admin enables its policy at the setting's default."""
    if kind == "boolean":
        return 1 if default else 0
    if kind == "decimal":
        return int(default)
    if kind == "enum":
        options = [v.text for v in element.findall("p:item/p:value/p:string", NS)]
        assert default in options
        return default
    if kind == "multiText":
        return list(default)
    return str(default)


def test_what_each_policy_writes_is_read_as_a_valid_locked_setting() -> None:
    registry: dict[str, dict[str, Any]] = {}
    by_key = {s.key: s for s in SETTINGS}
    for policy in _policies():
        section = policy.get("key", "").rsplit("\\", 1)[1]
        for key, name, kind, element in _written_values(policy):
            if key.endswith(f"\\{LOCKED_SUBKEY}"):
                value: Any = 1  # the lock box checked
            else:
                value = _registry_value(kind, element, by_key[f"{section}.{name}"].default)
            registry.setdefault(key, {})[name] = value
    data = read_policy(FakeRegistry(registry))
    valid, problems = check_data(data, POLICY_LABEL)
    assert problems == []
    # Empty texts and lists are "not set" in the registry; every other value comes through.
    assert valid == {s.key: s.default for s in SETTINGS if s.default not in ("", ())}
    assert set(data["managed"]["locked"]) == {s.key for s in SETTINGS}
