"""MPC clip-and-sum as an aggregation backend (three compute parties).

Secure aggregation trusts each site to clip its own update; here nobody is
trusted that far. Every site secret-shares its update to three compute
parties (replicated sharing over Z_2^64, each share encrypted to its party);
the parties clip every update to L2 norm C on the shares, sum them weighted,
add Gaussian noise generated inside the MPC, and reveal only that sum (see
``docs/mpc.md``). This backend drives it over the Grid:

1. once: ``query.mpc_hello`` to every node finds the three parties, their
   public keys and addresses;
2. every round: ``query.mpc_share`` to the training sites (train, share,
   encrypt), then ``query.mpc_compute`` to the three parties at once;
3. the three additive output shares are summed into the released result.

A site that sends nothing, or whose package does not decrypt, is left out.
The strategy receives one reply with ``w + Σ w_i s_i Δ_i / Σ w_i``.

Sites with a signing key sign their packages and name themselves; the
backend relays, with each package, the sender's site name and its signature
for that party. A party with the site registry counts only registered sites
whose signatures verify, each once (:mod:`fedsec.mpc.origin`); the round
metric ``mpc_parties_checking_sites`` says how many of the three did.

Every round is a fresh session with an unpredictable 63-bit id
(:func:`~fedsec.flower.mpc.new_session`): the sites bind it into their
packages and each party computes an id at most once (its session log
outlives runs, so ids must not repeat across runs either). The sites and
the parties check the terms (:func:`~fedsec.flower.mpc.clip_sum_config`)
against their own policies and refuse what is weaker; a party also refuses a
session of fewer than its ``policy-min-sites`` clients.

With noise (``mpc-noise-multiplier`` z > 0) the mode is differentially
private like distributed DP: every weight is clamped to 1 inside the MPC
(whatever a site claims), so one site moves the sum by at most C, the noise
no coalition of ``noise_colluders`` parties knows has standard deviation
z·C, the result is the unweighted mean of the clipped updates, and ε(δ) is
accounted after every round with the client sampling rate, by the
accountant and δ of the ``dp-*`` settings. Without noise inside the MPC,
sites that train with local DP-SGD report their ε and the largest is logged.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from fedsec.config import DPSettings, MPCSettings
from fedsec.dp.accounting import epsilon
from fedsec.errors import ConfigError, FedsecError
from fedsec.flower.exchange import reply_node, send_and_collect
from fedsec.flower.mpc import (
    COMPUTE,
    HELLO,
    MPC_RECORD,
    NOT_A_PARTY,
    SHARE,
    clip_sum_config,
    message_type,
    new_session,
    share_origin,
)
from fedsec.flower.records import content_bytes
from fedsec.mpc.clip_and_sum import OutputShare, combine_outputs
from strategies.aggregate_reply import aggregate_reply, global_vector
from strategies.backends import RoundOutcome, client_sample_rate, max_epsilon

log = logging.getLogger("fedsec")


@dataclass(frozen=True)
class PartyDirectory:
    """The three compute parties as they answered ``query.mpc_hello``."""

    nodes: tuple[int, ...]
    public_keys: tuple[bytes, ...]
    addresses: tuple[str, ...]
    certificates: tuple[bytes, ...]
    key_signatures: tuple[bytes, ...]


def discover_parties(
    grid: Grid, config: ConfigRecord, timeout: float
) -> tuple[PartyDirectory, int, int]:
    """Ask every node ``query.mpc_hello``; the parties, bytes down and up.

    Raises
    ------
    ConfigError
        Unless exactly parties 0, 1 and 2 answered.
    """
    nodes = sorted(grid.get_node_ids())
    msgs = [
        Message(
            content=RecordDict({"config": config}),
            dst_node_id=n,
            message_type=message_type(HELLO),
        )
        for n in nodes
    ]
    down = sum(content_bytes(m.content) for m in msgs)
    found: dict[int, tuple[int, bytes, str, bytes, bytes]] = {}
    refusals: list[str] = []
    up = 0
    for reply in send_and_collect(grid, msgs, timeout=timeout):
        if reply.has_error():
            refusals.append(f"node {reply.metadata.src_node_id}: {reply.error.reason}")
            log.info("mpc hello: %s", refusals[-1])
            continue
        up += content_bytes(reply.content)
        rec = reply.content[MPC_RECORD]
        index = int(rec["party"])
        if index == NOT_A_PARTY:
            continue
        if index in found:
            raise ConfigError(f"two nodes claim to be MPC party {index}")
        found[index] = (
            reply.metadata.src_node_id,
            bytes(rec["public-key"]),
            str(rec["address"]),
            bytes(rec["certificate"]),
            bytes(rec["key-signature"]),
        )
    if sorted(found) != [0, 1, 2]:
        why = f"; first refusal: {refusals[0]}" if refusals else ""
        raise ConfigError(
            f"MPC needs compute parties 0, 1 and 2; found {sorted(found)} "
            f"(set node config 'mpc-party' on three SuperNodes){why}"
        )
    log.info("mpc: compute parties are nodes %s", [found[i][0] for i in range(3)])
    directory = PartyDirectory(
        *(tuple(found[i][k] for i in range(3)) for k in range(5))  # type: ignore[arg-type]
    )
    return directory, down, up


class MPCBackend:
    """Clip-and-sum on secret shares by three compute parties (module docstring)."""

    name = "mpc"

    def __init__(self, settings: MPCSettings, dp: DPSettings | None = None) -> None:
        self.settings = settings
        self.terms = clip_sum_config(settings)  # what the parties are asked to run
        self.dp = dp or DPSettings()  # δ and accountant for the MPC noise
        self.rounds_done = 0
        self.parties: list[int] = []  # node ids of parties 0, 1, 2
        self.public_keys: list[bytes] = []
        self.addresses: list[str] = []
        # the parties' attestations of their keys, relayed to every site,
        # which checks them against the parties' CA before encrypting
        self.certificates: list[bytes] = []
        self.key_signatures: list[bytes] = []

    def train_round(
        self, grid: Grid, server_round: int, messages: list[Message], timeout: float
    ) -> RoundOutcome:
        """Share, clip and sum on shares, reveal only the noised sum."""
        up = down = 0
        start, like = global_vector(messages)
        config: ConfigRecord = messages[0].content["config"]
        timing: dict[str, float] = {}
        if not self.parties:
            clock = time.perf_counter()
            down_h, up_h = self._hello(grid, config, timeout)
            up, down = up + up_h, down + down_h
            timing["seconds_hello"] = time.perf_counter() - clock
        session = new_session()
        requests = []
        for m in messages:
            node = m.metadata.dst_node_id
            record = ConfigRecord(
                {
                    "session": session,
                    "client-id": node,
                    "public-keys": self.public_keys,
                    "party-certificates": self.certificates,
                    "key-signatures": self.key_signatures,
                }
            )
            content = RecordDict({"arrays": like, "config": config, MPC_RECORD: record})
            requests.append(
                Message(
                    content=content, dst_node_id=node, message_type=message_type(SHARE)
                )
            )
        down += sum(content_bytes(m.content) for m in requests)
        packages: dict[int, list[bytes]] = {}
        origins: dict[int, tuple[str, list[bytes]]] = {}
        shared: list[Message] = []
        clock = time.perf_counter()
        for reply in send_and_collect(grid, requests, timeout=timeout):
            node = reply_node(reply, requests)
            if reply.has_error():
                log.info("mpc share: node %d left out: %s", node, reply.error.reason)
                continue
            up += content_bytes(reply.content)
            record = reply.content[MPC_RECORD]
            pkgs = [bytes(p) for p in record["packages"]]
            if len(pkgs) == 3:
                packages[node] = pkgs
                origins[node] = share_origin(record)
                shared.append(reply)
        timing["seconds_share"] = time.perf_counter() - clock
        metrics = {
            "shared": float(len(packages)),
            "failures": float(len(messages) - len(packages)),
            "round_trips": float(len(timing)),
            **timing,
        }
        if not packages:
            return RoundOutcome([], up, down, metrics)
        clock = time.perf_counter()
        outputs, mpc_metrics, down_c, up_c = self._compute(
            grid, session, packages, origins, config, int(start.size), timeout
        )
        up, down = up + up_c, down + down_c
        metrics.update(mpc_metrics)
        metrics["round_trips"] += 1.0
        metrics["seconds_compute"] = time.perf_counter() - clock
        if outputs is None:
            return RoundOutcome([], up, down, {**metrics, "aborted": 1.0})
        result = combine_outputs(outputs, self.terms.encoder)
        metrics["included"] = float(len(result.clients))
        # the sites' own ε (local DP-SGD), unless the MPC's noise is accounted
        site_epsilon = max_epsilon(shared)
        if site_epsilon is not None:
            metrics["epsilon"] = site_epsilon
        if self.settings.noise_multiplier > 0:
            self.rounds_done += 1
            metrics["epsilon"] = epsilon(
                self.rounds_done,
                self.settings.noise_multiplier,
                client_sample_rate(grid, len(messages)),
                self.dp.delta,
                self.dp.accountant,
            )
        average = start + result.total / max(result.weight, 1)
        return RoundOutcome(
            [aggregate_reply(like, average, float(result.weight))], up, down, metrics
        )

    @property
    def max_weight(self) -> int:
        """The weight clamp inside the MPC: 1 (an unweighted mean) with noise."""
        return self.terms.max_weight

    def _hello(
        self, grid: Grid, config: ConfigRecord, timeout: float
    ) -> tuple[int, int]:
        found, down, up = discover_parties(grid, config, timeout)
        self.parties = list(found.nodes)
        self.public_keys = list(found.public_keys)
        self.addresses = list(found.addresses)
        self.certificates = list(found.certificates)
        self.key_signatures = list(found.key_signatures)
        return down, up

    def _compute(
        self,
        grid: Grid,
        session: int,
        packages: dict[int, list[bytes]],
        origins: dict[int, tuple[str, list[bytes]]],
        config: ConfigRecord,
        dim: int,
        timeout: float,
    ) -> tuple[list[OutputShare] | None, dict[str, float], int, int]:
        terms = self.terms
        clients = sorted(packages)
        msgs = []
        for index, node in enumerate(self.parties):
            record = ConfigRecord(
                {
                    "session": session,
                    "dim": dim,
                    "client-ids": clients,
                    "packages": [packages[c][index] for c in clients],
                    # who sent each package, and its signature for this party
                    "sites": [origins[c][0] for c in clients],
                    "signatures": [origins[c][1][index] for c in clients],
                    "public-keys": self.public_keys,
                    "addresses": self.addresses,
                    "clip-norm": terms.clip_norm,
                    "max-weight": terms.max_weight,
                    "noise-std": terms.noise_std,
                    "frac-bits": terms.frac_bits,
                }
            )
            content = RecordDict({"config": config, MPC_RECORD: record})
            msgs.append(
                Message(
                    content=content,
                    dst_node_id=node,
                    message_type=message_type(COMPUTE),
                )
            )
        down = sum(content_bytes(m.content) for m in msgs)
        outputs: list[OutputShare] = []
        metrics = {
            "mpc_bytes_between_parties": 0.0,
            "mpc_rounds": 0.0,
            "mpc_seconds": 0.0,
            "mpc_parties_checking_sites": 0.0,
        }
        up = 0
        for reply in send_and_collect(grid, msgs, timeout=timeout):
            if reply.has_error():
                log.warning(
                    "mpc compute: party node %d failed: %s",
                    reply.metadata.src_node_id,
                    reply.error.reason,
                )
                continue
            up += content_bytes(reply.content)
            try:
                arrays = {
                    k: np.asarray(v.numpy(), dtype=np.uint64)
                    for k, v in reply.content["share"].items()
                }
                outputs.append(OutputShare.from_arrays(arrays))
            except (FedsecError, KeyError, ValueError) as exc:
                log.warning("mpc compute: bad output share: %s", exc)
                continue
            meta = reply.content[MPC_RECORD]
            metrics["mpc_bytes_between_parties"] += float(meta["bytes-between-parties"])
            metrics["mpc_rounds"] = max(metrics["mpc_rounds"], float(meta["rounds"]))
            metrics["mpc_seconds"] = max(metrics["mpc_seconds"], float(meta["seconds"]))
            if meta.get("sites-checked", False):
                metrics["mpc_parties_checking_sites"] += 1.0
        if len(outputs) != 3:
            log.warning(
                "mpc session %#x aborted: %d of 3 output shares", session, len(outputs)
            )
            return None, metrics, down, up
        return outputs, metrics, down, up
