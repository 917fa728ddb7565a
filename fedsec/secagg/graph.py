"""Communication graphs: complete (SecAgg) or sparse k-regular (SecAgg+).

Bell et al., "Secure Single-Server Aggregation with (Poly)Logarithmic
Overhead" (CCS 2020) let each client share keys and masks with O(log n)
neighbours only. The sparse graph here is the Harary graph H_{k,n} (each node
joined to the k/2 nearest nodes on each side of a cycle) over a uniformly
random ordering of the nodes: it is exactly k-regular and always connected
(k >= 2), and the ordering is a Fisher-Yates shuffle driven by an AES-CTR
keystream of a seed every party derives alike.

The seed is not the server's to choose. Bell et al.'s malicious-server
argument assumes the graph is random given the set of clients; a seed that
follows from values the server picks (the key-set id, the node list) lets it
grind: about 100 tries put 3 colluding sites around a victim of degree 4.
So the sites contribute the randomness, by commit and reveal inside key
set-up: each site draws a fresh 32-byte nonce and sends its commitment
(:func:`commitment`, signed with its keys in the active variant) while
advertising; once the server has fixed the contributors and relayed their
commitments, each site reveals its nonce, and the seed is the hash of the
public seed, key set, node list, contributors and every revealed nonce
(:func:`graph_seed`). A site checks every reveal against the commitment list
it saw, so the seed is fixed before any nonce is known: neither the server
nor colluding sites (who cannot change a commitment after seeing others'
nonces) can steer it, and a missing reveal discards the key set rather than
letting the server choose whose randomness counts. What remains: a server
can abort a set-up and start another (each try costs a full set-up that every
site sees) and it chooses which sites take part at all.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

from fedsec.crypto.prg import MaskGenerator
from fedsec.errors import ConfigError


def neighbours(
    nodes: Sequence[int], degree: int, seed: bytes
) -> dict[int, tuple[int, ...]]:
    """Return each node's sorted neighbours in the graph on ``nodes``.

    ``degree >= len(nodes) - 1`` gives the complete graph; otherwise ``degree``
    must be even and the graph is the randomly ordered Harary graph.
    """
    ordered = sorted(set(nodes))
    n = len(ordered)
    if n != len(nodes):
        raise ConfigError("graph nodes must be distinct")
    if degree >= n - 1:
        return {u: tuple(v for v in ordered if v != u) for u in ordered}
    if degree < 2 or degree % 2:
        raise ConfigError("sparse graph degree must be even and >= 2")
    cycle = _shuffle(ordered, seed)
    half = degree // 2
    out: dict[int, tuple[int, ...]] = {}
    for pos, u in enumerate(cycle):
        near = {cycle[(pos + off) % n] for off in range(-half, half + 1) if off}
        out[u] = tuple(sorted(near))
    return out


NONCE_BYTES = 32


def commitment(nonce: bytes, key_set: int, node: int) -> bytes:
    """A site's commitment to its graph nonce in a key set (SHA-256, binding)."""
    head = b"fedsec/v1/graph-commit|" + struct.pack(">QQ", key_set, node)
    return hashlib.sha256(head + nonce).digest()


def commitments_digest(
    contributors: Sequence[int], commitments: Sequence[bytes]
) -> bytes:
    """What a site remembers of the commitments it saw before revealing."""
    h = hashlib.sha256(b"fedsec/v1/graph-commitments|")
    for u, c in zip(contributors, commitments, strict=True):
        h.update(u.to_bytes(8, "big") + c)
    return h.digest()


def graph_seed(
    public_seed: bytes,
    key_set: int,
    nodes: Sequence[int],
    contributors: Sequence[int] = (),
    nonces: Sequence[bytes] = (),
) -> bytes:
    """Seed of one key set's graph: hash of the public values and the nonces.

    ``contributors`` (sorted) revealed ``nonces``; without them the seed is
    public (only the complete graph, where it does not matter, uses that).
    """
    h = hashlib.sha256(b"fedsec/v1/graph|" + public_seed)
    h.update(key_set.to_bytes(8, "big"))
    for u in sorted(nodes):
        h.update(u.to_bytes(8, "big"))
    h.update(len(contributors).to_bytes(8, "big"))
    for u, nonce in zip(contributors, nonces, strict=True):
        h.update(u.to_bytes(8, "big") + nonce)
    return h.digest()


def _shuffle(items: list[int], seed: bytes) -> list[int]:
    """Fisher-Yates shuffle with unbiased draws from an AES-CTR keystream."""
    out = list(items)
    words = [int(w) for w in MaskGenerator().uint64(seed, 4 * len(out) + 64)]
    it = iter(words)
    for i in range(len(out) - 1, 0, -1):
        bound = i + 1
        limit = (1 << 64) - (1 << 64) % bound
        while (w := next(it)) >= limit:  # rejection: probability < 2^-32 here
            pass
        j = w % bound
        out[i], out[j] = out[j], out[i]
    return out
