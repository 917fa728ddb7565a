"""Benchmark of fedsec's secure aggregation.

``--protocol-only`` times the sans-I/O protocol in one process (server and
clients driven by :class:`fedsec.secagg.local.LocalFederation`, messages
serialised as records as a Flower layer would) and prints one JSON object per
case. Setup (advertise + share keys) runs once per case; the reported times
are medians over the steady rounds that follow.

The Flower-simulation mode (fedsec vs Flower's SecAgg+ vs plain FedAvg) is
added by the Flower layer as ``run_simulation_cases(args)``.

Example::

    python -m experiments.bench_secagg --protocol-only --clients 100 \
        --dim 1000000 --dropout 0.1 --graph sparse complete
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Iterator

import numpy as np

from experiments.bench_fields import ring_fields
from fedsec.secagg.config import GraphKind, SecAggConfig, Variant
from fedsec.secagg.local import LocalFederation
from fedsec.secagg.stages import Stage

ROUND_STAGES = (Stage.MASKED_INPUT, Stage.CONSISTENCY_CHECK, Stage.UNMASK)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags; list-valued flags give the cross product of cases."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--protocol-only", action="store_true")
    p.add_argument("--clients", type=int, nargs="+", default=[100])
    p.add_argument("--dim", type=int, nargs="+", default=[1_000_000])
    p.add_argument("--dropout", type=float, nargs="+", default=[0.1])
    p.add_argument(
        "--graph",
        choices=["auto", "complete", "sparse"],
        nargs="+",
        default=["auto"],
        help="auto (the default setting): complete below 32 clients, sparse from 32",
    )
    p.add_argument(
        "--variant",
        choices=["semi_honest", "active"],
        nargs="+",
        default=["semi_honest"],
    )
    p.add_argument(
        "--dropout-stage",
        choices=["masked_input", "unmask"],
        default="masked_input",
        help="masked_input: dropped clients never deliver their "
        "masked input (the server reconstructs their mask keys); "
        "unmask: they deliver it and vanish before unmasking",
    )
    p.add_argument("--rounds", type=int, default=3, help="steady rounds per case")
    p.add_argument("--repeats", type=int, default=1, help="cases repeated")
    p.add_argument("--bits", type=int, default=22)
    p.add_argument("--threshold", type=float, default=0.6)
    p.add_argument("--max-weight", type=int, default=10)
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    return p.parse_args(argv)


def run_protocol_cases(args: argparse.Namespace) -> Iterator[dict[str, object]]:
    """Time the sans-I/O protocol for every combination of the list flags."""
    for _ in range(args.repeats):
        for n in args.clients:
            for dim in args.dim:
                for dropout in args.dropout:
                    for graph in args.graph:
                        for variant in args.variant:
                            yield _protocol_case(args, n, dim, dropout, graph, variant)


def _protocol_case(
    args: argparse.Namespace,
    n: int,
    dim: int,
    dropout: float,
    graph: str,
    variant: str,
) -> dict[str, object]:
    cfg = SecAggConfig(
        variant=Variant(variant),
        graph=GraphKind(graph),
        threshold=args.threshold,
        bits=args.bits,
        clip=1.0,
        max_weight=args.max_weight,
        rounds_per_key_set=args.rounds,
    )
    rng = np.random.default_rng(args.seed)  # synthetic data only, nothing secret
    ids = sorted(int(x) for x in rng.choice(1 << 40, size=n, replace=False))
    fed = LocalFederation(cfg, ids)
    start = time.perf_counter()
    fed.setup()
    setup_seconds = time.perf_counter() - start
    updates = {u: rng.uniform(-0.9, 0.9, dim).astype(np.float32) for u in ids}
    weights = {u: int(rng.integers(1, args.max_weight + 1)) for u in ids}
    stage = Stage(args.dropout_stage)
    walls, servers, clients, uploads, errors, avg_errors = [], [], [], [], [], []
    for rnd in range(args.rounds):
        dropped = set(rng.choice(ids, size=round(dropout * n), replace=False).tolist())
        before = {u: _round_bytes(fed, u) for u in ids}
        start = time.perf_counter()
        result = fed.round(rnd, updates, weights, {stage: dropped})
        walls.append(time.perf_counter() - start)
        servers.append(fed.server_seconds)
        alive = [u for u in ids if u not in dropped]
        clients.extend(fed.client_seconds[u] for u in alive)
        uploads.extend(_round_bytes(fed, u) - before[u] for u in alive)
        included = result.survivors
        reference = np.zeros(dim, dtype=np.float64)
        for u in included:
            reference += weights[u] * updates[u].astype(np.float64)
        errors.append(float(np.abs(result.weighted_sum - reference).max()))
        total = sum(weights[u] for u in included)
        avg_errors.append(errors[-1] / total)
    return {
        "impl": "fedsec",
        "mode": "protocol-only",
        "clients": n,
        "dim": dim,
        "dropout": dropout,
        "dropout_stage": stage.value,
        "graph": cfg.graph_for(n).value,
        "variant": variant,
        **ring_fields(args.bits, 1.0, args.max_weight, n),
        "rounds": args.rounds,
        "seconds_per_round": statistics.median(walls),
        "client_seconds": statistics.median(clients),
        "client_seconds_max": max(clients),
        "server_seconds": statistics.median(servers),
        "setup_seconds": setup_seconds,
        "upload_bytes_per_client": statistics.median(uploads),
        "plaintext_float32_bytes": 4 * dim,
        "upload_ratio": statistics.median(uploads) / (4 * dim),
        "max_abs_error_sum": max(errors),
        "max_abs_error_average": max(avg_errors),
        "cores": os.cpu_count(),
    }


def _round_bytes(fed: LocalFederation, node: int) -> int:
    sent = fed.clients[node].bytes_sent
    return sum(sent.get(s.value, 0) for s in ROUND_STAGES)


def main(argv: list[str] | None = None) -> None:
    """Entry point: print one JSON object per case."""
    args = parse_args(argv)
    if not args.protocol_only:
        from experiments.bench_secagg_sim import run_simulation_cases

        # the simulation counts round 1 (start-up, key set-up) on top of --rounds
        for dropout in args.dropout:
            for graph in args.graph:
                run_simulation_cases(
                    args.clients, args.dim, dropout, graph, args.rounds + 1
                )
        return
    for case in run_protocol_cases(args):
        print(json.dumps(case), flush=True)


if __name__ == "__main__":
    main()
