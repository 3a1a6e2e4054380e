"""C2SP signed notes and checkpoints: format, signatures, cosignatures; the leaf bytes."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from consentdesk.domain import checkpoint as ck
from consentdesk.domain import tlog
from consentdesk.domain.codec import canonical_json

ROOT = hashlib.sha256(b"root").digest()


def test_a_checkpoint_note_has_the_c2sp_layout_and_verifies() -> None:
    signer = ck.Signer.generate("example.com/log")
    note = ck.sign_checkpoint(ck.Checkpoint("example.com/log", 42, ROOT), signer)
    text = note.render()
    body, sig_line = text.split("\n\n")
    assert body == f"example.com/log\n42\n{base64.b64encode(ROOT).decode()}"
    assert sig_line.startswith("\u2014 example.com/log ") and sig_line.endswith("\n")
    raw = base64.b64decode(sig_line.split(" ")[-1])
    verifier = signer.verifier()
    # Key hash: SHA-256(name || 0x0A || 0x01 || key)[:4], then the 64-byte signature.
    expected = hashlib.sha256(b"example.com/log\n\x01" + verifier.public).digest()[:4]
    assert raw[:4] == expected and len(raw) == 68
    again = ck.SignedNote.parse(text)
    assert ck.verify_note(again, verifier) == ck.Checkpoint("example.com/log", 42, ROOT)
    assert ck.Verifier.parse(verifier.text()) == verifier
    assert ck.Signer.parse(signer.text()) == signer


def test_changed_notes_wrong_keys_and_bad_text_are_refused() -> None:
    signer = ck.Signer.generate("log")
    text = ck.sign_checkpoint(ck.Checkpoint("log", 7, ROOT), signer).render()
    with pytest.raises(ck.CheckpointError, match="does not verify"):
        ck.verify_note(ck.SignedNote.parse(text.replace("\n7\n", "\n8\n")), signer.verifier())
    other = ck.Signer.generate("log")
    with pytest.raises(ck.CheckpointError, match="no signature"):
        ck.verify_note(ck.SignedNote.parse(text), other.verifier())
    for bad in ("log\n7\n", "log\nseven\nAAAA\n\n\u2014 log AAAAAAA=\n", "no signatures\n"):
        with pytest.raises(ck.CheckpointError):
            ck.verify_note(ck.SignedNote.parse(bad), signer.verifier())
    with pytest.raises(ck.CheckpointError):
        ck.Verifier.parse("log+00000000+" + signer.verifier().text().split("+", 2)[2])


def test_a_witness_cosignature_carries_its_time_and_verifies() -> None:
    log_key, witness = ck.Signer.generate("log"), ck.Signer.generate("witness.example")
    note = ck.sign_checkpoint(ck.Checkpoint("log", 3, ROOT), log_key)
    cosigned = ck.cosign(note, witness, 1_760_000_000)
    parsed = ck.SignedNote.parse(cosigned.render())
    wkey = witness.verifier(ck.ALG_COSIGNATURE)
    assert ck.verify_note(parsed, wkey).size == 3
    assert ck.verify_note(parsed, log_key.verifier()).size == 3
    assert ck.cosigned_at(parsed, wkey) == 1_760_000_000
    # The signing key as a plain signer is not the witness (another key hash).
    with pytest.raises(ck.CheckpointError):
        ck.verify_note(parsed, witness.verifier())


def test_leaf_bytes_are_the_canonical_json_of_the_entry() -> None:
    body = canonical_json({"event_id": "e1", "note": 'Ä "quoted"', "n": 1})
    data = tlog.leaf_data(7, "consent", "2026-01-02T03:04:05.000006+00:00", body)
    expected = canonical_json(
        {
            "seq": 7,
            "kind": "consent",
            "recorded_at": "2026-01-02T03:04:05.000006+00:00",
            "body": json.loads(body),
        }
    )
    assert data == expected.encode()
    assert tlog.leaf_data(7, "consent", "2026-01-02T03:04:05+00:00", body) != data


STRINGS = ["consent", 'qu"ote', "back\\slash", "tab\there", "Zeit ä", "\x7f"]


@pytest.mark.parametrize("text", STRINGS)
def test_leaf_strings_are_escaped_as_canonical_json_escapes_them(text: str) -> None:
    data = tlog.leaf_data(1, text, text, "{}")
    entry = {"body": {}, "kind": text, "recorded_at": text, "seq": 1}
    assert data == canonical_json(entry).encode()
