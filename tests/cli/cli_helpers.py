"""Run ``consentdesk`` as a real subprocess, as people and IT scripts do."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from consentdesk.stores.ledger import FILE_NAME

Run = Callable[..., subprocess.CompletedProcess[str]]


def run_cli(
    *args: str, data_dir: Path | None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "consentdesk"]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )


def verified_count(data_dir: Path) -> int:
    """How many entries ``consentdesk ledger verify`` counts in *data_dir*."""
    result = run_cli("ledger", "verify", data_dir=data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.fullmatch(r"OK: (\d+) events verified\n", result.stdout)
    assert found, result.stdout
    return int(found.group(1))


def entry_count(data_dir: Path) -> int:
    """Entries in the ledger file, read directly (read-only) without the CLI."""
    path = data_dir / FILE_NAME
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])
    finally:
        conn.close()
