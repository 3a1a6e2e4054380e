"""Clean packages: lintian, AppStream, man page, changelog, no build-machine paths.

The man page and changelog checks are quick; lintian and the frozen-app checks
use the session's build (``-m packaging``).
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from consentdesk import __version__
from consentdesk.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
METAINFO = ROOT / "resources" / "desktop" / "com.consentdesk.ConsentDesk.metainfo.xml"
SERVER_COMMANDS = {"serve", "db", "user", "token"}
RunApp = Callable[..., subprocess.CompletedProcess[str]]


def _need(program: str, package: str) -> str:
    found = shutil.which(program)
    if found is None:
        pytest.fail(f"{program} is not installed (Debian: apt-get install {package})")
    return found


def _commands(parser: object) -> set[str]:
    import argparse

    assert isinstance(parser, argparse.ArgumentParser)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


# --- quick: sources -------------------------------------------------------------------


def test_man_page_documents_every_command_and_renders_cleanly(
    tmp_path: Path, builder: ModuleType
) -> None:
    page = builder.man_page()
    desktop = _commands(build_parser(server=False))
    assert desktop and not desktop & SERVER_COMMANDS
    for command in desktop:
        assert f".SS consentdesk {command.replace('-', chr(92) + '-')}" in page, command
    assert ".SS consentdesk config check" in page
    assert f'"consentdesk {__version__}"' in page
    source = tmp_path / "consentdesk.1"
    source.write_text(page, encoding="ascii")  # non-ASCII is escaped for roff
    man = _need("man", "man-db")
    result = subprocess.run(
        [man, "--warnings", "-E", "UTF-8", "-l", str(source)],
        capture_output=True,
        text=True,
        env={**os.environ, "MANWIDTH": "80", "LC_ALL": "C.UTF-8"},
        check=False,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "consentdesk config check" in result.stdout


def test_server_commands_are_offered_only_where_the_server_is(builder: ModuleType) -> None:
    assert _commands(build_parser(server=True)) >= SERVER_COMMANDS
    assert not SERVER_COMMANDS & _commands(build_parser(server=False))


def test_changelog_names_this_version(builder: ModuleType) -> None:
    assert builder.debian_changelog_version() == builder.debian_version(__version__)
    text = (ROOT / "packaging" / "debian" / "changelog").read_text(encoding="utf-8")
    assert re.search(
        r"^ -- .+ <.+@.+>  \w{3}, \d{2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$", text, re.M
    )


def test_lintian_overrides_each_have_a_reason() -> None:
    lines = (ROOT / "packaging" / "debian" / "lintian-overrides").read_text().splitlines()
    for index, line in enumerate(lines):
        if line.startswith("consentdesk:"):
            assert lines[index - 1].startswith("#"), f"no reason above: {line}"


@pytest.mark.packaging
@pytest.mark.timeout(1800)
def test_appstream_metainfo_validates() -> None:
    tool = _need("appstreamcli", "appstream")
    result = subprocess.run(
        [tool, "validate", "--no-net", "--explain", str(METAINFO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not re.search(r"^[EWI]: ", result.stdout, re.M), result.stdout
    desktop_id = re.search(r'<launchable type="desktop-id">(.+?)<', METAINFO.read_text())
    assert desktop_id and (ROOT / "resources" / "desktop" / desktop_id.group(1)).is_file()


# --- the build ------------------------------------------------------------------------


@pytest.mark.packaging
@pytest.mark.timeout(1800)
def test_frozen_app_has_no_build_machine_search_paths(frozen_app: Path) -> None:
    sys.path.insert(0, str(ROOT / "packaging"))
    try:
        import hygiene
    finally:
        sys.path.remove(str(ROOT / "packaging"))
    leaks = {}
    for path in frozen_app.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.read_bytes()[:4] == b"\x7fELF":
            entries = hygiene.search_path(path)
            bad = [e for e in entries if not e.startswith("$ORIGIN")]
            if bad:
                leaks[str(path.relative_to(frozen_app))] = bad
    assert leaks == {}


@pytest.mark.packaging
@pytest.mark.timeout(1800)
def test_frozen_app_does_not_offer_server_commands(frozen_app: Path, run_app: RunApp) -> None:
    helped = run_app(frozen_app / "consentdesk", "--help")
    assert helped.returncode == 0, helped.stderr
    for command in SERVER_COMMANDS:
        assert not re.search(rf"^\s+{command}\s", helped.stdout, re.M), command
    serve = run_app(frozen_app / "consentdesk", "serve")
    assert serve.returncode == 2 and "Traceback" not in serve.stderr
    check = run_app(frozen_app / "consentdesk", "config", "check")
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.packaging
@pytest.mark.timeout(1800)
def test_deb_carries_man_page_changelog_and_metainfo(installed_root: Path) -> None:
    man = installed_root / "usr/share/man/man1/consentdesk.1.gz"
    with gzip.open(man, "rt", encoding="ascii") as fh:
        assert ".SS consentdesk config check" in fh.read()
    with gzip.open(installed_root / "usr/share/doc/consentdesk/changelog.gz", "rt") as fh:
        assert fh.readline().startswith("consentdesk (")
    shipped = installed_root / "usr/share/metainfo" / METAINFO.name
    assert shipped.read_bytes() == METAINFO.read_bytes()
    assert (installed_root / "usr/bin/consentdesk").resolve() == (
        installed_root / "usr/lib/consentdesk/consentdesk"
    )


@pytest.mark.packaging
@pytest.mark.timeout(1800)
def test_lintian_reports_no_errors_or_warnings(deb_file: Path) -> None:
    tool = _need("lintian", "lintian")
    result = subprocess.run(
        [tool, "--tag-display-limit", "0", str(deb_file)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    tags = [line for line in result.stdout.splitlines() if re.match(r"[EW]: ", line)]
    assert tags == [], "\n".join(tags)
    assert result.returncode == 0, result.stdout + result.stderr
