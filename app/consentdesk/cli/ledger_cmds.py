"""Ledger commands: demo, status, history, consent, request create/list, ledger verify.

Numbers are read as dialled in the configured region. Every command works on
the embedded ledger in the data folder (``--data-dir`` / ``CONSENTDESK_DATA_DIR``).
The ledger, rules and scripts are imported by the commands that use them, not when
the parser is built: ``consentdesk call`` builds it too and must return at once.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING

from consentdesk.cli.common import Context, UsageError, print_json

# The model's enums name the choices in --help; the telephony hand-off loads it anyway.
from consentdesk.domain.model import (
    CellStatus,
    Channel,
    ConsentEvent,
    ConsentState,
    Jurisdiction,
    PrivacyRequest,
    RequestType,
    utcnow,
)

if TYPE_CHECKING:
    from consentdesk.domain.calendars import Calendar
    from consentdesk.domain.catalogue import Catalogue
    from consentdesk.stores.ledger import EmbeddedLedger

CAPTURE_STATES = (ConsentState.GIVEN, ConsentState.REFUSED, ConsentState.WITHDRAWN)
NOT_APPLICABLE = "–"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser(
        "demo",
        help="add the demo customers to the ledger (safe to repeat)",
        description="Add realistic demo customers with consent histories and privacy "
        "requests. Running it again adds nothing.",
    )
    demo.add_argument("--json", action="store_true", help="print a machine-readable summary")
    demo.set_defaults(handler=cmd_demo)

    status = sub.add_parser(
        "status",
        help="consent grid and open privacy requests of a caller",
        description="Current consent per purpose and channel, and the caller's requests.",
    )
    _number(status)
    _json(status)
    status.set_defaults(handler=cmd_status)

    history = sub.add_parser(
        "history",
        help="every consent event of a caller, oldest first",
        description="Every consent event recorded for a caller, oldest first, corrections too.",
    )
    _number(history)
    _json(history)
    history.set_defaults(handler=cmd_history)

    consent = sub.add_parser(
        "consent",
        help="record a consent, refusal or withdrawal after the script was read",
        description="Record the caller's answer after the agent read the disclosure script. "
        "The script is rendered with the configured company and agent name, and the "
        "SHA-256 of exactly that text is recorded.",
    )
    _number(consent)
    consent.add_argument("--purpose", required=True, metavar="P", help="purpose id")
    consent.add_argument(
        "--channel", required=True, metavar="C", help="channel: " + ", ".join(Channel)
    )
    consent.add_argument("--state", required=True, metavar="S", help="given, refused or withdrawn")
    consent.add_argument("--script", required=True, metavar="ID", help="script id that was read")
    consent.add_argument("--lang", required=True, metavar="L", help="language it was read in")
    _capture_options(consent)
    consent.add_argument(
        "--agent-name",
        metavar="NAME",
        help="the agent's name as read in the script (default: general.agent_name)",
    )
    consent.add_argument("--jurisdiction", metavar="J", help="gdpr or ccpa (default: config)")
    _json(consent)
    consent.set_defaults(handler=cmd_consent)

    request = sub.add_parser(
        "request",
        help="record or list privacy requests",
        description="Record a privacy request, or list them.",
    )
    request_sub = request.add_subparsers(dest="request_command", metavar="ACTION", required=True)
    create = request_sub.add_parser(
        "create",
        help="record a privacy request; prints its reference and due date",
        description="Record a privacy request. Prints the reference to read to the caller "
        "and the date the answer is due.",
    )
    _number(create)
    create.add_argument(
        "--type", required=True, metavar="T", help="request type: " + ", ".join(RequestType)
    )
    create.add_argument("--jurisdiction", required=True, metavar="J", help="gdpr or ccpa")
    create.add_argument(
        "--received", metavar="YYYY-MM-DD", help="day the request was received (default: today)"
    )
    _capture_options(create)
    create.add_argument("--note", metavar="TEXT", help="short note for the team handling it")
    _json(create)
    create.set_defaults(handler=cmd_request_create)

    confirm = request_sub.add_parser(
        "confirm",
        help="record that receipt of a CCPA request was confirmed to the consumer",
        description="Record how receipt of a CCPA request to know, delete or correct was "
        "confirmed to the consumer (CCPA Regs §7021: within 10 business days). "
        "Stops the request's confirmation clock.",
    )
    confirm.add_argument("reference", help="the request's reference")
    confirm.add_argument(
        "--how", required=True, metavar="TEXT", help="how it was confirmed (email, letter, call)"
    )
    confirm.add_argument("--agent", required=True, help="who confirmed it")
    _json(confirm)
    confirm.set_defaults(handler=cmd_request_confirm)

    listing = request_sub.add_parser(
        "list",
        help="privacy requests, soonest due first",
        description="Privacy requests of every caller, soonest due first.",
    )
    listing.add_argument("--open", action="store_true", help="only requests still open")
    _json(listing)
    listing.set_defaults(handler=cmd_request_list)

    ledger = sub.add_parser(
        "ledger",
        help="check the ledger",
        description="Check the embedded ledger.",
    )
    ledger_sub = ledger.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)
    verify = ledger_sub.add_parser(
        "verify",
        help="check the chain, the Merkle tree and its signed checkpoints; exit 1 if broken",
        description="Walk the whole hash chain and recompute the Merkle tree, holding it "
        "against the ledger's signed checkpoints and the newest ones kept outside the file "
        "(the OS keyring, the team server's cosignature). Prints OK with the number of "
        "events, or what is broken (the first altered entry, or the missing range) and exits "
        "with status 1.",
    )
    from consentdesk.cli.log_cmds import add_key_option, cmd_ledger_key, cmd_ledger_witness

    add_key_option(verify)
    verify.set_defaults(handler=cmd_verify)
    key = ledger_sub.add_parser(
        "key",
        help="print the ledger's public key, to publish for checking receipts",
        description="Print the public key (C2SP note verifier key) the ledger signs its "
        "checkpoints with. Publish it; receipts and 'ledger verify --key' check against it.",
    )
    key.set_defaults(handler=cmd_ledger_key)
    witness = ledger_sub.add_parser(
        "witness",
        help="have the team server cosign the ledger's checkpoint (as at sign-in)",
        description="Send the ledger's newest signed checkpoint to the team server, which "
        "cosigns it only if it extends the one it cosigned before; a truncated or rewritten "
        "ledger is refused, naming what is missing. Exit status 1 on a refusal.",
    )
    witness.add_argument("--server", metavar="URL", help="team server (default: server.url)")
    witness.set_defaults(handler=cmd_ledger_witness)


def _number(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("number", metavar="NUMBER", help="phone number, e.g. +49 151 12345678")


def _json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _capture_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agent", required=True, metavar="A", help="agent id recording it")
    parser.add_argument("--call-id", metavar="X", help="softphone call id, if on a call")


# --- input --------------------------------------------------------------------------


def _choice(kind: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise UsageError(f"unknown {kind} {value!r} (choose from {', '.join(allowed)})")
    return value


def _jurisdiction(value: str) -> Jurisdiction:
    return Jurisdiction(_choice("jurisdiction", value, [j.value for j in Jurisdiction]))


def _agent(value: str) -> str:
    agent = value.strip()
    if not agent:
        raise UsageError("agent is required: --agent takes the id of the agent recording it")
    return agent


def _language(value: str) -> str:
    if not re.fullmatch(r"[a-z]{2}", value):
        raise UsageError(f"--lang {value!r} is not a two-letter language code such as en or de")
    return value


def _received(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--received {value!r} is not a date like 2025-01-31") from None


def _calendar(ctx: Context) -> Calendar:
    from consentdesk.platform.calendar import controller_calendar

    return controller_calendar(ctx.config)


def _today(ctx: Context) -> date:
    """Today in the controller's time zone (``general.timezone``)."""
    return _calendar(ctx).day_of(utcnow())


@contextmanager
def _ledger(ctx: Context, *, reading: bool = False) -> Iterator[EmbeddedLedger]:
    """The ledger; for a command that only reads, also one on read-only media."""
    from consentdesk.stores.ledger import open_ledger
    from consentdesk.stores.ledger_readonly import open_ledger_for_reading

    calendar = _calendar(ctx)
    ledger = (
        open_ledger_for_reading(ctx.data_dir, calendar=calendar)
        if reading
        else open_ledger(ctx.data_dir, calendar=calendar)
    )
    try:
        yield ledger
    finally:
        ledger.close()


def _log_read(ledger: EmbeddedLedger, ctx: Context, number: str, what: str) -> None:
    """Log that this desk's user read *number*'s data, before anything is shown.

    The reader is ``general.agent``, else the login name. A ledger on read-only
    media cannot take the entry: that is said on stderr and the read goes on.
    """
    import getpass

    from consentdesk.domain.review import ReadAccess, ReadKind
    from consentdesk.stores.ledger import LedgerReadOnly
    from consentdesk.stores.review_sql import log_read

    reader = str(ctx.config.get("general.agent")).strip() or getpass.getuser()
    try:
        log_read(ledger, ReadAccess(reader, number, ReadKind(what)))
    except LedgerReadOnly:
        print("consentdesk: the ledger is read-only: this read is not logged", file=sys.stderr)


# --- commands -----------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.stores.demo import seed

    with _ledger(ctx) as ledger:
        summary = seed(ledger, region=ctx.region)
    if args.json:
        print_json(summary)
        return 0
    print(
        f"Demo: {len(summary.subjects)} customers; "
        f"{summary.consents_added} consent events and {summary.requests_added} requests added, "
        f"{summary.consents_present + summary.requests_present} already there."
    )
    print("Numbers: " + ", ".join(summary.subjects))
    return 0


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.domain import phone

    number = phone.normalize(args.number, ctx.region)
    with _ledger(ctx, reading=True) as ledger:
        status = ledger.status(number)
        catalogue = ledger.catalogue()
        _log_read(ledger, ctx, number, "status")
    if args.json:
        print_json(status)
        return 0
    subject = status.subject
    header = [phone.display(subject.number)]
    if subject.display_name:
        header.insert(0, subject.display_name)
    if subject.customer_ref:
        header.append(f"customer {subject.customer_ref}")
    print(" · ".join(header))
    print()
    print(_grid(catalogue, status.cells))
    today = _today(ctx)
    open_requests = [r for r in status.requests if r.is_open]
    closed = [r for r in status.requests if not r.is_open]
    print()
    if open_requests:
        print("Open privacy requests")
        print(_request_table(open_requests, today, with_number=False))
    else:
        print("No open privacy requests.")
    if closed:
        print()
        print("Recently closed")
        print(_request_table(closed, today, with_number=False))
    return 0


def cmd_history(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.domain import phone

    number = phone.normalize(args.number, ctx.region)
    with _ledger(ctx, reading=True) as ledger:
        events = ledger.history(number)
        _log_read(ledger, ctx, number, "detail")
    if args.json:
        print_json(list(events))
        return 0
    if not events:
        print(f"No consent events for {phone.display(number)}.")
        return 0
    rows = [_history_row(e) for e in events]
    headers = ["when (UTC)", "purpose", "channel", "state", "script", "agent", "event", "note"]
    print(_table(headers, rows))
    return 0


def cmd_consent(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.domain import phone
    from consentdesk.domain.capture import consent_event
    from consentdesk.domain.scripts import (
        ScriptKind,
        placeholders,
        render,
        script_by_id,
        script_context,
    )

    number = phone.normalize(args.number, ctx.region)
    agent = _agent(args.agent)
    channel = Channel(_choice("channel", args.channel, [c.value for c in Channel]))
    state = ConsentState(_choice("state", args.state, [s.value for s in CAPTURE_STATES]))
    jurisdiction = _jurisdiction(args.jurisdiction or ctx.config.get("general.jurisdiction"))
    with _ledger(ctx) as ledger:
        catalogue = ledger.catalogue()
        purpose = catalogue.check(args.purpose, channel)
        script = script_by_id(
            ledger.scripts(),
            args.script,
            _language(args.lang),
            fallback=ctx.config.get("general.fallback_languages"),
        )
        if script.kind == ScriptKind.REQUEST:
            raise UsageError(f"script {script.id} is for privacy requests, not consent")
        # The name read out is the agent's, never the agent id standing in for it.
        agent_name = (args.agent_name or str(ctx.config.get("general.agent_name"))).strip()
        if not agent_name and "agent_name" in placeholders(script):
            raise UsageError(
                f"script {script.id} reads out the agent's name: give --agent-name "
                "or set general.agent_name"
            )
        context = script_context(
            language=script.language,
            company=ctx.config.get("general.company"),
            agent_name=agent_name,
            customer_name=ledger.status(number).subject.display_name,
            purposes=(purpose,),
            channels=(channel,),
        )
        event = consent_event(
            catalogue=catalogue,
            subject=number,
            purpose=purpose.id,
            channel=channel,
            state=state,
            rendered=render(script, context),
            agent=agent,
            jurisdiction=jurisdiction,
            call_id=args.call_id,
        )
        receipt = ledger.capture(event)
    if args.json:
        print_json({"event": event, "receipt": receipt})
        return 0
    notice = event.notice
    print(
        f"Recorded: {event.state} for {event.purpose} by {event.channel} "
        f"({phone.display(number)}), ledger entry {receipt.seq}"
    )
    print(f"Script {notice.script_id} v{notice.version} ({notice.language}) sha256 {notice.sha256}")
    if event.valid_until is not None:
        print(f"Valid until {event.valid_until:%Y-%m-%d}")
    return 0


def cmd_request_create(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.domain import phone, rules
    from consentdesk.domain.capture import privacy_request

    number = phone.normalize(args.number, ctx.region)
    kind = RequestType(_choice("request type", args.type, [t.value for t in RequestType]))
    jurisdiction = _jurisdiction(args.jurisdiction)
    new = privacy_request(
        subject=number,
        type=kind,
        jurisdiction=jurisdiction,
        agent=_agent(args.agent),
        received=_received(args.received),
        call_id=args.call_id,
        note=args.note,
        tz=_calendar(ctx).tz,
    )
    with _ledger(ctx) as ledger:
        request = ledger.create_request(new)
    if args.json:
        print_json(request)
        return 0
    rule = rules.rule_for(jurisdiction)
    print(f"Reference {request.reference}")
    print(f"Due {request.due.isoformat()} ({request.type}, {rule.citation})")
    if request.acknowledge_by is not None:
        print(f"Confirm receipt by {request.acknowledge_by.isoformat()} (CCPA Regs §7021)")
    return 0


def cmd_request_confirm(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.domain.model import RequestChange

    with _ledger(ctx) as ledger:
        request = ledger.find_request(args.reference)
        change = RequestChange(
            request_id=request.request_id, agent=_agent(args.agent), confirmation=args.how.strip()
        )
        request = ledger.update_request(change)
    if args.json:
        print_json(request)
        return 0
    assert request.confirmed_at is not None
    print(f"Receipt of {request.reference} confirmed ({request.confirmed_how})")
    return 0


def cmd_request_list(args: argparse.Namespace, ctx: Context) -> int:
    with _ledger(ctx, reading=True) as ledger:
        found = ledger.requests(open_only=args.open)
    if args.json:
        print_json(list(found))
        return 0
    if not found:
        print("No open privacy requests." if args.open else "No privacy requests.")
        return 0
    print(_request_table(found, _today(ctx), with_number=True))
    return 0


def cmd_verify(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.stores.ledger import FILE_NAME

    path = ctx.data_dir / FILE_NAME
    if not path.exists():
        raise UsageError(f"no ledger at {path}; check --data-dir")
    from consentdesk.cli.log_cmds import audit_ledger, describe, parse_key

    key = parse_key(args.key)
    with _ledger(ctx, reading=True) as ledger:
        result = ledger.verify()
        tree, signed = audit_ledger(ledger, key)
    if result.ok and tree.ok:
        print(f"OK: {result.count} events verified")
        if not signed:
            print(
                "note: the tree matches, but no signing key is at hand: signatures not checked",
                file=sys.stderr,
            )
        return 0
    # The chain's own finding first (it names an edited entry), then the tree's.
    if result.ok:
        pass
    elif result.first_bad_seq is None:
        print(f"BROKEN: {result.reason} ({result.count} entries verified)")
    else:
        print(
            f"BROKEN: entry {result.first_bad_seq}: {result.reason} "
            f"({result.count} entries before it verified)"
        )
    if not tree.ok:
        print(f"BROKEN: {describe(tree)} ({tree.size} entries in the file)")
    return 1


# --- output -------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def _grid(catalogue: Catalogue, cells: Sequence[CellStatus]) -> str:
    channels = catalogue.channels()
    from consentdesk.domain.basis import Offer, basis_info

    state = {(c.purpose, c.channel): _cell_text(c) for c in cells}
    rows = []
    for p in catalogue:
        info = basis_info(p)
        texts = [state.get((p.id, ch), NOT_APPLICABLE) for ch in channels]
        if info.offer != Offer.CONSENT:  # information with its basis, never asked
            texts = [info.label if t == ConsentState.UNKNOWN.value else t for t in texts]
        rows.append([p.title, *texts])
    return _table(["purpose", *channels], rows)


def _cell_text(cell: CellStatus) -> str:
    if cell.state == ConsentState.GIVEN and cell.expires is not None:
        return f"given to {cell.expires:%Y-%m-%d}"
    if cell.state == ConsentState.OPTED_OUT and cell.request is not None:
        return f"opted out {cell.request.reference}"
    return str(cell.state)


def _due_text(request: PrivacyRequest, today: date) -> str:
    if not request.is_open:
        return ""
    left = request.days_left(today)
    if left < 0:
        return f"OVERDUE {-left} d"
    return "due today" if left == 0 else f"{left} d left"


def _confirmation_text(request: PrivacyRequest, today: date) -> str:
    """The §7021 confirmation clock: confirmed, due by a date, or overdue."""
    from consentdesk.domain.rules import Confirmation, confirmation_clock

    clock = confirmation_clock(request, today)
    if clock == Confirmation.NOT_REQUIRED:
        return ""
    if clock == Confirmation.CONFIRMED:
        assert request.confirmed_at is not None
        return f"confirmed {request.confirmed_at:%Y-%m-%d}"
    assert request.acknowledge_by is not None
    if clock == Confirmation.OVERDUE:
        return f"CONFIRM OVERDUE (by {request.acknowledge_by.isoformat()})"
    return f"confirm by {request.acknowledge_by.isoformat()}"


def _request_table(requests: Sequence[PrivacyRequest], today: date, *, with_number: bool) -> str:
    from consentdesk.domain import phone

    headers = ["reference", "type", "law", "status", "received", "due", "when", "confirmation"]
    if with_number:
        headers.insert(1, "number")
    rows = []
    for r in requests:
        row = [
            r.reference,
            str(r.type),
            r.jurisdiction.upper(),
            str(r.status),
            r.received.isoformat(),
            r.due.isoformat(),
            _due_text(r, today),
            _confirmation_text(r, today),
        ]
        if with_number:
            row.insert(1, phone.display(r.subject))
        rows.append(row)
    return _table(headers, rows)


def _history_row(event: ConsentEvent) -> list[str]:
    note = ""
    if event.corrects is not None:
        note = f"corrects {str(event.corrects)[:8]}: {event.correction_reason}"
    notice = event.notice
    return [
        f"{event.at:%Y-%m-%d %H:%M}",
        event.purpose,
        str(event.channel),
        str(event.state),
        f"{notice.script_id} v{notice.version} {notice.language}",
        event.agent,
        str(event.event_id)[:8],
        note,
    ]
