"""The frozen app and the .deb: build, inspect, unpack into a throwaway root, run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from consentdesk import __version__
from consentdesk.platform.config import SETTINGS, Config

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
ICON_SIZES = ("16x16", "22x22", "24x24", "32x32", "48x48", "64x64", "128x128", "256x256", "512x512")


RunApp = Callable[..., subprocess.CompletedProcess[str]]


# --- the one-folder build ----------------------------------------------------------------


def test_frozen_app_fits_the_size_budget_without_unused_qt(
    frozen_app: Path, builder: ModuleType
) -> None:
    assert builder.tree_size(frozen_app) <= 150 * MIB
    names = {p.name for p in frozen_app.rglob("*")}
    for unused in ("QtQml", "QtQuick", "QtWebEngineCore", "Qt3DCore", "QtMultimedia", "QtPdf"):
        assert not any(unused in name for name in names), unused
    assert not any("qmltooling" in str(p) for p in frozen_app.rglob("*"))
    translations = [p.name for p in frozen_app.rglob("*.qm")]
    assert translations and all(n.startswith(("qt_", "qtbase_")) for n in translations)
    assert not any(
        p.name.startswith(("fastapi", "sqlalchemy", "uvicorn")) for p in frozen_app.rglob("*")
    )


def test_frozen_app_carries_its_resources(frozen_app: Path) -> None:
    source = ROOT / "resources"
    (bundled,) = (p.parent for p in frozen_app.rglob("resources/purposes.toml"))
    expected = {p.relative_to(source) for p in source.rglob("*") if p.is_file()}
    assert {p.relative_to(bundled) for p in bundled.rglob("*") if p.is_file()} == expected
    for rel in expected:
        assert (bundled / rel).read_bytes() == (source / rel).read_bytes(), rel


def test_frozen_app_links_only_libraries_it_carries_or_the_system_has(
    frozen_app: Path, builder: ModuleType
) -> None:
    # The bootloader puts _internal on the library path; ldd should see the same.
    env = {"LD_LIBRARY_PATH": str(frozen_app / "_internal")}
    missing = set()
    for path in builder.elf_files(frozen_app):
        out = subprocess.run(
            ["ldd", str(path)], capture_output=True, text=True, check=False, env=env
        ).stdout
        missing.update(line.split()[0] for line in out.splitlines() if "not found" in line)
    assert missing == set()


def test_frozen_version(frozen_app: Path, run_app: RunApp) -> None:
    result = run_app(frozen_app / "consentdesk", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"consentdesk {__version__}"


def test_frozen_smoke_start(frozen_app: Path, run_app: RunApp) -> None:
    result = run_app(frozen_app / "consentdesk", "--smoke")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("smoke ok: sidebar painted")


def test_frozen_support_bundle(frozen_app: Path, run_app: RunApp, tmp_path: Path) -> None:
    output = tmp_path / "bundle.zip"
    result = run_app(frozen_app / "consentdesk", "support-bundle", "--output", output)
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(output) as bundle:
        versions = bundle.read("versions.json").decode()
    assert '"frozen": true' in versions and '"qt_runtime": "6.' in versions


def test_frozen_bad_command_is_a_usage_error_not_a_traceback(
    frozen_app: Path, run_app: RunApp
) -> None:
    result = run_app(frozen_app / "consentdesk", "no-such-command")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


# --- the .deb ----------------------------------------------------------------------------


def deb_field(deb: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_deb_contents(deb_file: Path) -> None:
    listing = subprocess.run(
        ["dpkg-deb", "--contents", str(deb_file)], capture_output=True, text=True, check=True
    ).stdout
    entries = {line.split()[5]: line for line in listing.splitlines()}
    assert entries["./usr/lib/consentdesk/consentdesk"].startswith("-rwxr-xr-x root/root")
    assert "./usr/bin/consentdesk -> ../lib/consentdesk/consentdesk" in listing
    for path in (
        "./usr/share/applications/consentdesk.desktop",
        "./usr/share/consentdesk/autostart/consentdesk.desktop",
        "./etc/xdg/consentdesk/config.toml",
        "./usr/share/icons/hicolor/scalable/apps/consentdesk.svg",
        "./usr/share/doc/consentdesk/copyright",
        "./usr/share/doc/consentdesk/changelog.gz",
        "./usr/share/man/man1/consentdesk.1.gz",
        "./usr/share/metainfo/com.consentdesk.ConsentDesk.metainfo.xml",
        "./usr/share/lintian/overrides/consentdesk",
        *(f"./usr/share/icons/hicolor/{size}/apps/consentdesk.png" for size in ICON_SIZES),
    ):
        assert path in entries, path
        assert entries[path].split()[1] == "root/root"
    assert not any(p.startswith("./etc/xdg/autostart") for p in entries)


def test_deb_control_fields(deb_file: Path, builder: ModuleType) -> None:
    assert deb_field(deb_file, "Package") == "consentdesk"
    assert deb_field(deb_file, "Version") == builder.debian_version(__version__)
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout
    assert deb_field(deb_file, "Architecture") == arch.strip()
    assert "<" in deb_field(deb_file, "Maintainer")
    assert int(deb_field(deb_file, "Installed-Size")) * 1024 >= 50 * MIB
    assert deb_field(deb_file, "Depends").startswith("libc6 (>= 2.")
    assert deb_field(deb_file, "Description").startswith("Consent and privacy-request sidebar")
    info = subprocess.run(
        ["dpkg-deb", "-I", str(deb_file), "conffiles"], capture_output=True, text=True, check=True
    ).stdout
    assert info.split() == ["/etc/xdg/consentdesk/config.toml"]


def test_deb_depends_cover_every_library_the_bundle_leaves_to_the_system(
    frozen_app: Path, deb_file: Path, builder: ModuleType
) -> None:
    depends = {d.split()[0] for d in deb_field(deb_file, "Depends").split(", ")}
    # What Qt's xcb and Wayland platforms, fonts and D-Bus need on any desktop.
    assert {
        "libc6",
        "libgl1",
        "libegl1",
        "libfontconfig1",
        "libglib2.0-0",
        "libdbus-1-3",
        "libxcb-cursor0",
        "libxkbcommon-x11-0",
        "libwayland-client0",
    } <= depends
    uncovered = {}
    for soname in sorted(builder.external_sonames(frozen_app)):
        owners = subprocess.run(
            ["dpkg", "-S", f"*/{soname}"], capture_output=True, text=True, check=False
        ).stdout
        packages = {line.split(":")[0] for line in owners.splitlines() if line}
        if not packages & depends:
            uncovered[soname] = sorted(packages) or "not installed here"
    assert uncovered == {}


def test_maintainer_scripts_are_quiet_and_never_fatal(deb_file: Path, tmp_path: Path) -> None:
    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", str(deb_file), str(control)], check=True)
    for name in ("postinst", "postrm"):
        script = control / name
        assert script.stat().st_mode & 0o111
        assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0
        text = script.read_text(encoding="utf-8")
        assert "update-desktop-database -q /usr/share/applications || true" in text


# --- installed into a throwaway root -------------------------------------------------------


def test_installed_desktop_entries_validate_and_claim_the_uri_scheme(installed_root: Path) -> None:
    entry = installed_root / "usr/share/applications/consentdesk.desktop"
    autostart = installed_root / "usr/share/consentdesk/autostart/consentdesk.desktop"
    for path in (entry, autostart):
        result = subprocess.run(
            ["desktop-file-validate", str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0 and "error" not in result.stdout, result.stdout
    lines = entry.read_text(encoding="utf-8").splitlines()
    assert "MimeType=x-scheme-handler/consentdesk;" in lines
    assert "Exec=consentdesk open-uri %u" in lines
    assert "Icon=consentdesk" in lines
    # What postinst's update-desktop-database produces on the target machine.
    subprocess.run(
        ["update-desktop-database", "-q", str(entry.parent)], check=True, capture_output=True
    )
    cache = (entry.parent / "mimeinfo.cache").read_text(encoding="utf-8")
    assert "x-scheme-handler/consentdesk=consentdesk.desktop;" in cache.splitlines()


def test_installed_binary_version_and_smoke(installed_root: Path, run_app: RunApp) -> None:
    launcher = installed_root / "usr/bin/consentdesk"
    assert launcher.is_symlink()
    version = run_app(launcher, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"consentdesk {__version__}"
    smoke = run_app(launcher, "--smoke")
    assert smoke.returncode == 0, smoke.stderr
    assert smoke.stdout.startswith("smoke ok: sidebar painted")


def test_installed_site_config_is_a_commented_sample_of_every_setting(
    installed_root: Path, tmp_path: Path
) -> None:
    text = (installed_root / "etc/xdg/consentdesk/config.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    assert data and all(body == {} for body in data.values()), "every key is commented out"
    # Uncommented, it is a valid site file naming every setting at its default.
    lines = [
        line[2:] if line.startswith("# ") and " = " in line else line for line in text.splitlines()
    ]
    site = tmp_path / "site.toml"
    site.write_text("\n".join(lines), encoding="utf-8")
    config = Config.load(user_file=tmp_path / "absent.toml", site_files=[site])
    for setting in SETTINGS:
        assert setting.key in config.site, setting.key
        assert config.get(setting.key) == setting.default
    assert config.locked == {"server.url", "server.ca_bundle"}


def test_committed_sample_matches_the_settings_registry(managed_config: ModuleType) -> None:
    committed = Path(managed_config.TARGET).read_text(encoding="utf-8")
    assert committed == managed_config.render_sample(), (
        "resources/desktop/config.toml is stale: run python packaging/managed_config.py"
    )


def _wait_for_sidebar(probe: Path, deadline_s: float = 45.0) -> bool:
    """Poll for the started sidebar's first-paint probe; kill it by pid if it never comes."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if probe.is_file() and probe.read_text(encoding="utf-8").strip():
            return True
        time.sleep(0.1)
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(probe).encode() in (proc / "environ").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
        except OSError:
            continue
    return False


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(
            ["consentdesk://call?number=%2B4915112345678&id=pkg-1&event=incoming"], id="uri"
        ),
        pytest.param([], id="menu"),
    ],
)
def test_installed_desktop_entry_starts_the_sidebar(
    installed_root: Path, tmp_path: Path, app_environment: dict[str, str], args: list[str]
) -> None:
    """What the desktop runs for the menu entry and for consentdesk:// links (Exec line)."""
    entry = (installed_root / "usr/share/applications/consentdesk.desktop").read_text()
    (exec_line,) = [line for line in entry.splitlines() if line.startswith("Exec=")]
    command = exec_line.removeprefix("Exec=").split()
    assert command[-1] == "%u"
    probe = tmp_path / "first-paint"
    runtime = Path(tempfile.mkdtemp(prefix="cdrun-"))  # socket paths max out at 108 bytes
    env = {
        **app_environment,
        "CONSENTDESK_STARTUP_PROBE": str(probe),
        "XDG_RUNTIME_DIR": str(runtime),
        "PATH": f"{installed_root / 'usr/bin'}:{os.environ['PATH']}",
    }
    try:
        result = subprocess.run(
            [*command[:-1], *args], capture_output=True, text=True, timeout=30, env=env, check=False
        )
        assert result.returncode == 0, result.stderr
        assert _wait_for_sidebar(probe), "no sidebar painted"
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
