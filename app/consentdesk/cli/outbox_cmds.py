"""``consentdesk outbox``: what this desk still holds for the team server.

Captures wait in the outbox until the server has them; a record the server
refused for good (a 4xx such as an admission refusal) stays there as
*rejected*, with the server's reason, so nothing is dropped silently.
"""

from __future__ import annotations

import argparse
from typing import Any

from consentdesk.cli.common import Context, UsageError, print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "outbox",
        help="list the records waiting for the team server, and those it refused",
        description="List the records this desk holds for the team server (server.url): "
        "waiting ones, and rejected ones with the server's reason.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of lines")
    parser.set_defaults(handler=cmd_outbox)


def cmd_outbox(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.domain import phone
    from consentdesk.stores.outbox import Outbox, outbox_path

    url = str(ctx.config.get("server.url") or "")
    if not url:
        raise UsageError("no team server is set (server.url): captures go to the embedded ledger")
    if not outbox_path(ctx.data_dir, url).exists():
        items: list[Any] = []
    else:
        box = Outbox.for_server(ctx.data_dir, url)
        try:
            items = [*box.pending(), *box.rejected()]
        finally:
            box.close()
    rows = [
        {
            "state": str(i.state),
            "kind": str(i.kind),
            "event_id": str(i.key),
            "subject": i.subject,
            "queued_at": i.queued_at.isoformat(),
            "reason": i.last_error,
        }
        for i in sorted(items, key=lambda i: i.seq)
    ]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("The outbox is empty: the team server has every record.")
        return 0
    for r in rows:
        who = phone.display(r["subject"])
        line = f"{r['state'].upper():<9} {r['kind']:<15} {r['event_id']}  {who}"
        print(line + (f"  — {r['reason']}" if r["state"] == "rejected" and r["reason"] else ""))
    return 0
