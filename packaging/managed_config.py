"""Write resources/desktop/config.toml: the commented managed-settings file for IT.

Generated from the settings registry so every setting, its default and its help
appear; run this after adding a setting (a test compares the committed file):
    .venv/bin/python packaging/managed_config.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from consentdesk.platform.config import SETTINGS, _toml_value

TARGET = Path(__file__).resolve().parents[1] / "resources" / "desktop" / "config.toml"

HEADER = """\
# Consent Desk: managed settings for everyone on this machine.
#
# Linux: /etc/xdg/consentdesk/config.toml. Windows: HKLM\\Software\\Policies\\ConsentDesk
# (or C:\\ProgramData\\consentdesk\\config.toml). macOS:
# /Library/Application Support/consentdesk/config.toml.
#
# These values apply before each user's own settings. Uncomment a setting (remove
# the "# " before it, leaving its [section] line as it is) to preset it for
# everyone; list it under [managed] locked to stop users changing it (the settings
# dialog then shows it as managed). Check the file with `consentdesk config check`.
# Never put tokens or passwords here: sign-in tokens live only in each user's OS
# keyring.
"""

FOOTER = """\
[managed]
# Settings users cannot change, for example:
# locked = ["server.url", "server.ca_bundle"]
"""


def render_sample() -> str:
    sections: dict[str, list[str]] = {}
    for setting in SETTINGS:
        section, name = setting.key.split(".", 1)
        body = sections.setdefault(section, [])
        body += [f"# {setting.help}", f"# {name} = {_toml_value(setting.default)}", "#"]
    lines = [HEADER]
    for section, body in sections.items():
        lines += [f"[{section}]", *body[:-1], ""]
    lines.append(FOOTER)
    return "\n".join(lines)


def main() -> int:
    TARGET.write_text(render_sample(), encoding="utf-8")
    print(TARGET)
    return 0


if __name__ == "__main__":
    sys.exit(main())
