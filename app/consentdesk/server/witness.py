"""The team server as a witness of desk ledgers: cosign only what extends what it cosigned.

A desk sends its newest signed checkpoint, its public key and a consistency
proof from the checkpoint this server last cosigned for it. The server keeps
one row per desk ledger (its origin); a desk whose ledger became shorter, or
no longer extends that checkpoint, is refused, and the refusal names what is
missing or rewritten. The first checkpoint of a desk is taken on trust (its
key is pinned from then on).
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text

from consentdesk.domain import merkle
from consentdesk.domain.checkpoint import (
    ALG_COSIGNATURE,
    CheckpointError,
    SignedNote,
    Signer,
    Verifier,
    cosign,
    verify_note,
)
from consentdesk.domain.model import utcnow
from consentdesk.server import problems
from consentdesk.server.db import write_transaction

ROLLBACK = "ledger-rollback"


def _proof(raw: Any) -> list[bytes]:
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise problems.invalid("proof must be a list of base64 hashes")
    try:
        return [base64.b64decode(p, validate=True) for p in raw]
    except binascii.Error:
        raise problems.invalid("proof must be a list of base64 hashes") from None


def cosign_desk(
    engine: Engine, signer: Signer | None, agent: str, document: dict[str, Any]
) -> dict[str, Any]:
    """Cosign a desk's checkpoint; the cosigned note and this server's witness key."""
    if signer is None:
        raise problems.unavailable("this server has no log key (CONSENTDESK_LOG_KEY) to cosign")
    try:
        key = Verifier.parse(str(document["public_key"]))
        note = SignedNote.parse(str(document["checkpoint"]))
        cp = verify_note(note, key)
    except KeyError as exc:
        raise problems.invalid(f"missing field {exc}") from None
    except CheckpointError as exc:
        raise problems.invalid(f"the desk checkpoint does not verify: {exc}") from None
    if cp.origin != key.name:
        raise problems.invalid("the checkpoint's origin is not the key's name")
    proof = _proof(document.get("proof", []))
    with write_transaction(engine) as conn:
        row = conn.execute(
            text("SELECT public_key, size, root, cosigned_at FROM log_witnessed WHERE origin = :o"),
            {"o": cp.origin},
        ).first()
        if row is not None:
            _check_extends(row, key, cp.size, cp.root, proof)
        now = utcnow()
        cosigned = cosign(note, signer, int(now.timestamp()))
        params = {
            "o": cp.origin,
            "k": key.text(),
            "s": cp.size,
            "r": cp.root,
            "n": cosigned.render(),
            "a": agent,
            "t": now,
        }
        if row is None:
            conn.execute(
                text(
                    "INSERT INTO log_witnessed (origin, public_key, size, root, note, agent,"
                    " cosigned_at) VALUES (:o, :k, :s, :r, :n, :a, :t)"
                ),
                params,
            )
        else:
            conn.execute(
                text(
                    "UPDATE log_witnessed SET size = :s, root = :r, note = :n, agent = :a,"
                    " cosigned_at = :t WHERE origin = :o"
                ),
                params,
            )
    witness = signer.verifier(ALG_COSIGNATURE).text()
    return {"checkpoint": cosigned.render(), "witness_key": witness}


def _check_extends(row: Any, key: Verifier, size: int, root: bytes, proof: list[bytes]) -> None:
    if row.public_key != key.text():
        raise problems.conflict("this desk ledger was cosigned under another key", ROLLBACK)
    when = row.cosigned_at if isinstance(row.cosigned_at, datetime) else None
    on = f" on {when:%Y-%m-%d %H:%M} UTC" if when else ""
    if size < row.size:
        raise problems.conflict(
            f"entries {size + 1}..{row.size} are missing from the desk ledger: this server "
            f"cosigned {row.size} entries of it{on}",
            ROLLBACK,
        )
    try:
        merkle.verify_consistency(row.size, size, bytes(row.root), root, proof)
    except merkle.ProofError:
        raise problems.conflict(
            f"the desk ledger no longer extends the {row.size} entries this server cosigned{on}: "
            "entries were altered, removed or inserted",
            ROLLBACK,
        ) from None
