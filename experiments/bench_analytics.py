"""An analytics round in Flower's simulation: secure aggregation vs plain.

    python -m experiments.bench_analytics --sites 10 --repeats 5

One ``run_simulation`` (Ray, 2 CPUs, one per ClientApp) of ``--sites``
simulated sites holding the breast-cancer partitions (30 numeric features,
20 histogram bins each: 724 integers per site) runs, on the same warm
SuperNodes, one after the other:

- ``plain``: every site sends its integers in the clear (one round trip);
- ``secagg``: a fresh key set, then the masked statistics (advertise keys,
  share keys, masked input, unmask: four round trips), as a stand-alone
  ``mode='analytics'`` run does;
- ``secagg-steady``: the masked statistics with an existing key set (two
  round trips), as when training follows with ``standardise='global'``.

One warm-up round of each kind first (imports in the Ray workers), then
``--repeats`` rounds of each, interleaved. Prints one JSON object per case:
the median seconds per round with all runs, the ratio to plain, the ring
vector's length, bytes, and the machine's cores and load average.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
import warnings
from typing import Any

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from experiments.simulate import (
    SimulationResources,
    quiet_flower_env,
    simulated_sites,
    site_node_configs,
)
from fedsec.config import RunConfig
from fedsec.data import resolve_schema

CASES = ("plain", "secagg", "secagg-steady")


def _measure(
    cfg: RunConfig, repeats: int
) -> tuple[dict[str, list[dict[str, float]]], list[str]]:
    from strategies.analytics import run_analytics
    from strategies.secagg_backend import SecAggBackend

    schema = resolve_schema(cfg.data.task, cfg.data.task_schema)
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in CASES}
    errors: list[str] = []

    def main(grid: Grid, context: Context) -> None:
        # one backend for both secure cases: a site keeps one protocol state
        # per run, so key set ids and rounds must keep growing
        backend = SecAggBackend(cfg.secagg)
        protocol_round = 0

        def once(case: str) -> dict[str, float]:
            nonlocal protocol_round
            protocol_round += 1
            if case == "plain":
                out = run_analytics(grid, cfg, schema, secure=False)
            else:
                if case == "secagg":
                    backend.key_set_nodes = frozenset()  # forces a fresh key set
                out = run_analytics(
                    grid, cfg, schema, backend=backend, protocol_round=protocol_round
                )
            if out.statistics is None:
                raise RuntimeError(f"{case}: the round released nothing")
            return {
                "seconds": out.seconds,
                "bytes_up": float(out.bytes_up),
                "bytes_down": float(out.bytes_down),
                "dim": out.metrics.get("dim", 0.0),
                "round_trips": out.metrics.get("round_trips", 1.0),
            }

        try:
            for case in CASES:  # warm-up: imports, first key set
                once(case)
            for _ in range(repeats):
                for case in CASES:
                    runs[case].append(once(case))
        except Exception as exc:  # reported after the simulation ends
            errors.append(f"{type(exc).__name__}: {exc}")
            raise

    app = ServerApp()
    app.main()(main)
    from flwr.simulation import run_simulation

    from clients.client_app import app as client_app

    resources = SimulationResources()
    sites = site_node_configs(
        cfg, cfg.strategy.min_nodes, {"policy-modes": "plain,semi_honest"}
    )
    with simulated_sites(sites), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        run_simulation(
            server_app=app,
            client_app=client_app,
            num_supernodes=cfg.strategy.min_nodes,
            backend_config={
                "client_resources": {
                    "num_cpus": resources.client_cpus,
                    "num_gpus": 0.0,
                },
                "init_args": {
                    "num_cpus": resources.cpus,
                    "num_gpus": 0,
                    "logging_level": logging.ERROR,
                    "log_to_driver": True,
                    "include_dashboard": False,
                },
            },
        )
    return runs, errors


def bench(sites: int, repeats: int, bits: int) -> list[dict[str, Any]]:
    """Run the cases; one result row per case."""
    quiet_flower_env()
    cfg = RunConfig.from_mapping(
        {
            "mode": "analytics",
            "min-nodes": sites,
            "secagg-mode": "semi_honest",
            "secagg-bits": bits,
            "analytics-out": "outputs/bench_analytics",
        }
    )
    load_before = os.getloadavg()
    runs, errors = _measure(cfg, repeats)
    if errors:
        raise RuntimeError(errors[0])
    plain = statistics.median(r["seconds"] for r in runs["plain"])
    machine = {
        "cores": os.cpu_count(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }
    rows = []
    for case in CASES:
        seconds = [r["seconds"] for r in runs[case]]
        first = runs[case][0]
        rows.append(
            {
                "bench": "analytics_round",
                "case": case,
                "sites": sites,
                "features": 30,
                "bins": 20,
                "secagg_bits": bits,
                "ring_dim": first["dim"],
                "round_trips": first["round_trips"],
                "median_seconds": statistics.median(seconds),
                "seconds": seconds,
                "ratio_to_plain": statistics.median(seconds) / plain,
                "bytes_up": first["bytes_up"],
                "bytes_down": first["bytes_down"],
                "machine": machine,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: one JSON object per case."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bits", type=int, default=32, help="secagg-bits of the ring")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    for row in bench(args.sites, args.repeats, args.bits):
        print(json.dumps(row))
    print(json.dumps({"wall_seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
