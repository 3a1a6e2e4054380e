"""``consentdesk changes``: the embedded ledger's change feed as JSON lines.

Each line is one change (``type``, ``timestamp``, ``data`` with ``cursor``), in
ledger order; pass the last ``cursor`` seen (or the ``next`` of the final
``{"next": ...}`` line) as ``--after`` to resume. ``--follow`` keeps waiting for
new entries. Subjects appear as a pseudonymous ``subject_id``; ``--numbers``
adds the number.
"""

from __future__ import annotations

import argparse
import json
import sys

from consentdesk.cli.common import Context, UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    changes = sub.add_parser(
        "changes",
        help="the local ledger's change feed (status, request and incident changes)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    changes.add_argument("--after", metavar="CURSOR", default="0", help="resume after this")
    changes.add_argument("--follow", action="store_true", help="keep printing new changes")
    changes.add_argument("--numbers", action="store_true", help="include subjects' numbers")
    changes.add_argument(
        "--json", action="store_true", help="JSON lines (the only format; for scripts)"
    )
    changes.set_defaults(handler=cmd_changes)


def cmd_changes(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.domain.changes import parse_cursor, subject_pseudonym
    from consentdesk.domain.model import DomainError
    from consentdesk.stores.changes import follow, pseudonym_key, read_changes
    from consentdesk.stores.ledger import open_ledger

    try:
        after = parse_cursor(args.after)
    except DomainError as exc:
        raise UsageError(f"--after: {exc}") from None
    ledger = open_ledger(ctx.data_dir)
    try:
        key = pseudonym_key(ctx.data_dir)
        catalogue = ledger.catalogue()

        def emit(page: list[object], nxt: int) -> None:
            for change in page:
                subject = getattr(change, "subject", None)
                line = change.to_json(  # type: ignore[attr-defined]
                    subject_id=subject_pseudonym(key, subject) if subject else None,
                    include_number=args.numbers,
                )
                sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
            sys.stdout.flush()

        if not args.follow:
            while True:
                page, nxt = read_changes(ledger, catalogue, after)
                emit(list(page), nxt)
                if nxt == after:
                    break
                after = nxt
            sys.stdout.write(json.dumps({"next": str(after)}) + "\n")
            return 0
        for page, nxt in follow(ledger, catalogue, after):
            emit(list(page), nxt)
        return 0
    finally:
        ledger.close()
