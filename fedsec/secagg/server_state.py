"""State records of the secure-aggregation server and its round results."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from fedsec.crypto.quantize import Quantizer
from fedsec.secagg.messages import AdvertiseKeys


@dataclass(frozen=True)
class AggregateResult:
    """Outcome of one secure round.

    ``weighted_sum`` is the dequantised ``Σ w_i x_i`` over ``survivors``,
    ``ring_sum`` the exact sum of their quantised inputs in Z_{2^k} and
    ``total_weight`` is ``Σ w_i``; the weighted average is
    ``weighted_sum / total_weight``.
    """

    round: int
    weighted_sum: npt.NDArray[np.float64]
    ring_sum: npt.NDArray[np.uint32]
    total_weight: int
    survivors: tuple[int, ...]
    dropped: tuple[int, ...]


@dataclass
class StageMetrics:
    """Public per-stage counters of the latest setup and round.

    ``dropouts`` counts requests left unanswered that the protocol had to
    recover from; ``not_awaited`` counts unmask requests to spare holders
    whose reply was not needed once every secret had ``t`` shares.
    """

    replies: dict[str, int] = field(default_factory=dict)
    dropouts: dict[str, int] = field(default_factory=dict)
    not_awaited: dict[str, int] = field(default_factory=dict)
    bytes_received: dict[str, int] = field(default_factory=dict)
    bytes_sent: dict[str, int] = field(default_factory=dict)


@dataclass
class KeySetState:
    """What the server keeps about one key set."""

    key_set: int
    nodes: tuple[int, ...]
    graph: dict[int, tuple[int, ...]]  # empty until the nonces are revealed
    threshold: int
    sparse: bool = False
    adverts: dict[int, AdvertiseKeys] = field(default_factory=dict)
    advertised: frozenset[int] = frozenset()
    contributors: tuple[int, ...] = ()
    nonces: dict[int, bytes] = field(default_factory=dict)
    # recipient -> sender -> (ciphertext, sender's signature or b"")
    ciphertexts: dict[int, dict[int, tuple[bytes, bytes]]] = field(default_factory=dict)
    shared: frozenset[int] = frozenset()
    delivered: set[int] = field(default_factory=set)
    next_slot: int = 0
    ready: bool = False
    # a client left the key set after a share complaint: set up a new one
    compromised: bool = False

    def closed(self, node: int) -> frozenset[int]:
        """``node`` and its neighbours."""
        return frozenset((*self.graph[node], node))

    def x_of(self, node: int) -> int:
        """Public Shamir evaluation point of ``node``."""
        return 1 + self.nodes.index(node)

    def prune(self, candidates: Iterable[int]) -> frozenset[int]:
        """Drop nodes with fewer than t members of their closed neighbourhood."""
        alive = set(candidates)
        while True:
            weak = {u for u in alive if len(self.closed(u) & alive) < self.threshold}
            if not weak:
                return frozenset(alive)
            alive -= weak


@dataclass
class RoundState:
    """What the server keeps about the round in progress."""

    round: int
    slot: int
    dim: int
    participants: tuple[int, ...]
    quantizer: Quantizer
    acc: npt.NDArray[np.uint32]
    weight: int = 0
    received: set[int] = field(default_factory=set)
    arrival: list[int] = field(default_factory=list)
    survivors: tuple[int, ...] = ()
    dropped: tuple[int, ...] = ()
    signatures: dict[int, bytes] = field(default_factory=dict)
    complaints: dict[int, tuple[int, ...]] = field(default_factory=dict)
    recipients: frozenset[int] = frozenset()
    signers: tuple[int, ...] = ()
    signer_sigs: tuple[bytes, ...] = ()
    asked: set[int] = field(default_factory=set)
    responders: set[int] = field(default_factory=set)
    seed_shares: dict[int, dict[int, bytes]] = field(default_factory=dict)
    key_shares: dict[int, dict[int, bytes]] = field(default_factory=dict)
