"""Signed checkpoints in the C2SP formats: signed-note, tlog-checkpoint, tlog-cosignature.

A checkpoint is the text ``<origin>\\n<tree size>\\n<base64 root hash>\\n``; a
signed note is that text, an empty line and one line per signature::

    — <key name> <base64(4-byte key hash || signature)>

Ed25519 signatures (type 0x01) sign the text itself; cosignatures (type 0x04,
tlog-cosignature) sign ``cosignature/v1\\ntime <t>\\n`` followed by the text and
carry the time. Keys are passed in: this module never looks for them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

ALG_ED25519 = 0x01
ALG_COSIGNATURE = 0x04
_DASH = "\u2014 "


class CheckpointError(ValueError):
    """A checkpoint or note that cannot be read, or a signature that does not verify."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise CheckpointError(f"{what} is not base64") from None


def _check_name(name: str) -> str:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise CheckpointError(f"key name {name!r} must be non-empty, without spaces or '+'")
    return name


def key_hash(name: str, alg: int, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public).digest()[:4]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


# --- keys ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verifier:
    """A named Ed25519 public key; *alg* says whether it signs or cosigns."""

    name: str
    public: bytes
    alg: int = ALG_ED25519

    @property
    def hash(self) -> bytes:
        return key_hash(self.name, self.alg, self.public)

    def text(self) -> str:
        """The vkey form: ``<name>+<hex key hash>+<base64(alg || key)>``, safe to publish."""
        return f"{self.name}+{self.hash.hex()}+{_b64(bytes([self.alg]) + self.public)}"

    @classmethod
    def parse(cls, text: str) -> Verifier:
        parts = text.strip().split("+", 2)  # base64 may hold '+', names and hashes do not
        if len(parts) != 3:
            raise CheckpointError("a public key reads <name>+<hash>+<base64 key>")
        name, hash_hex, body = parts
        raw = _unb64(body, "the public key")
        if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE):
            raise CheckpointError("the public key is not an Ed25519 key")
        verifier = cls(_check_name(name), raw[1:], raw[0])
        if verifier.hash.hex() != hash_hex.lower():
            raise CheckpointError("the public key's hash does not match its name and key")
        return verifier

    def _key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.public)


@dataclass(frozen=True, slots=True)
class Signer:
    """A named Ed25519 private key."""

    name: str
    seed: bytes

    @classmethod
    def generate(cls, name: str) -> Signer:
        key = Ed25519PrivateKey.generate()
        seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return cls(_check_name(name), seed)

    def text(self) -> str:
        """``PRIVATE+KEY+<name>+<hash>+<base64(alg || seed)>``: keep it secret."""
        v = self.verifier()
        return f"PRIVATE+KEY+{self.name}+{v.hash.hex()}+{_b64(bytes([ALG_ED25519]) + self.seed)}"

    @classmethod
    def parse(cls, text: str) -> Signer:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise CheckpointError("a private key reads PRIVATE+KEY+<name>+<hash>+<base64 key>")
        raw = _unb64(parts[4], "the private key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise CheckpointError("the private key is not an Ed25519 key")
        signer = cls(_check_name(parts[2]), raw[1:])
        if signer.verifier().hash.hex() != parts[3].lower():
            raise CheckpointError("the private key's hash does not match its name and key")
        return signer

    def _key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    def verifier(self, alg: int = ALG_ED25519) -> Verifier:
        return Verifier(self.name, _raw_public(self._key().public_key()), alg)

    def sign(self, message: bytes) -> bytes:
        return self._key().sign(message)


# --- checkpoints and notes ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{_b64(self.root)}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise CheckpointError("a checkpoint has an origin, a size and a root, one a line")
        origin, size, root = lines[:3]
        if not origin or not size.isdigit() or (size != "0" and size.startswith("0")):
            raise CheckpointError("the checkpoint's origin or size cannot be read")
        digest = _unb64(root, "the checkpoint's root hash")
        if len(digest) != 32:
            raise CheckpointError("the checkpoint's root hash is not 32 bytes")
        return cls(origin, int(size), digest)


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    key_hash: bytes
    payload: bytes  # for a cosignature: 8-byte time then the signature

    def line(self) -> str:
        return f"{_DASH}{self.name} {_b64(self.key_hash + self.payload)}\n"


@dataclass(frozen=True, slots=True)
class SignedNote:
    text: str
    signatures: tuple[Signature, ...]

    def render(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    @classmethod
    def parse(cls, note: str) -> SignedNote:
        body, sep, sigs = note.rpartition("\n\n")
        if not sep or not sigs.endswith("\n"):
            raise CheckpointError("a signed note is text, an empty line and signature lines")
        signatures = []
        for line in sigs[:-1].split("\n"):
            if not line.startswith(_DASH):
                raise CheckpointError("a signature line starts with an em dash")
            name, _, b64 = line[len(_DASH) :].rpartition(" ")
            raw = _unb64(b64, "a signature")
            if not name or len(raw) < 5:
                raise CheckpointError("a signature line cannot be read")
            signatures.append(Signature(name, raw[:4], raw[4:]))
        return cls(body + "\n", tuple(signatures))

    def checkpoint(self) -> Checkpoint:
        return Checkpoint.parse(self.text)

    def with_signature(self, signature: Signature) -> SignedNote:
        return SignedNote(self.text, (*self.signatures, signature))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> SignedNote:
    if checkpoint.origin.strip() != checkpoint.origin:
        raise CheckpointError("the origin must not start or end with spaces")
    text = checkpoint.text()
    sig = Signature(signer.name, signer.verifier().hash, signer.sign(text.encode()))
    return SignedNote(text, (sig,))


def _cosigned_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def cosign(note: SignedNote, signer: Signer, timestamp: int) -> SignedNote:
    """Add a witness's tlog-cosignature at *timestamp* (seconds since the epoch)."""
    v = signer.verifier(ALG_COSIGNATURE)
    payload = struct.pack(">Q", timestamp) + signer.sign(_cosigned_message(note.text, timestamp))
    return note.with_signature(Signature(signer.name, v.hash, payload))


def _find(note: SignedNote, verifier: Verifier) -> Signature:
    for sig in note.signatures:
        if sig.name == verifier.name and sig.key_hash == verifier.hash:
            return sig
    raise CheckpointError(f"the checkpoint carries no signature by {verifier.name}")


def verify_note(note: SignedNote, verifier: Verifier) -> Checkpoint:
    """The checkpoint of *note* if *verifier* signed it; :class:`CheckpointError` otherwise."""
    sig = _find(note, verifier)
    try:
        if verifier.alg == ALG_COSIGNATURE:
            if len(sig.payload) != 8 + 64:
                raise InvalidSignature
            (timestamp,) = struct.unpack(">Q", sig.payload[:8])
            verifier._key().verify(sig.payload[8:], _cosigned_message(note.text, timestamp))
        else:
            verifier._key().verify(sig.payload, note.text.encode())
    except InvalidSignature:
        raise CheckpointError(f"the signature by {verifier.name} does not verify") from None
    return note.checkpoint()


def cosigned_at(note: SignedNote, verifier: Verifier) -> int:
    """When *verifier* cosigned *note* (after :func:`verify_note` accepted it)."""
    return int(struct.unpack(">Q", _find(note, verifier).payload[:8])[0])
