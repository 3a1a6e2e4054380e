"""consentdesk(1), generated from the command line's own argparse help.

    python packaging/manpage.py [--no-server] OUT.1

Every command and option in the page comes from ``consentdesk.cli.build_parser``,
so the page cannot drift from ``consentdesk --help``. ``--no-server`` leaves out
the team-server commands, as the desktop build does.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from consentdesk import __version__


def _roff(text: str) -> str:
    """Escape text for roff: backslashes, hyphens, non-ASCII, leading dots/quotes."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = "".join(c if ord(c) < 128 else f"\\[u{ord(c):04X}]" for c in text)
    lines = []
    for line in text.splitlines():
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _options(parser: argparse.ArgumentParser) -> list[str]:
    out: list[str] = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        if action.option_strings:
            metavar = ""
            if action.nargs != 0:
                metavar = " " + (action.metavar or action.dest.upper())
                if action.choices and not action.metavar:
                    metavar = " {" + ",".join(map(str, action.choices)) + "}"
            names = ", ".join(f"\\fB{_roff(o)}\\fR" for o in action.option_strings)
            label = names + (f" \\fI{_roff(metavar.strip())}\\fR" if metavar else "")
        else:
            label = f"\\fI{_roff(str(action.metavar or action.dest))}\\fR"
        out += [".TP", label, _roff(action.help or "")]
    return out


def _subparsers(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    found: list[tuple[str, str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {c.dest: c.help or "" for c in action._choices_actions}
            for name, sub in action.choices.items():
                found.append((name, helps.get(name, ""), sub))
    return found


def _command(prefix: str, parser: argparse.ArgumentParser, summary: str) -> list[str]:
    usage = " ".join(parser.format_usage().split()).removeprefix("usage: ")
    out = [".SS " + _roff(prefix), _roff(summary or parser.description or "")]
    if parser.description and parser.description != summary:
        out += [".PP", _roff(parser.description)]
    out += [".PP", ".nf", _roff(usage), ".fi"]
    options = _options(parser)
    if options:
        out += [".RS", *options, ".RE"]
    for name, help_, sub in _subparsers(parser):
        out += _command(f"{prefix} {name}", sub, help_)
    return out


def render(parser: argparse.ArgumentParser, *, date: dt.date | None = None) -> str:
    day = (date or dt.date.today()).isoformat()
    usage = " ".join(parser.format_usage().split()).removeprefix("usage: ")
    lines = [
        f'.TH CONSENTDESK 1 "{day}" "consentdesk {__version__}" "User Commands"',
        ".SH NAME",
        "consentdesk \\- " + _roff(parser.description or "Consent Desk"),
        ".SH SYNOPSIS",
        ".nf",
        _roff(usage),
        ".fi",
        ".SH DESCRIPTION",
        "Without a command, \\fBconsentdesk\\fR opens the agent sidebar. Each command "
        "prints one line on standard error and exits non\\-zero on a mistake.",
        ".SH OPTIONS",
        *_options(parser),
        ".SH COMMANDS",
    ]
    for name, help_, sub in _subparsers(parser):
        lines += _command(f"consentdesk {name}", sub, help_)
    lines += [
        ".SH FILES",
        ".TP",
        "\\fI/etc/xdg/consentdesk/config.toml\\fR",
        "Managed settings for every user of this machine (check with "
        "\\fBconsentdesk config check\\fR).",
        ".TP",
        "\\fI~/.config/consentdesk/config.toml\\fR",
        "The user's own settings.",
        ".SH ENVIRONMENT",
        ".TP",
        "\\fBCONSENTDESK_DATA_DIR\\fR",
        "Ledger and state folder.",
        ".TP",
        "\\fBCONSENTDESK_SITE_CONFIG\\fR",
        "A site settings file to read instead of the managed one.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--no-server", action="store_true", help="leave out server commands")
    args.add_argument("out", type=Path)
    ns = args.parse_args(argv)
    from consentdesk.cli import build_parser

    page = render(build_parser(server=not ns.no_server))
    ns.out.write_text(page, encoding="utf-8")
    print(ns.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
