"""``consentdesk webhook``: the team server's webhook endpoints, against its database.

``add URL --events ...`` prints the signing secret once; ``list``, ``disable``,
``enable``, ``rotate-secret`` (the old secret signs beside the new one for 24
hours), ``dead-letters`` and ``replay``. The same is under /v1/admin/webhooks.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from consentdesk.cli.common import Context, print_json
from consentdesk.cli.server_cmds import _database_option, _engine, _run

EVENTS_HELP = "comma-separated: consent.changed, request.changed, incident.changed"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    webhook = sub.add_parser("webhook", help="team server webhook endpoints (signed deliveries)")
    actions = webhook.add_subparsers(dest="webhook_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="register a receiver; prints its signing secret once")
    add.add_argument("url")
    add.add_argument("--events", required=True, help=EVENTS_HELP)
    add.add_argument(
        "--numbers",
        action="store_true",
        help="send subjects' numbers (otherwise only a pseudonymous subject_id)",
    )
    add.add_argument("--by", default="admin", help="who registers it (kept with the endpoint)")
    add.set_defaults(handler=cmd_add)
    listing = actions.add_parser("list", help="registered endpoints")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)
    for name, help_text in (
        ("disable", "stop delivering to an endpoint"),
        ("enable", "deliver again (changes from now on)"),
        ("rotate-secret", "a new signing secret; the old one also signs for 24 hours"),
    ):
        p = actions.add_parser(name, help=help_text)
        p.add_argument("endpoint_id", metavar="ID")
        p.set_defaults(handler=cmd_endpoint, action=name)
    dead = actions.add_parser("dead-letters", help="deliveries that gave up")
    dead.add_argument("--endpoint", metavar="ID")
    dead.add_argument("--json", action="store_true")
    dead.set_defaults(handler=cmd_dead_letters)
    replay = actions.add_parser("replay", help="queue an endpoint's dead letters again")
    replay.add_argument("endpoint_id", metavar="ID")
    replay.add_argument("--id", type=int, action="append", dest="ids", help="only this one")
    replay.set_defaults(handler=cmd_replay)
    for p in (add, listing, dead, replay, *actions.choices.values()):
        if not any(a.dest == "database" for a in p._actions):
            _database_option(p)


def cmd_add(args: argparse.Namespace, ctx: Context) -> int:
    def body() -> int:
        from consentdesk.server.webhooks import add_endpoint

        events = [e for e in args.events.split(",") if e.strip()]
        endpoint, secret = add_endpoint(
            _engine(args), args.url, events, include_numbers=args.numbers, by=args.by
        )
        print(f"{endpoint.id}\t{endpoint.url}\t{','.join(endpoint.events)}")
        print(secret)
        print("Shown once: give this secret to the receiver to verify signatures.", file=sys.stderr)
        return 0

    return _run(body)


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    def body() -> int:
        from consentdesk.server.webhooks import list_endpoints

        found = list_endpoints(_engine(args))
        if args.json:
            print_json([e.to_json() for e in found])
        for e in found if not args.json else ():
            state = "enabled" if e.enabled else "disabled"
            numbers = "numbers" if e.include_numbers else "pseudonymous"
            print(f"{e.id}\t{state}\t{numbers}\t{','.join(e.events)}\t{e.url}")
        return 0

    return _run(body)


def cmd_endpoint(args: argparse.Namespace, ctx: Context) -> int:
    def body() -> int:
        from consentdesk.server import webhooks

        engine = _engine(args)
        if args.action == "rotate-secret":
            print(webhooks.rotate_secret(engine, args.endpoint_id))
            print("Shown once. The old secret also signs for 24 hours.", file=sys.stderr)
            return 0
        done = webhooks.set_enabled(engine, args.endpoint_id, args.action == "enable")
        print(f"{done.id}\t{'enabled' if done.enabled else 'disabled'}")
        return 0

    return _run(body)


def cmd_dead_letters(args: argparse.Namespace, ctx: Context) -> int:
    def body() -> int:
        from consentdesk.server.webhooks import dead_letters

        found: list[dict[str, Any]] = dead_letters(_engine(args), args.endpoint)
        if args.json:
            print_json(found)
            return 0
        for d in found:
            print(f"{d['id']}\t{d['endpoint_id']}\t{d['type']}\t{d['attempts']}\t{d['last_error']}")
        return 0

    return _run(body)


def cmd_replay(args: argparse.Namespace, ctx: Context) -> int:
    def body() -> int:
        from consentdesk.server.webhooks import replay

        print(f"replayed {replay(_engine(args), args.endpoint_id, args.ids)}")
        return 0

    return _run(body)
