"""The desk side of witnessing: have the team server cosign the embedded ledger's checkpoint.

The desk sends its newest signed checkpoint, its public key and a consistency
proof from the checkpoint the server cosigned last time (kept in the OS
keyring); the server cosigns only a ledger that extends that one, so a file
truncated or rewritten while the desk was offline is refused at the next
sign-in, and the refusal names the missing entries. The cosigned copy goes
to the keyring, where ``ledger verify`` holds the file against it too.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Protocol

from consentdesk.domain.backend import BackendError
from consentdesk.domain.checkpoint import CheckpointError, SignedNote, Verifier, verify_note
from consentdesk.domain.model import DomainError
from consentdesk.platform import ledger_keys
from consentdesk.stores.ledger import EmbeddedLedger


class Cosigner(Protocol):
    def cosign(self, document: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Witnessed:
    ok: bool
    size: int
    message: str


def witness_ledger(ledger: EmbeddedLedger, server: Cosigner) -> Witnessed:
    """Ask *server* to cosign *ledger*'s newest checkpoint; keep the cosigned copy."""
    path = str(ledger.path.absolute())
    dlog = ledger.desk_log
    with ledger.read() as conn:
        key = dlog.public_key(conn)
        note = dlog.newest(conn, key) if key is not None else None
        if key is None or note is None:
            return Witnessed(False, 0, "the ledger is not signed yet (no key in the OS keyring)")
        size = note.checkpoint().size
        held = ledger_keys.get_checkpoint(path, "cosigned")
        old = SignedNote.parse(held).checkpoint() if held else None
        proof: list[bytes] = []
        if old is not None and old.origin == note.checkpoint().origin and old.size <= size:
            proof = dlog.consistency(conn, old.size, size)
    document = {
        "checkpoint": note.render(),
        "public_key": key.text(),
        "proof": [base64.b64encode(p).decode() for p in proof],
    }
    try:
        answer = server.cosign(document)
    except DomainError as exc:  # the server's refusal (409) says what is missing or changed
        return Witnessed(False, size, str(exc))
    try:
        cosigned = SignedNote.parse(str(answer["checkpoint"]))
        witness = Verifier.parse(str(answer["witness_key"]))
        verify_note(cosigned, witness)
        if verify_note(cosigned, key) != note.checkpoint():
            raise CheckpointError("the server cosigned another checkpoint")
    except (KeyError, CheckpointError) as exc:
        raise BackendError(f"the team server's cosignature does not verify ({exc})") from None
    ledger_keys.set_checkpoint(path, cosigned.render(), "cosigned")
    return Witnessed(True, size, f"the team server cosigned the ledger at {size} entries")
