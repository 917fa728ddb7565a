"""Protocol-only measurements: the sans-I/O protocols in one process, no Flower.

What grows with the number of sites ``n`` is measured here, where ``n`` can
reach 1000 on two cores: secure aggregation through
:class:`~fedsec.secagg.local.LocalFederation` (record payload bytes each
client sends per stage, the count the simulation benchmarks use) and the MPC
clip-and-sum through :class:`~fedsec.mpc.party.SimulatedParties` (the
packages a client sends, the parties' traffic). The protocol parameters are
the run config's defaults (:class:`fedsec.config.RunConfig`), so the bytes
are those of the simulation at the same ``n`` and ``d``.

Dropout resilience: for each stage and dropout rate, a fresh federation
loses that fraction of its sites at that stage in every round, and each
round is marked completed (no abort) and exact (the released sum equals the
plaintext weighted sum of the sites it says it includes, within the
quantisation bound of :mod:`experiments.bench_fields`).

Synthetic updates come from numpy's generator seeded with the report's seed
(benchmark data only; masks, keys and noise come from the protocols' own
cryptographic sources).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from experiments.bench_fields import ring_fields
from fedsec.config import RunConfig
from fedsec.errors import AbortError
from fedsec.policy import MODES, SitePolicy
from fedsec.secagg.config import SecAggConfig
from fedsec.secagg.local import LocalFederation
from fedsec.secagg.stages import Stage

SETUP_STAGES = (Stage.ADVERTISE_KEYS, Stage.SEED_REVEAL, Stage.SHARE_KEYS)
ROUND_STAGES = (Stage.MASKED_INPUT, Stage.CONSISTENCY_CHECK, Stage.UNMASK)
# sites of a protocol-only federation accept any variant; their other floors
# are the defaults (at least 3 sites, t >= 2, t >= half a neighbourhood)
LAX = SitePolicy(modes=frozenset(MODES))


def secagg_config(variant: str, graph: str) -> SecAggConfig:
    """The protocol parameters a run with ``secagg-mode=variant`` uses."""
    run = RunConfig.from_mapping({"secagg-mode": variant, "secagg-graph": graph})
    return run.secagg.protocol_config()


def _updates(
    nodes: Sequence[int], dim: int, seed: int, max_weight: int
) -> tuple[dict[int, np.ndarray], dict[int, int]]:
    rng = np.random.default_rng(seed)  # synthetic data only, nothing secret
    updates = {u: rng.uniform(-0.5, 0.5, dim).astype(np.float32) for u in nodes}
    weights = {u: int(rng.integers(1, min(max_weight, 100) + 1)) for u in nodes}
    return updates, weights


def _sent(fed: LocalFederation, node: int, stages: Sequence[Stage]) -> int:
    sent = fed.clients[node].bytes_sent
    return sum(sent.get(s.value, 0) for s in stages)


def secagg_cost(
    n: int, dim: int, variant: str, graph: str, seed: int
) -> dict[str, Any]:
    """One key set and one round of ``n`` sites: bytes per client, seconds.

    ``bytes_per_client_per_round`` is the steady round plus the key set-up
    spread over the rounds it serves (``rounds_per_key_set``).
    """
    cfg = secagg_config(variant, graph)
    nodes = list(range(1, n + 1))
    fed = LocalFederation(cfg, nodes, wire=False, policy=LAX)
    start = time.perf_counter()
    fed.setup()
    setup_seconds = time.perf_counter() - start
    updates, weights = _updates(nodes, dim, seed, cfg.max_weight)
    start = time.perf_counter()
    fed.round(1, updates, weights)
    round_seconds = time.perf_counter() - start
    setup = statistics.median(_sent(fed, u, SETUP_STAGES) for u in nodes)
    steady = statistics.median(_sent(fed, u, ROUND_STAGES) for u in nodes)
    return {
        "protocol": f"secagg_{variant}",
        "graph": cfg.graph_for(n).value,
        "degree": cfg.degree_for(n),
        "threshold": cfg.threshold_for(n),
        "clients": n,
        "dim": dim,
        "rounds_per_key_set": cfg.rounds_per_key_set,
        "setup_bytes_per_client": setup,
        "round_bytes_per_client": steady,
        "bytes_per_client_per_round": steady + setup / cfg.rounds_per_key_set,
        "plaintext_float32_bytes": 4 * dim,
        # one process plays everyone: the server's share and the slowest
        # client are what a deployment's round waits for (clients in parallel)
        "server_seconds": fed.server_seconds,
        "client_seconds_max": max(fed.client_seconds.values()),
        "setup_seconds_all": setup_seconds,
        "round_seconds_all": round_seconds,
        "load_average": round(os.getloadavg()[0], 2),
    }


def mpc_cost(n: int, dim: int, seed: int, repeats: int = 2) -> dict[str, Any]:
    """Clip-and-sum sessions of ``n`` clients at the three in-process parties.

    ``parties_seconds`` is the median of the sessions after the first (the
    parties are kept across sessions, as in a run); the first, which also
    allocates the parties' buffers, is ``parties_first_seconds``.
    """
    from fedsec.flower.mpc import clip_sum_config
    from fedsec.mpc.client import client_share
    from fedsec.mpc.keys import generate_party_keys
    from fedsec.mpc.party import SimulatedParties

    terms = clip_sum_config(RunConfig.from_mapping({"mpc-mode": "clip_and_sum"}).mpc)
    updates, weights = _updates(list(range(n)), dim, seed, terms.max_weight)
    keys = generate_party_keys()
    sim = SimulatedParties(keys, terms)
    seconds, client_seconds, package_bytes, between = [], [], [], []
    error = 0.0
    for r in range(repeats):
        by_party: list[dict[int, bytes]] = [{}, {}, {}]
        for j in range(n):
            start = time.perf_counter()
            packages = client_share(
                updates[j],
                weights[j],
                keys[0].public_keys,
                session=r + 1,
                client_id=j,
                config=terms,
                clamp=terms.coordinate_bound(dim),
            )
            client_seconds.append(time.perf_counter() - start)
            package_bytes.append(sum(len(p) for p in packages))
            for i in range(3):
                by_party[i][j] = packages[i]
        before = [replace(p.channel.stats) for p in sim.parties]
        start = time.perf_counter()
        result = sim.run(r + 1, by_party, dim)
        seconds.append(time.perf_counter() - start)
        between.append(
            sum(
                p.channel.stats.bytes_sent - b.bytes_sent
                for p, b in zip(sim.parties, before, strict=True)
            )
        )
        error = max(
            error,
            float(np.abs(result.total - _clip_sum(updates, weights, terms)).max()),
        )
    return {
        "protocol": "mpc_clip_and_sum",
        "clients": n,
        "dim": dim,
        "bytes_per_client_per_round": statistics.median(package_bytes),
        "parties_bytes_per_round": statistics.median(between),
        "parties_bytes_per_client": statistics.median(between) / n,
        "plaintext_float32_bytes": 4 * dim,
        "parties_seconds": statistics.median(seconds[1:] or seconds),
        "parties_first_seconds": seconds[0],
        "client_seconds_max": max(client_seconds),
        "max_abs_error_sum": error,
        "load_average": round(os.getloadavg()[0], 2),
    }


def _clip_sum(
    updates: Mapping[int, np.ndarray], weights: Mapping[int, int], terms: Any
) -> np.ndarray:
    """The plaintext clip-and-sum (no noise) of the given clients, float64."""
    total = np.zeros(next(iter(updates.values())).size)
    for j, x in updates.items():
        x64 = x.astype(np.float64)
        scale = min(1.0, terms.clip_norm / max(float(np.linalg.norm(x64)), 1e-30))
        total += min(weights[j], terms.max_weight) * scale * x64
    return total


# ------------------------------------------------------------ dropout resilience


def secagg_dropouts(
    variant: str,
    stage: Stage,
    rate: float,
    n: int,
    dim: int,
    rounds: int,
    seed: int,
) -> dict[str, Any]:
    """``round(rate · n)`` sites drop at ``stage`` (every round for round stages).

    A set-up stage drops its sites once, at the key set-up; the rounds that
    follow run without further dropouts. Random sites drop in each round
    (numpy's generator: which sites drop is public, not secret).
    """
    cfg = secagg_config(variant, "auto")
    # one key set per case, serving every round
    cfg = replace(cfg, rounds_per_key_set=max(rounds, 1))
    nodes = list(range(1, n + 1))
    rng = np.random.default_rng([seed, int(rate * 1000), len(stage.value)])
    updates, weights = _updates(nodes, dim, seed, cfg.max_weight)
    k = round(rate * n)
    fed = LocalFederation(cfg, nodes, wire=False, policy=LAX)
    completed, exact = 0, 0
    reason = ""
    try:
        drops = {stage: set(rng.choice(nodes, size=k, replace=False).tolist())}
        fed.setup(drops if stage in SETUP_STAGES else None)
        for rnd in range(1, rounds + 1):
            round_drops = None
            if stage in ROUND_STAGES:
                round_drops = {
                    stage: set(rng.choice(nodes, size=k, replace=False).tolist())
                }
            try:
                result = fed.round(rnd, updates, weights, round_drops)
            except AbortError as exc:
                reason = str(exc)
                continue
            completed += 1
            exact += _exact(result, updates, weights, cfg, n)
    except AbortError as exc:
        reason = str(exc)
    return {
        "protocol": f"secagg_{variant}",
        "stage": stage.value,
        "rate": rate,
        "dropped": k,
        "clients": n,
        "threshold": cfg.threshold_for(n),
        "rounds": rounds,
        "completed_rounds": completed,
        "exact_rounds": exact,
        "abort_reason": reason,
    }


def _exact(
    result: Any,
    updates: Mapping[int, np.ndarray],
    weights: Mapping[int, int],
    cfg: SecAggConfig,
    n: int,
) -> bool:
    reference = np.zeros(next(iter(updates.values())).size)
    for u in result.survivors:
        reference += weights[u] * updates[u].astype(np.float64)
    bound = float(ring_fields(cfg.bits, cfg.clip, cfg.max_weight, n)["sum_error_bound"])
    return bool(np.abs(result.weighted_sum - reference).max() <= bound)


def mpc_dropouts(rate: float, n: int, dim: int, seed: int) -> dict[str, Any]:
    """Sites that never send their shares are left out; the rest is summed exactly.

    A session needs ``min-sites`` (3) clients and all three compute parties;
    a party that drops aborts the session (no output share, nothing released).
    """
    from fedsec.flower.mpc import clip_sum_config
    from fedsec.mpc.client import client_share
    from fedsec.mpc.keys import generate_party_keys
    from fedsec.mpc.party import SimulatedParties

    terms = clip_sum_config(RunConfig.from_mapping({"mpc-mode": "clip_and_sum"}).mpc)
    updates, weights = _updates(list(range(n)), dim, seed, terms.max_weight)
    rng = np.random.default_rng([seed, int(rate * 1000)])
    k = round(rate * n)
    alive = sorted(set(range(n)) - set(rng.choice(n, size=k, replace=False).tolist()))
    keys = generate_party_keys()
    by_party: list[dict[int, bytes]] = [{}, {}, {}]
    for j in alive:
        packages = client_share(
            updates[j],
            weights[j],
            keys[0].public_keys,
            session=1,
            client_id=j,
            config=terms,
            clamp=terms.coordinate_bound(dim),
        )
        for i in range(3):
            by_party[i][j] = packages[i]
    completed, exact, reason = 0, 0, ""
    try:
        result = SimulatedParties(keys, terms).run(1, by_party, dim)
        completed = 1
        reference = _clip_sum({j: updates[j] for j in alive}, weights, terms)
        # fixed point with f fractional bits: inputs rounded to 2^-f, scales
        # within a few 2^-f: at most 8 units of 2^-f per unit of weight
        bound = sum(weights[j] for j in alive) * 2.0 ** (3 - terms.frac_bits)
        exact = int(float(np.abs(result.total - reference).max()) <= bound)
    except Exception as exc:  # a refused session: too few clients
        reason = f"{type(exc).__name__}: {exc}"
    return {
        "protocol": "mpc_clip_and_sum",
        "stage": "mpc_share",
        "rate": rate,
        "dropped": k,
        "clients": n,
        "threshold": 3,
        "rounds": 1,
        "completed_rounds": completed,
        "exact_rounds": exact,
        "abort_reason": reason,
    }


def dropout_stages(variant: str) -> tuple[Stage, ...]:
    """The stages a site of ``variant`` can drop at (the graph here is complete)."""
    stages = [Stage.ADVERTISE_KEYS, Stage.SHARE_KEYS, Stage.MASKED_INPUT]
    if variant == "active":
        stages.append(Stage.CONSISTENCY_CHECK)
    stages.append(Stage.UNMASK)
    return tuple(stages)
