"""The verifiable log from the command line: ``ledger verify``'s tree check, ``ledger key``,
and ``receipt create`` / ``receipt verify``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consentdesk.cli.common import Context, UsageError

if TYPE_CHECKING:
    from consentdesk.domain.checkpoint import Verifier
    from consentdesk.domain.tlog import AuditResult
    from consentdesk.stores.ledger import EmbeddedLedger


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    receipt = sub.add_parser(
        "receipt",
        help="consent receipts with ledger proofs anyone can verify",
        description="Write a consent receipt that carries the ledger's proofs, or check one.",
    )
    rsub = receipt.add_subparsers(dest="receipt_command", metavar="ACTION", required=True)
    create = rsub.add_parser(
        "create",
        help="write a customer's consent receipt with inclusion proofs",
        description="Write the Kantara v1.1 receipt of a customer's consents in force, with "
        "each consent's ledger entry, its RFC 9162 inclusion proof and the ledger's signed "
        "checkpoint. --html also writes a page for people.",
    )
    create.add_argument("number", metavar="NUMBER", help="phone number of the customer")
    create.add_argument("--out", required=True, metavar="FILE", help="the receipt JSON to write")
    create.add_argument("--html", metavar="FILE", help="also write a human-readable page")
    create.set_defaults(handler=cmd_receipt_create)
    verify = rsub.add_parser(
        "verify",
        help="check a receipt offline with the ledger's public key",
        description="Check a receipt (JSON or its HTML page) with nothing but the ledger's "
        "public key: the entries are in the signed ledger and nothing was changed.",
    )
    verify.add_argument("file", metavar="FILE", help="the receipt (JSON or HTML)")
    add_key_option(verify, required=True)
    verify.set_defaults(handler=cmd_receipt_verify)


def add_key_option(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    parser.add_argument(
        "--key",
        required=required,
        metavar="PUBKEY",
        help="the ledger's public key (name+hash+key, as 'ledger key' prints) or a file with it",
    )


def parse_key(value: str | None) -> Verifier | None:
    from consentdesk.domain.checkpoint import CheckpointError, Verifier

    if value is None:
        return None
    text = value
    if "+" not in value:
        try:
            text = Path(value).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--key: cannot read {value}: {exc.strerror}") from None
    try:
        return Verifier.parse(text)
    except CheckpointError as exc:
        raise UsageError(f"--key: {exc}") from None


def audit_ledger(ledger: EmbeddedLedger, key: Verifier | None) -> tuple[AuditResult, bool]:
    """The tree audit of the ledger, and whether any signature could be checked."""
    from consentdesk.stores.ledger_log import audit_file

    with ledger.read() as conn:
        key = key or ledger.desk_log.public_key(conn)
        return audit_file(conn, ledger.desk_log, key), key is not None


def describe(result: AuditResult) -> str:
    return "; ".join(result.problems)


def cmd_ledger_key(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.cli.ledger_cmds import _ledger

    with _ledger(ctx) as ledger, ledger.read() as conn:
        key = ledger.desk_log.public_key(conn)
    if key is None:
        raise UsageError(
            "this ledger has no signing key in the OS keyring yet (it is made at the first "
            "record, and only where a keyring exists)"
        )
    print(key.text())
    return 0


def cmd_ledger_witness(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.cli.ledger_cmds import _ledger
    from consentdesk.stores.http_backend import open_http_backend
    from consentdesk.stores.witness import witness_ledger

    url = args.server or str(ctx.config.get("server.url")).strip()
    if not url:
        raise UsageError("no team server: pass --server URL or set server.url")
    backend = open_http_backend(url, ctx.data_dir)
    try:
        with _ledger(ctx) as ledger:
            outcome = witness_ledger(ledger, backend)
    finally:
        backend.close()
    if outcome.ok:
        print(f"Witnessed: {outcome.message}")
        return 0
    print(f"REFUSED: {outcome.message}")
    return 1


# --- receipts ---------------------------------------------------------------------


def cmd_receipt_create(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.cli.ledger_cmds import _ledger
    from consentdesk.domain import phone
    from consentdesk.domain.export import KANTARA_SCHEMA, Controller, validate
    from consentdesk.domain.kantara import kantara_receipts
    from consentdesk.domain.model import ConsentState
    from consentdesk.domain.receipt_proof import EntryProof, build, render_html
    from consentdesk.domain.status import current_status

    number = phone.normalize(args.number, ctx.region)
    with _ledger(ctx) as ledger:
        history = ledger.history(number)
        requests = ledger.requests(number=number)
        receipts = kantara_receipts(
            history, ledger.catalogue(), Controller.from_config(ctx.config), requests=requests
        )
        for receipt in receipts:
            validate(receipt, KANTARA_SCHEMA)
        cells = current_status(history, ledger.catalogue(), ctx_now(), requests)
        events = sorted(
            {str(c.event.event_id) for c in cells if c.state == ConsentState.GIVEN and c.event}
        )
        with ledger.read() as conn:
            dlog = ledger.desk_log
            key = dlog.public_key(conn)
            signer = dlog.signer_for_receipts(conn) if key is not None else None
            note = dlog.newest(conn, key) if key is not None else None
            if signer is None or note is None:
                raise UsageError("this ledger is not signed (no keyring key); no receipt")
            proofs = [dlog.prove(conn, event_id, note) for event_id in events]
    document = build(
        receipts,
        [EntryProof(p.seq, p.kind, p.recorded_at, p.body, p.proof) for p in proofs],
        note,
        signer,
    )
    Path(args.out).write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", "utf-8")
    if args.html:
        Path(args.html).write_text(render_html(document), encoding="utf-8")
    print(f"Wrote a receipt of {len(proofs)} ledger entries to {args.out}.")
    return 0


def ctx_now() -> Any:
    from consentdesk.domain.model import utcnow

    return utcnow()


def cmd_receipt_verify(args: argparse.Namespace, ctx: Context) -> int:
    from consentdesk.domain.receipt_proof import ReceiptInvalid, from_html, verify_receipt

    key = parse_key(args.key)
    assert key is not None
    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {args.file}: {exc}") from None
    try:
        document = from_html(text) if text.lstrip().startswith("<") else json.loads(text)
        verified = verify_receipt(document, key)
    except ValueError as exc:  # ReceiptInvalid and unreadable JSON
        reason = str(exc) if isinstance(exc, ReceiptInvalid) else f"not a receipt ({exc})"
        print(f"INVALID: {reason}")
        return 1
    entries = ", ".join(str(s) for s in verified.entries)
    print(
        f"OK: entries {entries} are in ledger {verified.origin} as signed at "
        f"{verified.size} entries, unchanged"
    )
    return 0


def server_audit(
    engine: Any, key_texts: list[str] | None, checkpoint_file: str | None
) -> AuditResult:
    """The team database's tree audit (``db verify``)."""
    from consentdesk.domain.checkpoint import CheckpointError, SignedNote, verify_note
    from consentdesk.domain.tlog import Anchor
    from consentdesk.server import log_store

    keys = [k for k in (parse_key(t) for t in key_texts or []) if k is not None]
    if not keys:
        signer = log_store.load_signer()
        keys = [signer.verifier()] if signer is not None else []
        keys += log_store.public_keys()
    anchors = []
    if checkpoint_file is not None:
        try:
            note = SignedNote.parse(Path(checkpoint_file).read_text(encoding="utf-8"))
            if keys and not any(_signs(note, k, verify_note) for k in keys):
                raise CheckpointError("it is not signed by the log's key")
        except (OSError, CheckpointError) as exc:
            raise UsageError(f"--checkpoint: {exc}") from None
        anchors.append(Anchor(note.checkpoint(), f"the checkpoint in {checkpoint_file}"))
    return log_store.audit(engine, keys, anchors)


def _signs(note: Any, key: Verifier, verify_note: Any) -> bool:
    from consentdesk.domain.checkpoint import CheckpointError

    try:
        verify_note(note, key)
    except CheckpointError:
        return False
    return True
