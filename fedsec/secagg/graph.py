"""Communication graphs: complete (SecAgg) or sparse k-regular (SecAgg+).

Bell et al., "Secure Single-Server Aggregation with (Poly)Logarithmic
Overhead" (CCS 2020) let each client share keys and masks with O(log n)
neighbours only. The sparse graph here is the Harary graph H_{k,n} (each node
joined to the k/2 nearest nodes on each side of a cycle) over a uniformly
random ordering of the nodes: it is exactly k-regular and always connected
(k >= 2), and the ordering is a Fisher-Yates shuffle driven by an AES-CTR
keystream of a public seed, so every party derives the same graph.
"""

from __future__ import annotations

import hashlib
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


def graph_seed(public_seed: bytes, key_set: int, nodes: Sequence[int]) -> bytes:
    """Seed of one key set's graph: hash of the public seed, key set and nodes."""
    h = hashlib.sha256(b"fedsec/v1/graph|" + public_seed)
    h.update(key_set.to_bytes(8, "big"))
    for u in sorted(nodes):
        h.update(u.to_bytes(8, "big"))
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
