"""``consentdesk mail set-password``: the SMTP password for receipt e-mails, into the
OS keyring (never a file); the host and user come from ``mail.smtp_host`` and
``mail.smtp_user``."""

from __future__ import annotations

import argparse
import getpass
import sys

from consentdesk.cli.common import Context, UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mail = sub.add_parser("mail", help="receipt e-mails: the SMTP password in the OS keyring")
    actions = mail.add_subparsers(dest="mail_command", metavar="ACTION", required=True)
    setpw = actions.add_parser(
        "set-password",
        help="store the SMTP password for mail.smtp_user at mail.smtp_host (read from stdin)",
    )
    setpw.set_defaults(handler=cmd_set_password)


def cmd_set_password(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.platform.secrets import set_smtp_password

    host = str(ctx.config.get("mail.smtp_host")).strip()
    user = str(ctx.config.get("mail.smtp_user")).strip()
    if not host or not user:
        raise UsageError("set mail.smtp_host and mail.smtp_user first")
    if sys.stdin.isatty():
        password = getpass.getpass(f"SMTP password for {user} at {host}: ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        set_smtp_password(host, user, password)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(f"stored in the OS keyring for {user} at {host}")
    return 0
