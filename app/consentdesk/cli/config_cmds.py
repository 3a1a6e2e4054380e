"""``consentdesk config check [FILE]``: every mistake in the settings, by file, line and key.

For IT: it reads the files itself, so it runs when a broken file stops every
other command. Without FILE it checks what the desk reads: the site files, the
Windows policy, then the user's file (or ``--config``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from consentdesk.cli.common import UsageError
from consentdesk.platform.config import (
    ConfigError,
    Problem,
    check_data,
    read_source,
    site_config_files,
    user_config_file,
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "config",
        help="check the settings files (site and user)",
        description="Check Consent Desk's settings files.",
    )
    actions = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="list every mistake in a settings file, with file, line and key",
        description="Check FILE, or every settings file this desk reads (site files, the "
        "Windows policy, the user's file). Prints FILE:LINE: KEY PROBLEM per mistake and "
        "exits 1 if there is any, 0 if all are valid.",
    )
    check.add_argument("file", nargs="?", metavar="FILE", help="the file to check")
    check.set_defaults(handler=check_cmd, without_context=True)


def _check_file(path: Path, *, user: bool) -> tuple[list[Problem], int]:
    try:
        data, lines = read_source(path)
    except ConfigError as exc:
        return [Problem(str(exc), None, None, "")], 0
    problems: list[Problem] = []
    if user and "managed" in data:
        data = {k: v for k, v in data.items() if k != "managed"}
        problems.append(
            Problem(str(path), lines.get("[managed]"), None, "[managed] belongs in the site file")
        )
    valid, found = check_data(data, path, lines)
    return problems + found, len(valid)


def _sources(args: argparse.Namespace) -> list[tuple[Path, bool]]:
    """(file, is the user's own) in the order the desk reads them."""
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
        return [(path, False)]
    user = Path(args.config) if args.config else user_config_file()
    found = [(p, False) for p in site_config_files() if p.is_file()]
    return found + ([(user, True)] if user.is_file() else [])


def check_cmd(args: argparse.Namespace, _ctx: object) -> int:
    problems: list[Problem] = []
    checked = []
    for path, user in _sources(args):
        found, count = _check_file(path, user=user)
        problems += found
        if not found:
            checked.append(f"OK: {path} ({count} setting{'s' if count != 1 else ''})")
    if not args.file:
        problems += _policy_problems()
    for line in checked:
        print(line)
    for problem in problems:
        print(problem)
    if not checked and not problems:
        print("OK: no settings files; every setting has its default")
    return 1 if problems else 0


def _policy_problems() -> list[Problem]:
    """The Windows policy's mistakes (nothing elsewhere)."""
    from consentdesk.platform.policy import POLICY_LABEL, read_policy

    try:
        policy = read_policy()
    except ConfigError as exc:
        return [Problem(str(exc), None, None, "")]
    return check_data(policy, POLICY_LABEL)[1]
