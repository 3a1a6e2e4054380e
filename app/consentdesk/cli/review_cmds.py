"""Review commands: ``review`` (the lead's window), ``export`` and ``incident``.

They work on the embedded ledger in the data folder; the signed-in user there
is the desk's own user (``general.agent``, else the login name) with admin
rights over the local file, which anyone who can open the file has anyway.
Times are read as local wall time (``--tz`` to choose the zone) or with a UTC
offset, and stored in UTC. The review, export and incident code is imported by
the commands that use it, not when the parser is built (``consentdesk call`` builds
it too and must return at once).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, tzinfo
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from consentdesk import __version__
from consentdesk.cli.common import Context, UsageError, print_json

if TYPE_CHECKING:
    from consentdesk.domain.incident import Incident
    from consentdesk.domain.review import Viewer

FORMATS = ("csv", "ts27560", "kantara")


def register(sub: Any) -> None:
    review = sub.add_parser(
        "review",
        help="open the team lead's review window",
        description="Open the review window: captured actions with their proof, QA flags, "
        "the privacy-request queue, figures, the read-access log and incident mode.",
    )
    review.set_defaults(handler=cmd_review)

    export = sub.add_parser(
        "export",
        help="export captured actions as CSV, ISO 27560 JSON or a Kantara receipt",
        description="Export the actions of a view. csv: one row per action (numbers masked "
        "unless --full-numbers); ts27560: consent records per ISO/IEC TS 27560 (plain JSON, "
        "DPV terms as values); kantara: Kantara Consent Receipts v1.1 for one customer "
        "(--number), a JSON array with one receipt per consent in force. "
        "Exports that name customers are logged as reads.",
    )
    export.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    export.add_argument("--number", metavar="NUMBER", help="only this customer (any format)")
    export.add_argument("--from", dest="first", metavar="YYYY-MM-DD", help="first local day")
    export.add_argument("--to", dest="last", metavar="YYYY-MM-DD", help="last local day")
    export.add_argument("--agent", metavar="AGENT", help="only this agent's captures")
    export.add_argument(
        "--full-numbers", action="store_true", help="csv: full numbers (logged as a read)"
    )
    export.add_argument(
        "--output", required=True, metavar="FILE", help="file to write, or - for stdout"
    )
    _tz(export)
    export.set_defaults(handler=cmd_export)

    incident = sub.add_parser(
        "incident",
        help="run a data incident: open, list, notify, close, tag a call",
        description="Incident mode (GDPR Art. 33): open an incident with its agent script, "
        "watch the 72-hour notification clock, record the authority notification, close.",
    )
    isub = incident.add_subparsers(dest="incident_command", metavar="ACTION", required=True)
    opened = isub.add_parser("open", help="open an incident (starts the 72-hour clock)")
    opened.add_argument("--title", required=True, help="short title")
    opened.add_argument("--what", required=True, metavar="TEXT", help="what happened")
    opened.add_argument(
        "--aware",
        required=True,
        metavar="TIME",
        help="when the organisation became aware, e.g. '2025-03-29 10:00' (local) or with +01:00",
    )
    opened.add_argument("--purpose", action="append", default=[], help="affected purpose id")
    opened.add_argument("--region", action="append", default=[], help="affected region, e.g. DE")
    script = opened.add_mutually_exclusive_group(required=True)
    script.add_argument("--script", metavar="TEXT", help="approved script agents read")
    script.add_argument("--script-file", metavar="FILE", help="read the script from a file")
    _tz(opened)
    _json(opened)
    opened.set_defaults(handler=cmd_incident_open)

    listing = isub.add_parser("list", help="incidents, newest first, with their clocks")
    listing.add_argument("--open", action="store_true", help="only open incidents")
    _tz(listing)
    _json(listing)
    listing.set_defaults(handler=cmd_incident_list)

    notify = isub.add_parser("notify", help="record the supervisory authority notification")
    _incident_id(notify)
    notify.add_argument("--authority", required=True, help="the supervisory authority")
    notify.add_argument("--at", metavar="TIME", help="when it was notified (default: now)")
    notify.add_argument("--reference", metavar="REF", help="the authority's case reference")
    notify.add_argument(
        "--delay-reason", metavar="TEXT", help="required when notified after 72 hours"
    )
    _tz(notify)
    _json(notify)
    notify.set_defaults(handler=cmd_incident_notify)

    close = isub.add_parser("close", help="close an incident (its record stays)")
    _incident_id(close)
    close.add_argument("--summary", required=True, metavar="TEXT", help="what was done")
    _tz(close)
    _json(close)
    close.set_defaults(handler=cmd_incident_close)

    tag = isub.add_parser("tag", help="tag a call as incident-related")
    _incident_id(tag)
    tag.add_argument("--call", required=True, metavar="CALL_ID", help="the call's id")
    tag.set_defaults(handler=cmd_incident_tag)


def _tz(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tz", metavar="ZONE", help="time zone, e.g. Europe/Berlin (default: local)"
    )


def _json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _incident_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("incident", metavar="ID", help="incident id (or its first 8 characters)")


# --- plumbing ------------------------------------------------------------------------


def _viewer(ctx: Context, *, reviewing: bool = True) -> Viewer:
    """Who is at this desk: ``general.agent`` (else the login name) in the role
    ``general.role``; commands for *reviewing* refuse agents."""
    from consentdesk.domain.review import Role, Viewer

    name = str(ctx.config.get("general.agent")).strip() or getpass.getuser()
    role = Role(str(ctx.config.get("general.role")))
    if reviewing and role == Role.AGENT:
        raise UsageError(
            "this is for team leads and admins, and this desk's role is agent "
            "(general.role; IT sets and locks it)"
        )
    return Viewer(name, role)


def _zone(args: argparse.Namespace, ctx: Context) -> tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from consentdesk.domain.review import local_zone

    name = getattr(args, "tz", None)
    if not name:
        return local_zone(str(ctx.config.get("general.timezone")))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"--tz: unknown time zone {name!r} (e.g. Europe/Berlin)") from None


@contextmanager
def _source(ctx: Context) -> Iterator[Any]:
    from consentdesk.platform.calendar import controller_calendar
    from consentdesk.stores.ledger import open_ledger
    from consentdesk.stores.review_access import embedded_review

    viewer = _viewer(ctx)
    ledger = open_ledger(ctx.data_dir, calendar=controller_calendar(ctx.config))
    try:
        source = embedded_review(ledger, viewer, owns_ledger=True)
    except BaseException:
        ledger.close()
        raise
    try:
        yield source
    finally:
        source.close()


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option}: not a date: {text[:20]!r} (use YYYY-MM-DD)") from None


@contextmanager
def _output(target: str) -> Iterator[IO[str]]:
    """stdout, or a file written beside its final name and moved into place."""
    if target == "-":
        yield sys.stdout
        return
    path = Path(target)
    if path.is_dir():
        raise UsageError(f"--output: {target} is a folder")
    part = path.with_name(path.name + ".part")
    try:
        with part.open("w", encoding="utf-8", newline="") as fh:
            yield fh
        os.replace(part, path)
    except OSError as exc:
        raise UsageError(f"--output: cannot write {target}: {exc.strerror}") from None
    finally:
        part.unlink(missing_ok=True)


@contextmanager
def _incidents(ctx: Context, *, managing: bool) -> Iterator[tuple[Any, Any, Viewer]]:
    """``(ledger, incidents, viewer)``: everyone lists and tags; *managing* (open,
    notify, close) is for leads and admins."""
    from consentdesk.stores.ledger import open_ledger
    from consentdesk.stores.review_sql import LedgerIncidents

    viewer = _viewer(ctx, reviewing=managing)
    with open_ledger(ctx.data_dir) as ledger:
        yield ledger, LedgerIncidents(ledger, viewer), viewer


# --- review and export ---------------------------------------------------------------


def cmd_review(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.platform.calendar import controller_calendar
    from consentdesk.stores.ledger import open_ledger
    from consentdesk.stores.review_access import embedded_review
    from consentdesk.stores.review_sql import SqlReviewSource

    viewer = _viewer(ctx)

    def open_source() -> SqlReviewSource:
        ledger = open_ledger(ctx.data_dir, calendar=controller_calendar(ctx.config))
        try:
            return embedded_review(ledger, viewer, owns_ledger=True)
        except BaseException:
            ledger.close()
            raise

    try:
        from consentdesk.gui.app import DisplayUnavailable
        from consentdesk.gui.review.main import run_review
    except ImportError as exc:
        raise UsageError(f"cannot start the review window: {exc}") from None
    try:
        return run_review(ctx, viewer, open_source)
    except DisplayUnavailable as exc:
        raise UsageError(str(exc)) from None


def cmd_export(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.domain import phone
    from consentdesk.domain.export import (
        KANTARA_SCHEMA,
        TS27560_SCHEMA,
        Controller,
        customers_requests,
        ts27560_records,
        view_rows,
        write_actions_csv,
        write_json,
    )
    from consentdesk.domain.kantara import kantara_receipts
    from consentdesk.domain.review import ReviewFilter, Search, SearchKind, local_days

    tz = _zone(args, ctx)
    first, last = _day(args.first, "--from"), _day(args.last, "--to")
    since = until = None
    if first is not None or last is not None:
        # One day given: that day alone.
        since, until = local_days(first or last or date.min, last or first or date.max, tz)
    number = None
    if args.number is not None:
        try:
            number = phone.normalize(args.number, ctx.region)
        except phone.InvalidNumber as exc:
            raise UsageError(f"--number: {exc}") from None
    if args.format == "kantara" and number is None:
        raise UsageError("--format kantara needs --number (a receipt is for one customer)")
    flt = ReviewFilter(
        agent=args.agent,
        since=since,
        until=until,
        search=Search(SearchKind.NUMBER, number) if number else None,
    )
    controller = Controller.from_config(ctx.config)
    with _source(ctx) as source:
        if args.format == "csv":
            rows = view_rows(source, flt, full_numbers=args.full_numbers)
            with _output(args.output) as out:
                count = write_actions_csv(rows, out, tz=tz, bom=args.output != "-")
            what = f"{count} actions"
        elif args.format == "ts27560":
            events = list(source.export_events(flt))
            doc = ts27560_records(
                events,
                source.catalogue(),
                controller,
                view=flt.describe(),
                generator=f"consentdesk {__version__}",
                requests=customers_requests(source, events),
            )
            with _output(args.output) as out:
                write_json(doc, out, schema_name=TS27560_SCHEMA)
            what = f"{doc['export']['record_count']} consent records"
        else:
            assert number is not None
            receipts = kantara_receipts(
                source.customer_history(number),
                source.catalogue(),
                controller,
                requests=source.customer_requests(number),
            )
            with _output(args.output) as out:
                write_json(receipts, out, schema_name=KANTARA_SCHEMA)
            what = f"{len(receipts)} consent receipt{'s' if len(receipts) != 1 else ''}"
    if args.output != "-":
        print(f"Wrote {what} to {args.output}.")
    return 0


# --- incidents -----------------------------------------------------------------------


def _find(source: Any, text: str) -> Incident:
    wanted = text.strip().lower()
    if len(wanted) < 8:
        raise UsageError("give at least the first 8 characters of the incident id")
    found = [i for i in source.incidents() if str(i.incident_id).startswith(wanted)]
    if not found:
        raise UsageError(f"no incident {text!r} (see 'consentdesk incident list')")
    if len(found) > 1:
        raise UsageError(f"{text!r} matches several incidents; give more of the id")
    incident: Incident = found[0]
    return incident


def _show(incident: Incident, tz: tzinfo) -> str:
    from consentdesk.domain.incident import describe_clock, notification_clock
    from consentdesk.domain.model import utcnow

    state = "open" if incident.is_open else "closed"
    clock = describe_clock(notification_clock(incident, utcnow()), tz)
    return (
        f"{str(incident.incident_id)[:8]}  {state:<6}  {incident.opened.title}\n          {clock}"
    )


def _print_incident(args: argparse.Namespace, incident: Incident, tz: tzinfo, verb: str) -> None:
    if args.json:
        print_json(incident)
    else:
        print(f"{verb}:\n{_show(incident, tz)}")


def cmd_incident_open(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.domain.incident import IncidentOpened, parse_local_time

    tz = _zone(args, ctx)
    if args.script_file:
        try:
            script = Path(args.script_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--script-file: cannot read {args.script_file}: {exc}") from None
    else:
        script = args.script
    with _incidents(ctx, managing=True) as (ledger, source, viewer):
        catalogue = ledger.catalogue()
        for p in args.purpose:
            catalogue.get(p)
        note = IncidentOpened(
            incident_id=uuid.uuid4(),
            title=args.title,
            what_happened=args.what,
            aware_at=parse_local_time(args.aware, tz),
            purposes=tuple(args.purpose),
            regions=tuple(args.region),
            script=script,
            by=viewer.name,
        )
        incident = source.record_incident(note)
    _print_incident(args, incident, tz, "Opened")
    return 0


def cmd_incident_list(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.domain.review import format_local

    tz = _zone(args, ctx)
    with _incidents(ctx, managing=False) as (_ledger, source, _who):
        found = list(source.incidents(open_only=args.open))
    if args.json:
        print_json(found)
        return 0
    if not found:
        print("No incidents." if not args.open else "No open incidents.")
    for incident in found:
        print(_show(incident, tz))
        print(f"          aware since {format_local(incident.opened.aware_at, tz)}")
    return 0


def _record(
    args: argparse.Namespace,
    ctx: Context,
    build: Callable[[Viewer, Incident, tzinfo], Any],
    verb: str,
) -> int:
    tz = _zone(args, ctx)
    with _incidents(ctx, managing=True) as (_ledger, source, viewer):
        incident = _find(source, args.incident)
        updated = source.record_incident(build(viewer, incident, tz))
    _print_incident(args, updated, tz, verb)
    return 0


def cmd_incident_notify(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.domain.incident import AuthorityNotified, parse_local_time
    from consentdesk.domain.model import utcnow

    def build(viewer: Viewer, incident: Incident, tz: tzinfo) -> AuthorityNotified:
        return AuthorityNotified(
            incident_id=incident.incident_id,
            notified_at=parse_local_time(args.at, tz) if args.at else utcnow(),
            authority=args.authority,
            by=viewer.name,
            authority_ref=args.reference,
            delay_reason=args.delay_reason,
        )

    return _record(args, ctx, build, "Authority notification recorded")


def cmd_incident_close(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.domain.incident import IncidentClosed

    def build(viewer: Viewer, incident: Incident, _tz: tzinfo) -> IncidentClosed:
        return IncidentClosed(incident.incident_id, args.summary, by=viewer.name)

    return _record(args, ctx, build, "Closed")


def cmd_incident_tag(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.domain.incident import CallTag

    with _incidents(ctx, managing=False) as (_ledger, source, viewer):
        incident = _find(source, args.incident)
        tag = source.tag_call(CallTag(incident.incident_id, args.call, viewer.name))
    print(f"Call {tag.call_id} tagged for incident {str(incident.incident_id)[:8]}.")
    return 0
