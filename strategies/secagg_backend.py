"""Secure aggregation as an aggregation backend: the server never sees an update.

Drives :class:`fedsec.secagg.server.SecAggServer` over the Flower Grid. Each
protocol stage is one exchange of ``query.secagg_<stage>`` messages
(:func:`fedsec.flower.exchange.send_and_collect`: each reply is handled as it
arrives, so masked inputs are summed while other sites still compute). The
training request rides on the masked-input stage, so a steady secure round
costs two round trips (three with the active variant's
consistency check), and key set-up (advertise + share keys) two more once per
``rounds_per_key_set`` rounds.

A site that answers with an error, a malformed reply, or not at all before the
timeout is a dropout of that stage; the protocol recovers while at least t
neighbours survive. Otherwise the round aborts (``AbortError``, logged), the
strategy receives nothing and the global model stays as it was. A site proven
to have sent share ciphertexts that do not open (or to have accused another
falsely) is excluded from every later key set and no longer sampled.

With distributed DP the noise is calibrated for ``dp-survivor-fraction`` of
the sampled sites surviving, not for the worst case the threshold allows; ε
is accounted per round with the noise the actual survivors carry, and each
site refuses to unmask a sum carrying less than its own policy allows.

The result handed to the strategy is one reply carrying the securely computed
weighted average ``w + Σ n_i Δ_i / Σ n_i`` with weight ``Σ n_i``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from fedsec.config import DPSettings, SecAggSettings
from fedsec.dp.accounting import epsilon_of_steps
from fedsec.dp.distributed import DistributedDPParams, decode
from fedsec.errors import AbortError, FedsecError
from fedsec.flower.exchange import reply_node, send_and_collect
from fedsec.flower.records import content_bytes
from fedsec.flower.secagg import (
    DP_RECORD,
    PROTOCOL_RECORD,
    SITES_RECORD,
    message_type,
)
from fedsec.identity import load_registry
from fedsec.secagg.errors import MessageFormatError
from fedsec.secagg.messages import ServerMessage, parse_client_message
from fedsec.secagg.server import SecAggServer
from fedsec.secagg.server_state import AggregateResult
from fedsec.secagg.stages import Stage
from strategies.aggregate_reply import aggregate_reply, global_vector
from strategies.backends import RoundOutcome, client_sample_rate, max_epsilon

log = logging.getLogger("fedsec")


@dataclass(frozen=True)
class MaskedStage:
    """What the masked-input stage asks for: a vector of ``dim`` and its records.

    ``message_type`` empty: ``query.secagg_masked_input`` (a model update).
    """

    dim: int
    records: Mapping[str, ArrayRecord | ConfigRecord]
    message_type: str = ""


@dataclass(frozen=True)
class SecureSum:
    """The protocol's result for one vector per surviving site, and its cost."""

    result: AggregateResult
    replies: list[Message]
    bytes_up: int
    bytes_down: int
    metrics: dict[str, float]


class SecureSumAborted(AbortError):
    """Too few sites survived; nothing was revealed (traffic and metrics kept)."""

    def __init__(
        self, reason: str, bytes_up: int, bytes_down: int, metrics: dict[str, float]
    ) -> None:
        super().__init__(reason)
        self.bytes_up = bytes_up
        self.bytes_down = bytes_down
        self.metrics = metrics


@dataclass(frozen=True)
class RoundNoise:
    """Public distributed-DP parameters of one round and its rotation seed."""

    params: DistributedDPParams
    seed: bytes


class _Traffic:
    """Bytes and round trips of one training round, per stage."""

    def __init__(self) -> None:
        self.down: dict[str, int] = defaultdict(int)
        self.up: dict[str, int] = defaultdict(int)
        self.seconds: dict[str, float] = defaultdict(float)
        self.round_trips = 0

    def metrics(self, clients: int) -> dict[str, float]:
        out: dict[str, float] = {"round_trips": float(self.round_trips)}
        for stage, nbytes in self.up.items():
            out[f"up_per_client_{stage}"] = nbytes / max(clients, 1)
        for stage, seconds in self.seconds.items():
            out[f"seconds_{stage}"] = round(seconds, 3)
        return out


def registry_dir(configured: str) -> Path:
    """The server's copy of the public site registry.

    ``secagg-keys-dir`` of the run config, else ``$FLWR_HOME/secagg-keys``
    (where ``make keys`` puts it). Sites never read this: each has its own
    key folder in its node config.
    """
    if configured:
        return Path(configured)
    return Path(os.environ.get("FLWR_HOME", ".flwr")) / "secagg-keys"


class SecAggBackend:
    """Bonawitz/SecAgg+ secure aggregation over the Grid (see module docstring)."""

    def __init__(self, settings: SecAggSettings, dp: DPSettings | None = None) -> None:
        self.settings = settings
        self.dp = dp if dp is not None and dp.mode == "distributed" else None
        self.name = f"secagg-{settings.mode}" + ("+ddp" if self.dp else "")
        # (effective noise multiplier, client sampling rate, 1) per DP round
        self.dp_steps: list[tuple[float, float, int]] = []
        self.server = SecAggServer(settings.protocol_config())
        self.registry = (
            load_registry(registry_dir(settings.keys_dir))
            if settings.mode == "active"
            else {}
        )
        self.key_set_nodes: frozenset[int] = frozenset()
        self.sites: dict[int, str] = {}

    def train_round(
        self, grid: Grid, server_round: int, messages: list[Message], timeout: float
    ) -> RoundOutcome:
        """Set up keys if needed, then one secure round; returns the average."""
        excluded = self.server.excluded
        if any(m.metadata.dst_node_id in excluded for m in messages):
            messages = [m for m in messages if m.metadata.dst_node_id not in excluded]
            log.info("secagg: %d excluded site(s) not asked", len(excluded))
        if not messages:
            return RoundOutcome([], 0, 0, {"aborted": 1.0})
        nodes = [m.metadata.dst_node_id for m in messages]
        start, like = global_vector(messages)
        config: ConfigRecord = messages[0].content["config"]
        noise = self._noise_params(int(start.size), len(nodes))
        records: dict[str, ArrayRecord | ConfigRecord] = {"arrays": like}
        if noise is not None:
            records[DP_RECORD] = ConfigRecord(
                {**noise.params.to_config(), "rotation-seed": noise.seed}
            )
        masked = MaskedStage(
            dim=int(start.size) if noise is None else noise.params.padded_dim,
            records=records,
        )
        try:
            secure = self.secure_sum(grid, server_round, nodes, config, masked, timeout)
        except SecureSumAborted as exc:
            log.warning(
                "secure round %d aborted (%s); nothing was revealed and the global "
                "model stays as it was",
                server_round,
                exc,
            )
            return RoundOutcome([], exc.bytes_up, exc.bytes_down, exc.metrics)
        result = secure.result
        if noise is None:
            average = start + result.weighted_sum / max(result.total_weight, 1)
        else:
            # unweighted mean of the clipped, noised updates of the survivors
            average = start + decode(
                result.ring_sum, noise.params, noise.seed, float(len(result.survivors))
            )
        metrics = dict(secure.metrics)
        epsilon = max_epsilon([r for r in secure.replies if "metrics" in r.content])
        if noise is not None:
            z_eff = noise.params.effective_noise_multiplier(len(result.survivors))
            metrics["noise_multiplier"] = z_eff
            epsilon = self._account(z_eff, len(nodes), grid)
        if epsilon is not None:
            metrics["epsilon"] = epsilon
        reply = aggregate_reply(like, average, float(result.total_weight))
        return RoundOutcome([reply], secure.bytes_up, secure.bytes_down, metrics)

    def secure_sum(
        self,
        grid: Grid,
        protocol_round: int,
        nodes: list[int],
        config: ConfigRecord,
        masked: MaskedStage,
        timeout: float,
    ) -> SecureSum:
        """Sum one ``masked.dim``-vector per site of ``nodes``; the server sees the sum.

        Sets up a key set first when needed. The masked-input stage carries
        ``masked.records`` and travels as ``masked.message_type``, so the same
        protocol sums a model update (training) or a statistics vector
        (analytics). Raises :class:`SecureSumAborted` (with the traffic so
        far) when too few sites survive; nothing is revealed then.
        """
        traffic = _Traffic()
        replies: list[Message] = []
        try:
            if self.server.needs_setup() or not set(nodes) <= self.key_set_nodes:
                self._setup(grid, nodes, config, traffic, timeout)
            requests: Mapping[int, ServerMessage] = self.server.begin_round(
                protocol_round, masked.dim, nodes
            )
            while requests:
                replies += self._exchange(
                    grid, requests, config, masked, traffic, timeout
                )
                requests = self.server.advance()
            result = self.server.result()
        except AbortError as exc:
            metrics = {
                "aborted": 1.0,
                **self._stage_metrics(),
                **traffic.metrics(len(nodes)),
            }
            raise SecureSumAborted(
                str(exc),
                sum(traffic.up.values()),
                sum(traffic.down.values()),
                metrics,
            ) from exc
        metrics = {
            "survivors": float(len(result.survivors)),
            "dropped": float(len(result.dropped)),
            **self._stage_metrics(),
            **traffic.metrics(len(nodes)),
        }
        if self.server.excluded:
            metrics["excluded"] = float(len(self.server.excluded))
        return SecureSum(
            result,
            replies,
            sum(traffic.up.values()),
            sum(traffic.down.values()),
            metrics,
        )

    # ------------------------------------------------------- distributed DP
    def _noise_params(self, dim: int, num_clients: int) -> RoundNoise | None:
        """This round's public distributed-DP parameters and rotation seed.

        The noise is calibrated for the survivors expected
        (``dp-survivor-fraction`` of the sampled sites), not for the fewest
        the threshold allows: when all survive, that is ``sqrt(n / t)`` less
        noise on the sum than the worst-case calibration.
        """
        if self.dp is None:
            return None
        cfg = self.server.config
        expected = max(1, math.ceil(self.dp.survivor_fraction * num_clients - 1e-9))
        params = DistributedDPParams(
            dim=dim,
            clip_norm=self.dp.clip_norm,
            noise_multiplier=self.dp.noise_multiplier,
            num_clients=num_clients,
            min_survivors=expected,
            ring_bits=cfg.bits,
            mechanism=self.dp.mechanism,
        )
        return RoundNoise(params, os.urandom(32))

    def _account(self, noise_multiplier: float, sampled: int, grid: Grid) -> float:
        """ε(δ) after this round, with the survivors' noise and the sampling rate."""
        if self.dp is None:
            raise AbortError("no distributed DP configured")
        self.dp_steps.append((noise_multiplier, client_sample_rate(grid, sampled), 1))
        return epsilon_of_steps(self.dp_steps, self.dp.delta, self.dp.accountant)

    # ------------------------------------------------------------------ stages
    def _setup(
        self,
        grid: Grid,
        nodes: list[int],
        config: ConfigRecord,
        traffic: _Traffic,
        timeout: float,
    ) -> None:
        self.key_set_nodes = frozenset()
        self.sites = {}
        requests: Mapping[int, ServerMessage] = self.server.begin_setup(nodes)
        while requests:
            self._exchange(grid, requests, config, None, traffic, timeout)
            requests = self.server.advance()
        self.key_set_nodes = frozenset(nodes)

    def _exchange(
        self,
        grid: Grid,
        requests: Mapping[int, ServerMessage],
        config: ConfigRecord,
        masked: MaskedStage | None,
        traffic: _Traffic,
        timeout: float,
    ) -> list[Message]:
        stage = next(iter(requests.values())).STAGE
        out = []
        for node, request in requests.items():
            content = RecordDict(
                {PROTOCOL_RECORD: ConfigRecord(request.to_record()), "config": config}
            )
            kind = message_type(stage)
            if stage is Stage.MASKED_INPUT and masked is not None:
                for key, record in masked.records.items():
                    content[key] = record
                kind = masked.message_type or kind
            if stage is Stage.SHARE_KEYS and self.registry:
                content[SITES_RECORD] = ConfigRecord(
                    {"nodes": list(self.sites), "names": list(self.sites.values())}
                )
            out.append(Message(content=content, dst_node_id=node, message_type=kind))
        traffic.down[stage.value] += sum(content_bytes(m.content) for m in out)
        traffic.round_trips += 1
        # progress: in deployment a stage takes seconds (polling, a fresh
        # ClientApp process per message), and one round several stages
        log.info("secagg %s: asking %d site(s)", stage.value, len(out))
        started = time.perf_counter()
        accepted: list[Message] = []

        def accept(reply: Message) -> None:
            # runs as each reply arrives: a masked input joins the running sum
            # while the other sites are still computing or uploading
            node = reply_node(reply, out)
            if reply.has_error():
                log.info(
                    "secagg %s: node %d dropped: %s",
                    stage.value,
                    node,
                    reply.error.reason,
                )
                return
            traffic.up[stage.value] += content_bytes(reply.content)
            try:
                if stage is Stage.ADVERTISE_KEYS and self.registry:
                    self._register_site(node, reply)
                parsed = parse_client_message(dict(reply.content[PROTOCOL_RECORD]))
                if parsed.STAGE is not stage:
                    raise MessageFormatError("reply of another stage", node_id=node)
                self.server.handle(node, parsed)
            except (FedsecError, KeyError, TypeError, ValueError) as exc:
                # a malformed or refused reply makes the node a dropout
                log.warning(
                    "secagg %s: reply of node %d refused: %s", stage.value, node, exc
                )
                return
            accepted.append(reply)

        send_and_collect(
            grid,
            out,
            timeout=timeout,
            on_reply=accept,
            until=self.server.stage_complete,
        )
        traffic.seconds[stage.value] += time.perf_counter() - started
        return accepted

    def _register_site(self, node: int, reply: Message) -> None:
        name = str(reply.content["site"]["name"])
        if name not in self.registry or name in self.sites.values():
            raise AbortError(
                f"unknown or repeated site name {name!r}", stage="advertise_keys"
            )
        self.sites[node] = name
        self.server.verify_keys[node] = self.registry[name]

    def _stage_metrics(self) -> dict[str, float]:
        m = self.server.metrics
        counters = {"dropouts": m.dropouts, "not_awaited": m.not_awaited}
        return {
            f"{name}_{stage}": float(n)
            for name, counts in counters.items()
            for stage, n in counts.items()
            if n
        }
