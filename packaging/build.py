"""Build Consent Desk for the desktop, one command per artefact.

    python packaging/build.py app    # one-folder build      -> dist/consentdesk/
    python packaging/build.py deb    # app + Debian package  -> dist/consentdesk_<v>_<arch>.deb
    python packaging/build.py msi --payload DIR   # MSI from DIR with wixl (checks the WiX source)

Run with the project's venv Python (PyInstaller from the ``packaging`` extra). The real
Windows MSI is built on Windows from the PyInstaller output there (packaging/README.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.utils
import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
sys.path.insert(0, str(PACKAGING))
import hygiene  # noqa: E402 (a script beside this one, not a package)

sys.path.remove(str(PACKAGING))
SPEC = PACKAGING / "pyinstaller" / "consentdesk.spec"
WXS = PACKAGING / "windows" / "consentdesk.wxs"
DESKTOP = ROOT / "resources" / "desktop"
METAINFO = DESKTOP / "com.consentdesk.ConsentDesk.metainfo.xml"
DEBIAN = PACKAGING / "debian"
# The app's folder in the package: under /usr/lib (Debian policy keeps /opt for
# the local administrator), reached from /usr/bin by a relative link.
APP_DIR = Path("usr/lib/consentdesk")
ICONS = ROOT / "resources" / "icons" / "app"
SIZE_BUDGET = 150 * 1024 * 1024

DEB_NAME = "consentdesk"
DEB_MAINTAINER = os.environ.get("DEB_MAINTAINER", "Consent Desk Team <support@consentdesk.invalid>")
DEB_DESCRIPTION = """\
Consent and privacy-request sidebar for contact-center agents
 Consent Desk shows a caller's consent status and privacy requests beside the
 softphone and records consents, withdrawals and requests after a scripted
 disclosure. Softphones pop callers via consentdesk://call?number=... or the
 `consentdesk call NUMBER` command."""
# Depends is computed: the packages that own the libraries the bundle links but does
# not carry (the spec leaves the desktop's own libraries to the system).
DEB_RECOMMENDS = (
    "desktop-file-utils",
    "hicolor-icon-theme",
    "xdg-utils",
    "gnome-keyring | kwalletmanager",
)

POSTINST = """\
#!/bin/sh
# Register the consentdesk:// handler and the icons; quiet and never fatal.
set -e
if [ "$1" = "configure" ]; then
    if command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database -q /usr/share/applications || true
    fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1; then
        gtk-update-icon-cache -q -t -f /usr/share/icons/hicolor || true
    fi
fi
exit 0
"""
POSTRM = """\
#!/bin/sh
# Drop the consentdesk:// handler from the desktop database after removal.
set -e
if [ "$1" = "remove" ] || [ "$1" = "purge" ]; then
    if command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database -q /usr/share/applications || true
    fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1; then
        gtk-update-icon-cache -q -t -f /usr/share/icons/hicolor || true
    fi
fi
exit 0
"""


COPYRIGHT = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: consentdesk

Files: *
Copyright: 2026 Consent Desk
License: Proprietary
 All rights reserved. /usr/lib/consentdesk bundles Python, Qt and PySide6 (LGPLv3)
 and other open-source libraries under their own licences.
"""


class BuildError(Exception):
    """A build step failed; the message says which and why."""


def app_version() -> str:
    try:
        return metadata.version("consentdesk")
    except metadata.PackageNotFoundError:
        raise BuildError("consentdesk is not installed in this Python (pip install -e .)") from None


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-15:]
        raise BuildError(f"{cmd[0]} failed ({result.returncode}):\n" + "\n".join(tail))
    return result


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


# --- PyInstaller ---------------------------------------------------------------------


def build_app(dist: Path, work: Path) -> Path:
    """The one-folder app at ``dist/consentdesk``."""
    env = {**os.environ, "CONSENTDESK_VERSION": app_version()}
    run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--clean",
            "--log-level=WARN",
            f"--distpath={dist}",
            f"--workpath={work}",
            str(SPEC),
        ],
        env=env,
        cwd=ROOT,
    )
    app = dist / "consentdesk"
    if not (app / "consentdesk").is_file() and not (app / "consentdesk.exe").is_file():
        raise BuildError(f"PyInstaller left no executable in {app}")
    if sys.platform.startswith("linux"):
        try:
            hygiene.clean_search_paths(app)
        except hygiene.HygieneError as exc:
            raise BuildError(str(exc)) from None
        hygiene.fix_library_modes(app)
    return app


# --- Debian package ------------------------------------------------------------------


def debian_version(version: str) -> str:
    """PEP 440 to Debian ordering: pre-releases sort before the release (``~``)."""
    return re.sub(r"(?<=\d)\.?(a|b|rc|dev)(?=\d)", r"~\1", version)


def deb_architecture() -> str:
    return run(["dpkg", "--print-architecture"]).stdout.strip()


def elf_files(app: Path) -> list[Path]:
    return [p for p in sorted(app.rglob("*")) if p.is_file() and not p.is_symlink() and _is_elf(p)]


def glibc_floor(app: Path) -> str:
    """The newest GLIBC_x.y symbol version any file in the bundle needs."""
    versions: set[tuple[int, ...]] = set()
    for path in elf_files(app):
        out = run(["objdump", "-T", str(path)]).stdout
        versions.update(
            tuple(map(int, v.split("."))) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", out)
        )
    return ".".join(map(str, max(versions))) if versions else "2.28"


def external_sonames(app: Path) -> set[str]:
    """Libraries the bundle's files link that the bundle does not carry itself."""
    carried = {p.name for p in app.rglob("*.so*")}
    needed: set[str] = set()
    for path in elf_files(app):
        out = run(["readelf", "-d", str(path)]).stdout
        needed.update(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out))
    return needed - carried


def owning_packages(sonames: set[str]) -> dict[str, set[str]]:
    """Installed Debian packages owning each library file (empty set: not installed)."""
    result = subprocess.run(
        ["dpkg", "-S", *(f"*/{name}" for name in sorted(sonames))],
        capture_output=True,
        text=True,
        check=False,
    )
    owners: dict[str, set[str]] = {name: set() for name in sonames}
    for line in result.stdout.splitlines():
        packages, _, path = line.partition(": ")
        name = Path(path.strip()).name
        if name in owners and not packages.startswith("diversion"):
            owners[name].update(p.strip().split(":")[0] for p in packages.split(","))
    return owners


def system_depends(app: Path) -> list[str]:
    """The Depends field: owners of the libraries left to the system, libc6 versioned."""
    owners = owning_packages(external_sonames(app))
    missing = sorted(name for name, packages in owners.items() if not packages)
    if missing:
        raise BuildError(
            "the bundle links libraries this build machine does not have: "
            + ", ".join(missing)
            + " (install their packages, then build again)"
        )
    packages = set().union(*owners.values()) - {"libc6"}
    return [f"libc6 (>= {glibc_floor(app)})", *sorted(packages)]


def _is_elf(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"\x7fELF"


def build_deb(app: Path, dist: Path) -> Path:
    """The .deb from a one-folder build: /usr/lib/consentdesk, launcher, desktop entry,
    icons, man page, changelog, AppStream metainfo and lintian overrides."""
    version = debian_version(app_version())
    changelog_version = debian_changelog_version()
    if changelog_version != version:
        raise BuildError(
            f"packaging/debian/changelog starts at {changelog_version}, the app is {version}:"
            " add a changelog entry for this version"
        )
    arch = deb_architecture()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        shutil.copytree(app, root / APP_DIR, symlinks=True)
        hygiene.fix_library_modes(root / APP_DIR)
        launcher = root / "usr" / "bin" / DEB_NAME
        launcher.parent.mkdir(parents=True)
        # Relative (same top-level folder, Debian policy 10.5): also works in a root
        # unpacked elsewhere (dpkg -x).
        launcher.symlink_to(Path("../lib") / DEB_NAME / DEB_NAME)
        _copy(DESKTOP / "consentdesk.desktop", root / "usr/share/applications/consentdesk.desktop")
        _copy(
            DESKTOP / "consentdesk-autostart.desktop",
            root / "usr/share/consentdesk/autostart/consentdesk.desktop",
        )
        for icon in (ICONS / "hicolor").rglob("consentdesk.*"):
            _copy(icon, root / "usr/share/icons/hicolor" / icon.relative_to(ICONS / "hicolor"))
        site_config = root / "etc/xdg/consentdesk/config.toml"
        _install(site_config, managed_config_sample(), mode=0o644)
        docs = root / "usr/share/doc" / DEB_NAME
        _install(docs / "README.Debian", _readme_debian(), mode=0o644)
        _install(docs / "copyright", COPYRIGHT, mode=0o644)
        _install_gz(docs / "changelog.gz", (DEBIAN / "changelog").read_bytes())
        _install_gz(root / "usr/share/man/man1/consentdesk.1.gz", man_page().encode())
        _copy(METAINFO, root / "usr/share/metainfo" / METAINFO.name)
        _copy(DEBIAN / "lintian-overrides", root / "usr/share/lintian/overrides" / DEB_NAME)

        control = root / "DEBIAN"
        control.mkdir()
        depends = system_depends(app)
        installed_kb = (tree_size(root) + 1023) // 1024
        fields = {
            "Package": DEB_NAME,
            "Version": version,
            "Architecture": arch,
            "Maintainer": DEB_MAINTAINER,
            "Installed-Size": str(installed_kb),
            "Depends": ", ".join(depends),
            "Recommends": ", ".join(DEB_RECOMMENDS),
            "Section": "misc",
            "Priority": "optional",
            "Homepage": "https://consentdesk.invalid/",
            "Description": DEB_DESCRIPTION,
        }
        _install(control / "control", "".join(f"{k}: {v}\n" for k, v in fields.items()), mode=0o644)
        _install(control / "conffiles", "/etc/xdg/consentdesk/config.toml\n", mode=0o644)
        _install(control / "postinst", POSTINST, mode=0o755)
        _install(control / "postrm", POSTRM, mode=0o755)
        _install(control / "md5sums", _md5sums(root), mode=0o644)

        dist.mkdir(parents=True, exist_ok=True)
        deb = dist / f"{DEB_NAME}_{version}_{arch}.deb"
        run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(deb)])
    return deb


def debian_changelog_version() -> str:
    """The version of the newest entry in packaging/debian/changelog."""
    first = (DEBIAN / "changelog").read_text(encoding="utf-8").splitlines()[0]
    found = re.match(rf"{DEB_NAME} \((\S+)\) ", first)
    if not found:
        raise BuildError(f"packaging/debian/changelog: cannot read its first line: {first!r}")
    return found.group(1)


def man_page() -> str:
    """consentdesk(1) from the CLI's argparse help, as the desktop build offers it."""
    sys.path.insert(0, str(PACKAGING))
    try:
        from manpage import render
    finally:
        sys.path.remove(str(PACKAGING))
    from consentdesk.cli import build_parser

    return render(build_parser(server=False), date=changelog_date())


def changelog_date() -> dt.date:
    """The newest changelog entry's date: the man page's date, reproducibly."""
    text = (DEBIAN / "changelog").read_text(encoding="utf-8")
    found = re.search(r"^ -- .+?>  (.+)$", text, re.MULTILINE)
    if not found:
        raise BuildError("packaging/debian/changelog: no trailer line")
    return email.utils.parsedate_to_datetime(found.group(1)).date()


def managed_config_sample() -> str:
    sys.path.insert(0, str(PACKAGING))
    try:
        from managed_config import render_sample
    finally:
        sys.path.remove(str(PACKAGING))
    return render_sample()


def _readme_debian() -> str:
    return """\
Consent Desk for Debian
=======================

The app lives in /usr/lib/consentdesk; /usr/bin/consentdesk starts it.

Managed settings: edit /etc/xdg/consentdesk/config.toml (kept on upgrades).
Uncomment a setting (remove the "# " before it, keep its [section] line) to
preset it for every user, and list it under [managed] locked = [...] to stop
users changing it. Then run `consentdesk config check`: it names the file, line
and key of every mistake. A broken file makes the sidebar show an error window.

Autostart for every user: copy /usr/share/consentdesk/autostart/consentdesk.desktop
to /etc/xdg/autostart/.

Screen-pop: the package registers consentdesk:// URLs (x-scheme-handler/consentdesk);
softphones can also run `consentdesk call NUMBER`.

Support: `consentdesk support-bundle` writes a redacted zip for the help desk.
"""


def _md5sums(root: Path) -> str:
    lines = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] == "DEBIAN" or not path.is_file() or path.is_symlink():
            continue
        lines.append(f"{hashlib.md5(path.read_bytes()).hexdigest()}  {rel.as_posix()}\n")
    return "".join(lines)


def _install(path: Path, text: str, *, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def _install_gz(path: Path, data: bytes) -> None:
    """gzip -9n: no name or timestamp in the header, so builds are reproducible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        path.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz,
    ):
        gz.write(data)
    path.chmod(0o644)


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    dest.chmod(0o644)


# --- MSI (WiX source checked with wixl) ---------------------------------------------


def build_msi(payload: Path, dist: Path) -> Path:
    """An MSI of ``payload`` (a folder like PyInstaller's Windows output) with wixl."""
    if not (payload / "consentdeskw.exe").is_file():
        raise BuildError(f"{payload} has no consentdeskw.exe: not a Windows build folder")
    version = re.match(r"\d+(\.\d+){0,2}", app_version())
    msi_version = version.group(0) if version else "0.0.0"
    dist.mkdir(parents=True, exist_ok=True)
    msi = (dist / f"ConsentDesk-{msi_version}.msi").resolve()
    with tempfile.TemporaryDirectory() as tmp:
        # wixl looks sources up relative to its working folder only.
        stage = Path(tmp)
        (stage / "payload").symlink_to(payload, target_is_directory=True)
        shutil.copyfile(ICONS / "consentdesk.ico", stage / "consentdesk.ico")
        shutil.copyfile(WXS, stage / "consentdesk.wxs")
        listing = "".join(
            f"payload/{p.relative_to(payload).as_posix()}\n"
            for p in sorted(payload.rglob("*"))
            if p.is_file()
        )
        heat = run(
            [
                "wixl-heat",
                "-p",
                "payload/",
                "--component-group",
                "AppFiles",
                "--var",
                "var.PayloadDir",
                "--directory-ref",
                "INSTALLDIR",
                "--win64",
            ],
            input=listing,
        )
        (stage / "files.wxs").write_text(heat.stdout, encoding="utf-8")
        run(
            [
                "wixl",
                "-a",
                "x64",
                "-D",
                "Win64=yes",
                "-D",
                "PayloadDir=payload",
                "-D",
                f"ProductVersion={msi_version}",
                "-D",
                "IconFile=consentdesk.ico",
                "-o",
                str(msi),
                "consentdesk.wxs",
                "files.wxs",
            ],
            cwd=stage,
        )
    return msi


# --- command line --------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build.py", description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=("app", "deb", "msi"))
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder")
    parser.add_argument("--work", type=Path, default=ROOT / "build", help="PyInstaller work folder")
    parser.add_argument("--app", type=Path, help="deb: reuse this one-folder build")
    parser.add_argument("--payload", type=Path, help="msi: the Windows build folder to package")
    args = parser.parse_args(argv)
    try:
        if args.target == "app":
            app = build_app(args.dist, args.work)
            size = tree_size(app)
            print(f"{app} ({size / 2**20:.1f} MiB unpacked)")
            if size > SIZE_BUDGET:
                raise BuildError(f"{app} is {size / 2**20:.1f} MiB, over the 150 MiB budget")
        elif args.target == "deb":
            app = args.app or build_app(args.dist, args.work)
            deb = build_deb(app, args.dist)
            print(f"{deb} ({deb.stat().st_size / 2**20:.1f} MiB)")
        else:
            if args.payload is None:
                parser.error("msi needs --payload DIR (the Windows PyInstaller output)")
            msi = build_msi(args.payload.resolve(), args.dist)
            print(msi)
    except BuildError as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
