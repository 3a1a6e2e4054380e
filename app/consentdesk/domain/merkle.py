"""RFC 9162 (RFC 6962) Merkle tree hashing, proofs and their verification.

Entries of a ledger are the leaves of one append-only Merkle tree. Both
ledgers keep the hashes of its *perfect* subtrees (``node(level, index)``: the
subtree over leaves ``index * 2**level`` .. ``(index + 1) * 2**level - 1``) and
the proofs here are built from those through a lookup function, so a proof
at a million entries reads a few dozen stored hashes and never the leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root of the tree of no entries: SHA-256 of the empty string."""

NodeLookup = Callable[[int, int], bytes]
"""``node(level, index)``: the stored hash of one perfect subtree."""


class ProofError(ValueError):
    """A proof that does not verify, or a request for a proof that cannot exist."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than *size* (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, straight from the definition (for small trees and tests)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    k = _split(len(leaf_hashes))
    return node_hash(root_of(leaf_hashes[:k]), root_of(leaf_hashes[k:]))


# --- building: the compact range ---------------------------------------------------


class CompactRange:
    """The right edge of a growing tree: one hash per set bit of its size.

    :meth:`append` returns the perfect subtrees it completed, as
    ``(level, index, hash)``, which a ledger stores so proofs need no leaves.
    """

    __slots__ = ("_hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != size.bit_count():
            raise ValueError(f"a compact range of size {size} has {size.bit_count()} hashes")
        self.size = size
        self._hashes = list(hashes)  # biggest subtree first

    @classmethod
    def from_nodes(cls, size: int, node: NodeLookup) -> CompactRange:
        """The range of a tree of *size* leaves, from stored perfect subtrees."""
        hashes, start = [], 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                hashes.append(node(level, start >> level))
                start += 1 << level
        return cls(size, hashes)

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        made = [(0, self.size, leaf)]
        current, level, index = leaf, 0, self.size
        while self.size >> level & 1:
            current = node_hash(self._hashes.pop(), current)
            level += 1
            index >>= 1
            made.append((level, index, current))
        self._hashes.append(current)
        self.size += 1
        return made

    def root(self) -> bytes:
        if not self._hashes:
            return EMPTY_ROOT
        current = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            current = node_hash(left, current)
        return current


def perfect_levels(leaf_hashes: Iterable[bytes]) -> list[bytearray]:
    """Every perfect subtree hash, level by level (level 0: the leaves), packed 32 bytes each."""
    levels = [bytearray()]
    for leaf in leaf_hashes:
        levels[0] += leaf
    while len(levels[-1]) >= 2 * HASH_SIZE:
        below, above = levels[-1], bytearray()
        for i in range(0, len(below) - HASH_SIZE, 2 * HASH_SIZE):
            left, right = below[i : i + HASH_SIZE], below[i + HASH_SIZE : i + 2 * HASH_SIZE]
            above += node_hash(bytes(left), bytes(right))
        levels.append(above)
    return levels


def lookup_in(levels: Sequence[bytes | bytearray]) -> NodeLookup:
    def node(level: int, index: int) -> bytes:
        return bytes(levels[level][index * HASH_SIZE : (index + 1) * HASH_SIZE])

    return node


def nodes_needed(build: Callable[[NodeLookup], object]) -> list[tuple[int, int]]:
    """Which stored subtrees *build* reads: a proof's shape does not depend on the hashes,
    so a store can fetch them all in one query and then build from a dictionary."""
    seen: list[tuple[int, int]] = []

    def record(level: int, index: int) -> bytes:
        seen.append((level, index))
        return bytes(HASH_SIZE)

    build(record)
    return seen


# --- proofs from stored subtrees ------------------------------------------------------


def subtree_root(start: int, end: int, node: NodeLookup) -> bytes:
    """MTH of leaves [start, end) where *start* is aligned as RFC 9162 splits place it."""
    size = end - start
    if size <= 0:
        raise ValueError("empty range")
    if size & (size - 1) == 0:
        level = size.bit_length() - 1
        return node(level, start >> level)
    k = _split(size)
    return node_hash(subtree_root(start, start + k, node), subtree_root(start + k, end, node))


def tree_root(size: int, node: NodeLookup) -> bytes:
    return EMPTY_ROOT if size == 0 else CompactRange.from_nodes(size, node).root()


def inclusion_proof(index: int, size: int, node: NodeLookup) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 section 2.1.3.1, leaf-side first."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} entries")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            proof.append(subtree_root(start + k, end, node))
            end = start + k
        else:
            proof.append(subtree_root(start, start + k, node))
            start += k
    proof.reverse()
    return proof


def consistency_proof(old: int, new: int, node: NodeLookup) -> list[bytes]:
    """PROOF(old, D[0:new]) of RFC 9162 section 2.1.4.1."""
    if not 0 <= old <= new:
        raise ProofError(f"no consistency proof from {old} to {new} entries")
    if old in (0, new):
        return []
    proof: list[bytes] = []
    start, end, whole = 0, new, True
    while old - start != end - start:
        k = _split(end - start)
        if old - start <= k:
            proof.append(subtree_root(start + k, end, node))
            end = start + k
        else:
            proof.append(subtree_root(start, start + k, node))
            start += k
            whole = False
    if not whole:  # the old tree's last subtree is not the old root itself
        proof.append(subtree_root(start, end, node))
    proof.reverse()
    return proof


# --- verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2) -------------------------------


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} entries")
    if len(leaf) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("a hash in the proof is not 32 bytes")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is too short")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise :class:`ProofError` unless *leaf* is entry *index* of the tree with *root*."""
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError(f"entry {index} is not in the tree of {size} entries with that root")


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`ProofError` unless tree (*old*, *old_root*) is a prefix of the new one."""
    if not 0 <= old <= new:
        raise ProofError(f"a tree of {new} entries cannot extend one of {old}")
    if any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("a hash in the proof is not 32 bytes")
    if old == new:
        if proof or old_root != new_root:
            raise ProofError(f"two different trees of {old} entries")
        return
    if old == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if old & (old - 1) == 0:  # old is a power of two: its root starts the path
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is too short")
    if fr != old_root or sr != new_root:
        raise ProofError(f"the tree of {new} entries does not extend the one of {old}")
