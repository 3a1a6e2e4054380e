"""``consentdesk webhook`` against a server database, through real subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

from server_support import sqlite_url
from test_server_cli import run


def test_webhook_endpoints_from_the_command_line(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "team.db")
    assert run("db", "upgrade", "--database", url).returncode == 0
    added = run(
        "webhook",
        "add",
        "https://crm.example.org/hooks",
        "--events",
        "consent.changed,request.changed",
        "--database",
        url,
    )
    assert added.returncode == 0, added.stderr
    first, secret = added.stdout.splitlines()
    endpoint_id = first.split("\t")[0]
    assert secret.startswith("whsec_") and "Shown once" in added.stderr

    listed = run("webhook", "list", "--json", "--database", url)
    (endpoint,) = json.loads(listed.stdout)
    assert endpoint["events"] == ["consent.changed", "request.changed"]
    assert endpoint["include_numbers"] is False and "secret" not in endpoint

    rotated = run("webhook", "rotate-secret", endpoint_id, "--database", url)
    assert rotated.returncode == 0 and rotated.stdout.strip() not in ("", secret)
    disabled = run("webhook", "disable", endpoint_id, "--database", url)
    assert disabled.stdout.strip() == f"{endpoint_id}\tdisabled"
    assert run("webhook", "dead-letters", "--json", "--database", url).stdout.strip() == "[]"
    assert run("webhook", "replay", endpoint_id, "--database", url).stdout.strip() == "replayed 0"

    bad = run("webhook", "add", "ftp://x", "--events", "consent.changed", "--database", url)
    assert bad.returncode == 2 and "http" in bad.stderr and "Traceback" not in bad.stderr
    unknown = run("webhook", "disable", "nope", "--database", url)
    assert unknown.returncode != 0 and "no such webhook endpoint" in unknown.stderr
