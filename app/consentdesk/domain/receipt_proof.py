"""Receipts anyone can verify: a consent receipt with its ledger evidence.

The receipt file is ``{"receipts": [<Kantara v1.1 receipt per consent>], "evidence": {...}}``.
The evidence holds the ledger entries behind the receipt (exact bytes), each
entry's RFC 9162 inclusion proof in one signed checkpoint, and the ledger's
signature over the receipt itself. :func:`verify_receipt` needs nothing but
the file and the ledger's published public key.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from consentdesk.domain import merkle, tlog
from consentdesk.domain.checkpoint import (
    Checkpoint,
    CheckpointError,
    SignedNote,
    Signer,
    Verifier,
    sign_checkpoint,
    verify_note,
)
from consentdesk.domain.codec import canonical_json

FORMAT = "consentdesk-receipt-evidence/v1"
_RECEIPT_ORIGIN = "consentdesk receipt/v1"


class ReceiptInvalid(ValueError):
    """The receipt does not verify; the message says what failed."""


@dataclass(frozen=True, slots=True)
class EntryProof:
    seq: int
    kind: str
    recorded_at: str
    body: str
    proof: Sequence[bytes]


def _receipt_digest(receipts: Sequence[Mapping[str, Any]] | None) -> bytes:
    return hashlib.sha256(canonical_json(receipts).encode()).digest()


def _receipt_note(receipts: Sequence[Mapping[str, Any]] | None, origin: str) -> Checkpoint:
    # A checkpoint-shaped note naming the ledger and the receipts' digest.
    return Checkpoint(f"{_RECEIPT_ORIGIN} {origin}", 1, _receipt_digest(receipts))


def build(
    receipts: Sequence[Mapping[str, Any]] | None,
    entries: Sequence[EntryProof],
    checkpoint: SignedNote,
    signer: Signer,
) -> dict[str, Any]:
    origin = checkpoint.checkpoint().origin
    return {
        "receipts": receipts,
        "evidence": {
            "format": FORMAT,
            "ledger": origin,
            "public_key": signer.verifier().text(),
            "checkpoint": checkpoint.render(),
            "entries": [
                {
                    "seq": e.seq,
                    "kind": e.kind,
                    "recorded_at": e.recorded_at,
                    "body": e.body,
                    "inclusion_proof": [base64.b64encode(p).decode() for p in e.proof],
                }
                for e in entries
            ],
            "receipt_signature": sign_checkpoint(_receipt_note(receipts, origin), signer).render(),
        },
    }


@dataclass(frozen=True, slots=True)
class Verified:
    origin: str
    size: int
    entries: tuple[int, ...]


def verify_receipt(document: Mapping[str, Any], key: Verifier) -> Verified:
    """Check a receipt file offline against the ledger's public *key*."""
    try:
        evidence = document["evidence"]
        if evidence.get("format") != FORMAT:
            raise ReceiptInvalid(f"not a receipt in the {FORMAT} format")
        note = SignedNote.parse(evidence["checkpoint"])
        try:
            cp = verify_note(note, key)
        except CheckpointError as exc:
            raise ReceiptInvalid(
                f"the ledger checkpoint is not signed by this key: {exc}"
            ) from None
        if cp.origin != evidence["ledger"]:
            raise ReceiptInvalid("the checkpoint belongs to another ledger than the receipt names")
        signature = SignedNote.parse(evidence["receipt_signature"])
        if signature.text != _receipt_note(document.get("receipts"), cp.origin).text():
            raise ReceiptInvalid("the receipt was changed after the ledger signed it")
        try:
            verify_note(signature, key)
        except CheckpointError:
            raise ReceiptInvalid("the receipt's signature does not verify") from None
        seqs = []
        for raw in evidence["entries"]:
            seq = int(raw["seq"])
            leaf = tlog.entry_leaf(seq, str(raw["kind"]), str(raw["recorded_at"]), str(raw["body"]))
            proof = [base64.b64decode(p, validate=True) for p in raw["inclusion_proof"]]
            try:
                merkle.verify_inclusion(seq - 1, cp.size, leaf, proof, cp.root)
            except merkle.ProofError:
                raise ReceiptInvalid(
                    f"ledger entry {seq} as given is not in the signed ledger (changed or forged)"
                ) from None
            seqs.append(seq)
    except (KeyError, TypeError, ValueError, CheckpointError) as exc:
        if isinstance(exc, ReceiptInvalid):
            raise
        raise ReceiptInvalid(f"the receipt cannot be read ({exc})") from None
    if not seqs:
        raise ReceiptInvalid("the receipt carries no ledger entries")
    return Verified(cp.origin, cp.size, tuple(seqs))


def render_html(document: Mapping[str, Any]) -> str:
    """A human-readable page of the receipt, with the verifiable file embedded."""
    receipts = document.get("receipts") or []
    evidence = document["evidence"]
    rows = []
    for raw in evidence["entries"]:
        body = json.loads(raw["body"])
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(v))}</td>"
                for v in (
                    raw["seq"],
                    body.get("at", ""),
                    body.get("purpose", ""),
                    body.get("channel", ""),
                    body.get("state", ""),
                    body.get("event_id", ""),
                )
            )
            + "</tr>"
        )
    purposes = [
        p["purpose"] for r in receipts for s in r.get("services", []) for p in s.get("purposes", [])
    ]
    customer = receipts[0].get("piiPrincipalId", "") if receipts else ""
    embedded = json.dumps(document, ensure_ascii=False).replace("</", "<\\/")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Consent receipt</title></head>
<body>
<h1>Consent receipt</h1>
<p>Customer: {html.escape(str(customer))}</p>
<ul>{"".join(f"<li>{html.escape(p)}</li>" for p in purposes)}</ul>
<h2>Ledger records</h2>
<table><tr><th>entry</th><th>when</th><th>purpose</th><th>channel</th><th>answer</th>
<th>event</th></tr>{"".join(rows)}</table>
<h2>How to check this receipt</h2>
<p>These records are entries of the append-only ledger
<code>{html.escape(evidence["ledger"])}</code>, proven by RFC 9162 inclusion proofs
in this signed checkpoint:</p>
<pre>{html.escape(evidence["checkpoint"])}</pre>
<p>Run <code>consentdesk receipt verify THIS-FILE --key PUBLIC-KEY</code>
with the ledger's published public key. The key this receipt names is
<code>{html.escape(evidence["public_key"])}</code>; compare it with the published one.</p>
<script type="application/json" id="consent-receipt">{embedded}</script>
</body></html>
"""


def from_html(page: str) -> dict[str, Any]:
    start = page.find('<script type="application/json" id="consent-receipt">')
    if start < 0:
        raise ReceiptInvalid("the page has no embedded receipt")
    start = page.index(">", start) + 1
    end = page.index("</script>", start)
    loaded: dict[str, Any] = json.loads(page[start:end])
    return loaded
