"""Run the protocol in one process: the transport for tests and benchmarks.

:class:`LocalFederation` plays the network: it hands each request to the
client object (through :meth:`to_record` / :meth:`from_record` and the
client's byte serialisation when ``wire=True``, as a Flower layer would) and
each reply back to the server, and it can drop any client before any stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from fedsec.crypto.signatures import generate_signing_key, verify_key_of
from fedsec.policy import MODES, SitePolicy
from fedsec.secagg.client import SecAggClient
from fedsec.secagg.config import SecAggConfig
from fedsec.secagg.messages import (
    AdvertiseKeysRequest,
    ClientMessage,
    ConsistencyRequest,
    MaskedInputRequest,
    SeedRevealRequest,
    ServerMessage,
    ShareKeysRequest,
    UnmaskRequest,
)
from fedsec.secagg.server import SecAggServer
from fedsec.secagg.server_state import AggregateResult
from fedsec.secagg.stages import Stage

Drops = Mapping[Stage, set[int]]


@dataclass
class LocalFederation:
    """A server and ``node_ids`` clients wired together in memory.

    Every client holds ``policy`` (default: the default floors, any variant),
    or its own from ``policies``.
    """

    config: SecAggConfig
    node_ids: Sequence[int]
    wire: bool = True
    policy: SitePolicy = field(
        default_factory=lambda: SitePolicy(modes=frozenset(MODES))
    )
    policies: Mapping[int, SitePolicy] = field(default_factory=dict)
    clients: dict[int, SecAggClient] = field(init=False)
    server: SecAggServer = field(init=False)
    client_seconds: dict[int, float] = field(default_factory=dict)
    server_seconds: float = 0.0
    _ring: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        signing = {u: generate_signing_key() for u in self.node_ids}
        verify = {u: verify_key_of(k) for u, k in signing.items()}
        self.clients = {
            u: SecAggClient(
                u,
                self.config,
                signing_key=signing[u],
                verify_keys=verify,
                policy=self.policy_of(u),
            )
            for u in self.node_ids
        }
        self.server = SecAggServer(self.config, verify_keys=verify)

    def policy_of(self, node: int) -> SitePolicy:
        """The policy client ``node`` holds."""
        return self.policies.get(node, self.policy)

    def setup(self, drops: Drops | None = None) -> None:
        """Run advertise + share keys; clients in ``drops[stage]`` stay silent."""
        drops = drops or {}
        out: Mapping[int, ServerMessage] = self._server(
            lambda: self.server.begin_setup(self.node_ids)
        )
        while out:
            self._exchange(out, drops, None, None)
            out = self._server(self.server.advance)

    def round(
        self,
        rnd: int,
        updates: Mapping[int, npt.NDArray[np.float32]],
        weights: Mapping[int, int],
        drops: Drops | None = None,
    ) -> AggregateResult:
        """Run one secure round; returns the server's result."""
        drops = drops or {}
        dim = next(iter(updates.values())).size
        self.client_seconds = dict.fromkeys(self.node_ids, 0.0)
        self.server_seconds = 0.0
        out: Mapping[int, ServerMessage] = self._server(
            lambda: self.server.begin_round(rnd, dim)
        )
        while out:
            self._exchange(out, drops, updates, weights)
            out = self._server(self.server.advance)
        return self.server.result()

    def ring_round(
        self,
        rnd: int,
        values: Mapping[int, npt.NDArray[np.uint32]],
        drops: Drops | None = None,
    ) -> AggregateResult:
        """One secure round on inputs already in Z_{2^bits}, each of weight 1.

        The server's ``ring_sum`` is the exact sum of the survivors' vectors
        modulo ``2^bits`` (as :meth:`SecAggClient.masked_ring_input` masks them).
        """
        self._ring = True
        try:
            ones = dict.fromkeys(values, 1)
            return self.round(rnd, values, ones, drops)  # type: ignore[arg-type]
        finally:
            self._ring = False

    def _server(
        self, call: Callable[[], Mapping[int, ServerMessage]]
    ) -> Mapping[int, ServerMessage]:
        start = time.perf_counter()
        try:
            return call()
        finally:
            self.server_seconds += time.perf_counter() - start

    def _exchange(
        self,
        out: Mapping[int, ServerMessage],
        drops: Drops,
        updates: Mapping[int, npt.NDArray[np.float32]] | None,
        weights: Mapping[int, int] | None,
    ) -> None:
        for node, req in out.items():
            if node in drops.get(req.STAGE, set()):
                continue
            start = time.perf_counter()
            reply = self._client_step(node, req, updates, weights)
            self.client_seconds[node] = self.client_seconds.get(node, 0.0) + (
                time.perf_counter() - start
            )
            start = time.perf_counter()
            if self.wire:
                reply = type(reply).from_record(reply.to_record())
            self.server.handle(node, reply)
            self.server_seconds += time.perf_counter() - start

    def _client_step(
        self,
        node: int,
        req: ServerMessage,
        updates: Mapping[int, npt.NDArray[np.float32]] | None,
        weights: Mapping[int, int] | None,
    ) -> ClientMessage:
        client = self.clients[node]
        if self.wire:
            req = type(req).from_record(req.to_record())
            client = SecAggClient.from_bytes(client.to_bytes(), self.policy_of(node))
        reply: ClientMessage
        if isinstance(req, AdvertiseKeysRequest):
            reply = client.advertise_keys(req)
        elif isinstance(req, SeedRevealRequest):
            reply = client.seed_reveal(req)
        elif isinstance(req, ShareKeysRequest):
            reply = client.share_keys(req)
        elif isinstance(req, MaskedInputRequest):
            if updates is None or weights is None:
                raise ValueError("a round needs updates and weights")
            if self._ring:
                ring = np.asarray(updates[node], dtype=np.uint32)
                reply = client.masked_ring_input(req, ring, weights[node])
            else:
                reply = client.masked_input(req, updates[node], weights[node])
        elif isinstance(req, ConsistencyRequest):
            reply = client.consistency_check(req)
        elif isinstance(req, UnmaskRequest):
            reply = client.unmask(req)
        self.clients[node] = client
        return reply
