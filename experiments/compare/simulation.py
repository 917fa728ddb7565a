"""The report's Flower measurements: every approach, and the sweeps over n and d.

Ray's start-up (10–20 s on an idle 2-core machine, over a minute under load)
is paid once per simulation, so approaches share simulations
(:func:`experiments.simulate.simulate_many`): all of them in one, except
that a simulation holds at most one secure-aggregation run (a site keeps its
protocol state for the whole simulation). Each simulation starts with a
one-round plain warm-up whose result is dropped, so every approach's first
round holds its own set-up (keys, finding the compute parties) and not
Ray's.

* :func:`run_approaches` — the approaches at the default size (the
  ``tradeoffs`` rows, :func:`experiments.tradeoffs.result_row`), with
  ``drop`` sites dropping every round at each mode's own stage;
* :func:`run_n_sweep` — one simulation per number of sites, a plain, a
  semi-honest secure-aggregation and an MPC run in each, no dropouts;
* :func:`run_d_sweep` — plain against secure aggregation at model size d
  (:mod:`experiments.bench_secagg_sim`: synthetic updates of d parameters).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from experiments.compare.approaches import Approach, FlowerRun
from experiments.simulate import SimulationResources, simulate_many
from experiments.tradeoffs import configurations, drop_stage, result_row
from fedsec.config import RunConfig
from strategies.loop import History

# the n sweep measures one approach per family: DP adds no messages
FAMILY_RUNS: Mapping[str, Mapping[str, Any]] = {
    "plain": {},
    "secagg_semi_honest": {"secagg-mode": "semi_honest"},
    "mpc": {"mpc-mode": "clip_and_sum"},
}


def warm_up(base: Mapping[str, Any]) -> RunConfig:
    """One plain round: starts Ray and its workers before anything is timed."""
    return RunConfig.from_mapping({**base, "num-server-rounds": 1, "faults-drop": ""})


def groups(runs: Sequence[tuple[str, RunConfig]]) -> list[list[tuple[str, RunConfig]]]:
    """Runs that share a simulation: at most one secure-aggregation run in each."""
    plain = [r for r in runs if not r[1].secagg.enabled]
    secure = [r for r in runs if r[1].secagg.enabled]
    first = plain + secure[:1]
    return ([first] if first else []) + [[r] for r in secure[1:]]


def time_to_target(history: History, target: float) -> float | None:
    """Seconds of training rounds until the global model first reaches ``target``."""
    elapsed = 0.0
    for r in history.rounds:
        elapsed += r.seconds
        if r.accuracy >= target:
            return elapsed
    return None


def approach_row(
    name: str,
    overrides: Mapping[str, Any],
    cfg: RunConfig,
    history: History,
    num_clients: int,
    target: float,
) -> dict[str, Any]:
    """The tradeoffs row of a finished run plus the report's own fields."""
    row = result_row(name, overrides, cfg, history)
    up, down = row["bytes_up_per_round"], row["bytes_down_per_round"]
    # the sites a run asks: all of them, or a vertical run's data holders
    sites = cfg.vertical.holders if cfg.vertical.enabled else num_clients
    return {
        **row,
        "bytes_up_per_site_per_round": None if up is None else up / sites,
        "bytes_down_per_site_per_round": None if down is None else down / sites,
        "rounds": len(history.rounds),
        "completed_rounds": len(history.rounds) - row["aborted_rounds"],
        "drop_stage": drop_stage(cfg) if row["dropped"] else None,
        "target_accuracy": target,
        "time_to_target": time_to_target(history, target),
        "per_round": [
            {
                "round": r.round,
                "accuracy": r.accuracy,
                "seconds": r.seconds,
                "bytes_up": r.bytes_up,
                "bytes_down": r.bytes_down,
                "epsilon": r.extra.get("epsilon"),
            }
            for r in history.rounds
        ],
        "load_average": round(os.getloadavg()[0], 2),
    }


def approach_runs(
    base: Mapping[str, Any],
    approaches: Sequence[Approach],
    drop: int,
    num_clients: int,
) -> list[tuple[str, dict[str, Any], RunConfig]]:
    """``(key, overrides, run config)`` of the Flower-measured approaches.

    ``drop`` sites drop every round in each run whose entry allows it
    (:attr:`FlowerRun.drops`), at its mode's own stage.
    """
    flower = [a for a in approaches if isinstance(a.source, FlowerRun)]
    runs = {}
    for drops in (True, False):
        table = {
            a.key: dict(a.source.overrides)
            for a in flower
            if isinstance(a.source, FlowerRun) and a.source.drops is drops
        }
        for run in configurations(base, table, [], drop if drops else 0, num_clients):
            runs[run[0]] = run
    return [runs[a.key] for a in flower]


def run_group(
    base: Mapping[str, Any],
    group: Sequence[tuple[str, dict[str, Any], RunConfig]],
    num_clients: int,
    resources: SimulationResources,
    target: float,
) -> dict[str, dict[str, Any]]:
    """One simulation: the warm-up, then every run of ``group``; rows by key."""
    cfgs = [warm_up(base)] + [cfg for _, _, cfg in group]
    outcomes = simulate_many(cfgs, num_clients, resources)[1:]
    rows: dict[str, dict[str, Any]] = {}
    for (key, overrides, cfg), outcome in zip(group, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            rows[key] = {"name": key, "error": f"{type(outcome).__name__}: {outcome}"}
        else:
            rows[key] = approach_row(key, overrides, cfg, outcome, num_clients, target)
    return rows


def sweep_row(family: str, n: int, cfg: RunConfig, history: History) -> dict[str, Any]:
    """Bytes and seconds per site and round of one run of the n sweep."""
    rounds = history.rounds
    first, rest = rounds[0], rounds[1:] or rounds[:1]
    per_key_set = cfg.secagg.rounds_per_key_set
    up_first = first.bytes_up / n
    up_steady = statistics.fmean(r.bytes_up for r in rest) / n
    return {
        "family": family,
        "clients": n,
        "task": cfg.data.task,
        "rounds": len(rounds),
        "bytes_up_per_site_first": up_first,
        "bytes_up_per_site_steady": up_steady,
        # one-time set-up spread over a key set's life (5 rounds by default)
        "bytes_up_per_site_per_round": up_steady + (up_first - up_steady) / per_key_set,
        "bytes_down_per_site_steady": statistics.fmean(r.bytes_down for r in rest) / n,
        "seconds_first": first.seconds,
        "seconds_steady": statistics.median(r.seconds for r in rest),
        "aborted_rounds": sum(1 for r in rounds if "aborted" in r.extra),
        "accuracy": history.final.accuracy,
        "load_average": round(os.getloadavg()[0], 2),
    }


def run_n_point(
    base: Mapping[str, Any],
    n: int,
    task: str,
    rounds: int,
    resources: SimulationResources,
) -> list[dict[str, Any]]:
    """One simulation of ``n`` sites: plain, secure aggregation and MPC runs."""
    sized = {**base, "task": task, "num-server-rounds": rounds, "faults-drop": ""}
    cfgs = [warm_up(sized)] + [
        RunConfig.from_mapping({**sized, **overrides})
        for overrides in FAMILY_RUNS.values()
    ]
    outcomes = simulate_many(cfgs, n, resources)[1:]
    rows = []
    for family, cfg, outcome in zip(FAMILY_RUNS, cfgs[1:], outcomes, strict=True):
        if isinstance(outcome, BaseException):
            rows.append(
                {
                    "family": family,
                    "clients": n,
                    "error": f"{type(outcome).__name__}: {outcome}",
                }
            )
        else:
            rows.append(sweep_row(family, n, cfg, outcome))
    return rows


def run_d_point(n: int, dim: int, dropout: float, rounds: int) -> list[dict[str, Any]]:
    """Plain and fedsec's secure aggregation at ``d`` in one simulation."""
    from experiments.bench_secagg_sim import Case, simulate_cases

    return simulate_cases([Case(n, dim, dropout, "auto", rounds)], ("plain", "fedsec"))
