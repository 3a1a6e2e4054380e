"""RFC 9162 tree hashing and proofs against the published RFC 6962 test vectors.

The vectors are those of transparency-dev/merkle (testonly/constants.go and
proof/verify_test.go), the reference used by Certificate Transparency and
the Go checksum database.
"""

from __future__ import annotations

import random

import pytest

from consentdesk.domain import merkle

LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
LEAF_HASHES = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
]
# (leaf index, tree size, proof): the vectors number leaves from 1; these from 0.
INCLUSION = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (0, 1, []),
]
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _hashes() -> list[bytes]:
    return [merkle.leaf_hash(d) for d in LEAVES]


def _lookup() -> merkle.NodeLookup:
    return merkle.lookup_in(merkle.perfect_levels(_hashes()))


def _hex(hashes: list[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


def test_leaf_hashes_and_roots_match_the_vectors() -> None:
    assert _hex(_hashes()) == LEAF_HASHES
    for size, root in enumerate(ROOTS):
        assert merkle.root_of(_hashes()[:size]).hex() == root


def test_compact_range_grows_through_every_vector_root_and_names_perfect_subtrees() -> None:
    compact = merkle.CompactRange()
    made: dict[tuple[int, int], bytes] = {}
    for size, leaf in enumerate(_hashes(), start=1):
        for level, index, digest in compact.append(leaf):
            made[(level, index)] = digest
        assert compact.root().hex() == ROOTS[size]
        again = merkle.CompactRange.from_nodes(size, lambda lv, i: made[(lv, i)])
        assert again.hashes == compact.hashes
    assert made[(1, 3)].hex() == "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
    assert made[(2, 1)].hex() == "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_proofs_match_and_verify(index: int, size: int, proof: list[str]) -> None:
    node = _lookup()
    assert _hex(merkle.inclusion_proof(index, size, node)) == proof
    root = bytes.fromhex(ROOTS[size])
    leaf = _hashes()[index]
    path = [bytes.fromhex(p) for p in proof]
    merkle.verify_inclusion(index, size, leaf, path, root)
    assert merkle.tree_root(size, node) == root
    # The corruptions of the vectors' own verifier test must all fail.
    bad = [
        (index - 1, size, leaf, path, root),
        (index + 1, size, leaf, path, root),
        (index ^ 2, size, leaf, path, root),
        (index, size * 2, leaf, path, root),
        (index, size // 2, leaf, path, root),
        (index, size, merkle.leaf_hash(b"WrongLeaf"), path, root),
        (index, size, leaf, path, merkle.EMPTY_ROOT),
        (index, size, leaf, path, SOME_HASH),
        (index, size, leaf, [*path, root], root),
        (index, size, leaf, [root, *path], root),
    ]
    for i in range(len(path)):
        flipped = list(path)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        bad.append((index, size, leaf, flipped, root))
    if path:
        bad.append((index, size, leaf, path[:-1], root))
    for probe in bad:
        if probe[:2] == (index, size) and probe[2:] == (leaf, path, root):
            continue
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(*probe)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_proofs_match_and_verify(old: int, new: int, proof: list[str]) -> None:
    assert _hex(merkle.consistency_proof(old, new, _lookup())) == proof
    r1, r2 = bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new])
    path = [bytes.fromhex(p) for p in proof]
    merkle.verify_consistency(old, new, r1, r2, path)
    if not path:
        return
    bad = [
        (old - 1, new, r1, r2, path),
        (old + 1, new, r1, r2, path),
        (old ^ 2, new, r1, r2, path),
        (old, new * 2, r1, r2, path),
        (old, new // 2, r1, r2, path),
        (old, new, SOME_HASH, r2, path),
        (old, new, r1, SOME_HASH, path),
        (old, new, r2, r1, path),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*path, r1]),
        (old, new, r1, r2, [r2, *path]),
        (old, new, r1, r2, [path[0], *path]),
        (old, new, r1, r2, path[:-1]),
    ]
    for i in range(len(path)):
        flipped = list(path)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        bad.append((old, new, r1, r2, flipped))
    for probe in bad:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(*probe)


def test_trivial_and_impossible_consistency() -> None:
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    merkle.verify_consistency(0, 0, a, a, [])
    merkle.verify_consistency(0, 1, a, b, [])
    for probe in [
        (1, 1, a, b, []),
        (1, 0, a, b, []),
        (2, 1, a, b, []),
        (1, 2, a, b, []),
        (1, 1, a, a, [merkle.EMPTY_ROOT]),
    ]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(*probe)


def test_random_trees_prove_every_leaf_and_every_prefix() -> None:
    rng = random.Random(9162)
    for size in [*range(1, 34), 100, 257]:
        leaves = [merkle.leaf_hash(rng.randbytes(rng.randrange(40))) for _ in range(size)]
        node = merkle.lookup_in(merkle.perfect_levels(leaves))
        root = merkle.root_of(leaves)
        assert merkle.tree_root(size, node) == root
        for index in range(size):
            merkle.verify_inclusion(
                index, size, leaves[index], merkle.inclusion_proof(index, size, node), root
            )
        for old in range(size + 1):
            old_root = merkle.root_of(leaves[:old])
            proof = merkle.consistency_proof(old, size, node)
            merkle.verify_consistency(old, size, old_root, root, proof)
