"""The verifiable log over a ledger: leaf bytes, and the audit both ledgers run.

Every entry is a leaf of one RFC 9162 tree. Its leaf bytes are the canonical
JSON of ``{"body", "kind", "recorded_at", "seq"}``, so editing any of them
(``recorded_at`` included) changes the leaf. A ledger signs a checkpoint of the
tree after each append; :func:`audit` recomputes the tree from the entries and
holds it against those signed checkpoints and against the newest checkpoint
kept outside the ledger (the keyring, the team server's cosignature).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from consentdesk.domain import merkle
from consentdesk.domain.checkpoint import Checkpoint


def _json_string(text: str) -> str:
    # json.dumps costs microseconds a call; plain printable ASCII needs no escaping.
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return json.dumps(text, ensure_ascii=False)


def leaf_data(seq: int, kind: str, recorded_at: str, body: str) -> bytes:
    """The leaf bytes of an entry: canonical JSON with *body* (already canonical) inline.

    Built by concatenation because the keys are in sorted order and the body
    is canonical JSON already; equal to ``canonical_json`` of the parsed form.
    """
    return (
        f'{{"body":{body},"kind":{_json_string(kind)},'
        f'"recorded_at":{_json_string(recorded_at)},"seq":{int(seq)}}}'
    ).encode()


def entry_leaf(seq: int, kind: str, recorded_at: str, body: str) -> bytes:
    return merkle.leaf_hash(leaf_data(seq, kind, recorded_at, body))


@dataclass(frozen=True, slots=True)
class Anchor:
    """A checkpoint held outside the ledger, and who holds it (for the message)."""

    checkpoint: Checkpoint
    holder: str


@dataclass(slots=True)
class AuditResult:
    ok: bool
    size: int
    problems: list[str] = field(default_factory=list)
    first_bad: int | None = None  # 1-based entry number
    missing: tuple[int, int] | None = None  # 1-based, inclusive

    def fail(self, problem: str) -> None:
        self.ok = False
        self.problems.append(problem)


def _first_bad_between(
    good: int, bad: int, signed: Mapping[int, bytes], node: merkle.NodeLookup
) -> tuple[int, int]:
    """Narrow (good, bad] with the signed roots in between; the tree at *bad* does not match."""
    sizes = [s for s in sorted(signed) if good < s < bad]
    lo, hi = 0, len(sizes)
    while lo < hi:  # the prefixes that match form a run from the start
        mid = (lo + hi) // 2
        if merkle.tree_root(sizes[mid], node) == signed[sizes[mid]]:
            lo = mid + 1
        else:
            hi = mid
    start = sizes[lo - 1] if lo else good
    end = sizes[lo] if lo < len(sizes) else bad
    return start + 1, end


def audit(
    leaves: Iterable[bytes],
    signed: Mapping[int, bytes],
    anchors: Iterable[Anchor] = (),
    stored: Iterator[tuple[int, int, bytes]] | None = None,
) -> AuditResult:
    """Hold the ledger's leaves (in order) against signed tree heads.

    *signed* maps tree sizes to roots whose signatures the caller checked (the
    ledger's own checkpoints); *anchors* are checkpoints held outside it.
    *stored*, if given, streams the stored perfect-subtree hashes
    ``(level, index, hash)`` by level then index, which must equal the
    recomputed tree (proofs are served from them).
    """
    levels = merkle.perfect_levels(leaves)
    size = len(levels[0]) // merkle.HASH_SIZE
    node = merkle.lookup_in(levels)
    result = AuditResult(True, size)
    heads = dict(signed)
    holders: dict[int, str] = {}
    for anchor in anchors:
        cp = anchor.checkpoint
        if cp.size in heads and heads[cp.size] != cp.root:
            heads_root = heads[cp.size]
            result.fail(
                f"{anchor.holder} holds a checkpoint of {cp.size} entries that differs from "
                f"the ledger's own signed one ({cp.root.hex()[:12]} vs {heads_root.hex()[:12]})"
            )
        heads[cp.size] = cp.root
        holders[cp.size] = anchor.holder
    beyond = [s for s in heads if s > size]
    if beyond:
        top = max(beyond)
        who = holders.get(top, "the ledger's own signed checkpoints")
        result.missing = (size + 1, top)
        result.fail(
            f"entries {size + 1}..{top} are missing: {who} vouch(es) for {top} entries, "
            f"the file has {size}"
        )
    within = sorted(s for s in heads if 0 < s <= size)
    if within:
        # The largest size whose root matches: every smaller prefix then matches too.
        idx = bisect.bisect_left(within, within[-1])
        top = within[idx]
        if merkle.tree_root(top, node) != heads[top]:
            first, last = _first_bad_between(0, top, heads, node)
            result.first_bad = first
            if first == last:
                what = f"entry {first} no longer matches the signed root"
            else:  # no signed checkpoint in between to narrow it further
                what = (
                    f"the first entry that no longer matches the signed root is in {first}..{last}"
                )
            result.fail(f"{what} (altered, inserted or removed; every entry before it matches)")
    if stored is not None and result.ok:
        _check_stored(stored, levels, result)
    return result


def _check_stored(
    stored: Iterator[tuple[int, int, bytes]], levels: list[bytearray], result: AuditResult
) -> None:
    expected = sum(len(level) // merkle.HASH_SIZE for level in levels if level)
    seen = 0
    for level, index, digest in stored:
        seen += 1
        want = levels[level][index * 32 : index * 32 + 32] if level < len(levels) else b""
        if bytes(want) != digest:
            if level == 0:
                result.first_bad = index + 1
                result.fail(f"entry {index + 1} does not match its recorded leaf hash")
            else:
                result.fail(f"the stored tree node ({level}, {index}) does not match the entries")
            return
    if seen != expected:
        result.fail(f"the stored tree has {seen} nodes, the entries make {expected}")
