"""Shared plumbing for subcommands: context, errors, output."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

# Only what every command needs: building the parser and the softphone hand-off
# (``consentdesk call``) must not load the domain model, ledger or review code.
from consentdesk.platform.config import ConfigError
from consentdesk.platform.context import Context


class UsageError(Exception):
    """A user mistake: printed as one line, exit code 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose mistakes are one line on stderr (exit 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def context_from_args(args: argparse.Namespace) -> Context:
    """The context named by the global options; a bad config file is a usage error."""
    try:
        return Context.load(config_file=args.config, data_dir=args.data_dir)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def print_json(value: Any) -> None:
    from consentdesk.domain.model import to_jsonable

    json.dump(to_jsonable(value), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def run_handler(
    handler: Callable[[argparse.Namespace, Context], int], args: argparse.Namespace, ctx: Context
) -> int:
    try:
        return handler(args, ctx)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, and keep the
        # interpreter from failing again while flushing stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:
        # Imported only once something failed, so a command that succeeds (the
        # softphone hand-off above all) never loads the backend for this.
        from consentdesk.domain.backend import BackendError
        from consentdesk.domain.model import DomainError

        if not isinstance(exc, UsageError | DomainError | BackendError | ConfigError):
            raise
        print(f"consentdesk: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, BackendError) else 2
