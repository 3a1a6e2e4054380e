"""The shipped systemd unit: systemd accepts it, it is hardened, and it runs a
command line this CLI understands."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from server_support import REPO

from consentdesk.cli import build_parser

UNIT = REPO / "packaging" / "server" / "consentdesk-server.service"
INSTALLED = "/opt/consentdesk-server/bin/consentdesk"
ANALYZE = shutil.which("systemd-analyze")

pytestmark = pytest.mark.skipif(ANALYZE is None, reason="needs systemd-analyze")


def exec_start() -> list[str]:
    line = next(x for x in UNIT.read_text().splitlines() if x.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def local_unit(tmp_path: Path) -> Path:
    """The unit with this machine's consentdesk in place of the installed path
    (verify checks that the program exists)."""
    program = Path(sys.executable).with_name("consentdesk")
    assert program.exists(), program
    text = UNIT.read_text()
    assert INSTALLED in text
    path = tmp_path / UNIT.name
    path.write_text(text.replace(INSTALLED, str(program)))
    return path


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    unit = local_unit(tmp_path)
    done = subprocess.run(
        [str(ANALYZE), "verify", unit.name], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr


def test_the_unit_is_hardened(tmp_path: Path) -> None:
    unit = local_unit(tmp_path)
    done = subprocess.run(
        [str(ANALYZE), "security", "--offline=yes", unit.name],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= 2.0, done.stdout


def test_the_unit_runs_a_command_this_cli_accepts() -> None:
    argv = exec_start()
    assert argv[0] == INSTALLED
    args = build_parser().parse_args(argv[1:])
    assert args.command == "serve"
    assert args.host == "127.0.0.1"  # nginx is the only way in
    assert args.workers >= 2
    text = UNIT.read_text()
    assert "EnvironmentFile=/etc/consentdesk-server/server.env" in text
    for setting in ("NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet="):
        assert setting in text
