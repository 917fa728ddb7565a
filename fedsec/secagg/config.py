"""Public parameters of a secure-aggregation deployment.

Parsed once at the entry point; clients and server must hold equal configs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from fedsec.errors import ConfigError


class GraphKind(StrEnum):
    """Who shares with whom: everyone (SecAgg), a sparse graph (SecAgg+), or auto.

    ``AUTO`` is complete below :data:`AUTO_SPARSE_FROM` clients, sparse from there.
    """

    COMPLETE = "complete"
    SPARSE = "sparse"
    AUTO = "auto"


# Smallest key set for which ``AUTO`` picks the sparse graph. Below it the
# default degree 2·ceil(log2 n) is not much smaller than n - 1 (n = 16: 8 vs 15;
# n = 31: 10 vs 30), so the saving is small and the complete graph tolerates
# more dropouts per neighbourhood. From 32 on the saving grows with n (measured,
# docs/secagg.md): n = 50, d = 100k: a client's masked input 39 ms instead of
# 85-93 ms; n = 100, d = 1M: the server 0.43 s instead of 1.24 s.
AUTO_SPARSE_FROM = 32


class Variant(StrEnum):
    """Threat model: semi-honest server, or active server (signatures)."""

    SEMI_HONEST = "semi_honest"
    ACTIVE = "active"


@dataclass(frozen=True)
class SecAggConfig:
    """Protocol parameters.

    Parameters
    ----------
    variant
        ``SEMI_HONEST`` (Bonawitz et al. Sec. 4, honest-but-curious) or
        ``ACTIVE`` (Ed25519 signatures and the consistency check).
    graph
        ``COMPLETE``, ``SPARSE`` (Bell et al., CCS 2020) or ``AUTO``
        (:meth:`graph_for` resolves it by the number of clients of a key set).
    degree
        Degree of the sparse graph (even); ``None`` picks
        :func:`default_degree` of the number of clients. Ignored wherever the
        graph is complete (including ``AUTO`` below :data:`AUTO_SPARSE_FROM`).
    threshold
        Fraction of a closed neighbourhood (a client and its neighbours) whose
        shares reconstruct a secret; ``t = ceil(threshold * (degree + 1))``.
        The active variant needs ``threshold > 1/2``.
    bits
        Ring size ``k`` of the masked input (elements travel in ``k`` bits).
    clip
        Clipping range ``c`` of each update coordinate.
    max_weight
        Public bound on a client's integer weight (larger weights are clipped).
    rounds_per_key_set
        Rounds served by one setup (advertise + share keys).
    graph_seed
        Public seed of the sparse graph.
    """

    variant: Variant = Variant.SEMI_HONEST
    graph: GraphKind = GraphKind.AUTO
    degree: int | None = None
    threshold: float = 0.5
    bits: int = 20
    clip: float = 1.0
    max_weight: int = 1
    rounds_per_key_set: int = 5
    graph_seed: bytes = b"fedsec/secagg/graph"

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ConfigError("threshold must be a fraction in (0, 1]")
        if self.variant is Variant.ACTIVE and self.threshold <= 0.5:
            raise ConfigError("the active variant needs threshold > 1/2")
        if type(self.bits) is not int or not 2 <= self.bits <= 32:
            raise ConfigError("bits must be in [2, 32]")
        if not (math.isfinite(self.clip) and self.clip > 0):
            raise ConfigError("clip must be positive and finite")
        if type(self.max_weight) is not int or not 1 <= self.max_weight < 2**32:
            raise ConfigError("max_weight must be an integer in [1, 2^32)")
        if not 1 <= self.rounds_per_key_set <= 1000:
            raise ConfigError("rounds_per_key_set must be in [1, 1000]")
        if self.degree is not None and (self.degree < 2 or self.degree % 2):
            raise ConfigError("degree must be an even integer >= 2")

    @property
    def active(self) -> bool:
        """True for the active-adversary variant."""
        return self.variant is Variant.ACTIVE

    def graph_for(self, num_nodes: int) -> GraphKind:
        """The graph used for a key set of ``num_nodes`` clients: never ``AUTO``.

        :meth:`degree_for` and :meth:`threshold_for` go through it with the size
        of the key set's node list, on the client and on the server alike, so
        both resolve ``AUTO`` identically.
        """
        if self.graph is not GraphKind.AUTO:
            return self.graph
        if num_nodes < AUTO_SPARSE_FROM:
            return GraphKind.COMPLETE
        return GraphKind.SPARSE

    def degree_for(self, num_nodes: int) -> int:
        """Degree of the graph on ``num_nodes`` nodes."""
        if self.graph_for(num_nodes) is GraphKind.COMPLETE:
            return num_nodes - 1
        wanted = self.degree if self.degree is not None else default_degree(num_nodes)
        return min(wanted, num_nodes - 1)

    def threshold_for(self, num_nodes: int) -> int:
        """Shares needed per secret: ``ceil(threshold * (degree + 1))``, >= 1."""
        size = self.degree_for(num_nodes) + 1
        return max(1, math.ceil(self.threshold * size - 1e-9))


def default_degree(num_nodes: int) -> int:
    """``2 * ceil(log2 n)``: the O(log n) degree of Bell et al. (CCS 2020)."""
    return 2 * max(1, math.ceil(math.log2(max(num_nodes, 2))))
