"""The report's measurements as a list of steps, run with a progress bar.

Each step fills one part of the results document and returns a short note
for its progress line. The document is written after every step, so an
interrupted run keeps what it measured (``compare.replot=true`` renders it).
Expected seconds per step (for the ETA) are the step times of a run on the
2-core machine at load 2–4 (3 Dec 2026); the ETA rescales them by the pace
of the finished steps.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from experiments.compare import protocol, simulation
from experiments.compare.approaches import ExternalResults, by_key
from experiments.compare.progress import Progress
from experiments.compare.settings import CompareSettings
from experiments.simulate import ROOT, SimulationResources

Results = dict[str, Any]


@dataclass(frozen=True)
class Step:
    """One measured piece: its name, its expected seconds, what it does."""

    name: str
    expected: float
    run: Callable[[Results], str]


def empty_results() -> Results:
    """The results document before any step."""
    return {
        "approaches": {},
        "n_sweep": [],
        "d_sweep": [],
        "protocol_n": [],
        "protocol_d": [],
        "dropouts": [],
        "expansion": [],
        "external": {},
    }


def plan(
    s: CompareSettings,
    base: Mapping[str, Any],
    num_clients: int,
    resources: SimulationResources,
    seed: int,
) -> list[Step]:
    """Every step the settings ask for, in the order they run."""
    steps: list[Step] = []
    if "approaches" in s.parts:
        steps += _approach_steps(s, base, num_clients, resources)
    if "n_sweep" in s.parts:
        for n in s.n_sizes:
            steps.append(
                Step(
                    f"simulation n={n}", 18 + 0.13 * n, _n_point(s, base, n, resources)
                )
            )
    if "d_sweep" in s.parts:
        for d in s.d_dims:
            steps.append(
                Step(
                    f"plain vs secagg d={d:,}",
                    8 + s.d_rounds * 2 * (0.05 + 0.1 * d / 1e6),
                    _d_point(s, d),
                )
            )
    if "protocol" in s.parts:
        steps += _protocol_steps(s, seed)
    if "dropouts" in s.parts:
        steps.append(
            Step("dropouts, protocol only", _dropout_cost(s), _dropouts(s, seed))
        )
    if "expansion" in s.parts:
        steps.append(Step("Bonawitz et al.'s expansion", 1, _expansion))
    external = any(isinstance(a.source, ExternalResults) for a in by_key(s.approaches))
    if "external" in s.parts and external:
        steps.append(Step("external results", 0.1, _external(s)))
    return steps


def _approach_steps(
    s: CompareSettings,
    base: Mapping[str, Any],
    num_clients: int,
    resources: SimulationResources,
) -> list[Step]:
    runs = simulation.approach_runs(base, by_key(s.approaches), s.drop, num_clients)
    steps = []
    for group in simulation.groups([(k, cfg) for k, _, cfg in runs]):
        keys = [k for k, _ in group]
        chosen = [r for r in runs if r[0] in keys]
        expected = 12 + sum(
            cfg.num_rounds * (1.5 if cfg.dp.mode == "local_opacus" else 0.2)
            for _, _, cfg in chosen
        )

        def run(
            results: Results, chosen: list[Any] = chosen, keys: list[str] = keys
        ) -> str:
            rows = simulation.run_group(
                base, chosen, num_clients, resources, s.target_accuracy
            )
            results["approaches"].update(rows)
            return ", ".join(
                f"{k} {_fmt(rows[k].get('accuracy'), '.3f')}" for k in keys
            )

        steps.append(Step(f"simulation: {', '.join(keys)}", expected, run))
    return steps


def _n_point(
    s: CompareSettings, base: Mapping[str, Any], n: int, resources: SimulationResources
) -> Callable[[Results], str]:
    def run(results: Results) -> str:
        rows = simulation.run_n_point(base, n, s.n_task, s.n_rounds, resources)
        results["n_sweep"] += rows
        return ", ".join(
            f"{r['family']} {_fmt(r.get('seconds_steady'), '.2f')} s/round"
            for r in rows
        )

    return run


def _d_point(s: CompareSettings, d: int) -> Callable[[Results], str]:
    def run(results: Results) -> str:
        rows = simulation.run_d_point(s.d_clients, d, s.d_dropout, s.d_rounds)
        results["d_sweep"] += rows
        by = {r["impl"]: r["seconds_per_round"] for r in rows}
        return f"plain {by['plain']:.3f} s, secagg {by['fedsec']:.3f} s per round"

    return run


def _protocol_steps(s: CompareSettings, seed: int) -> list[Step]:
    cases: list[tuple[str, str, tuple[int, ...], float]] = [
        ("semi_honest", "complete", s.complete_sizes, 2e-4),
        ("semi_honest", "sparse", s.sparse_sizes, 1.1e-5),
        ("active", "auto", s.active_sizes, 1.4e-4),
    ]
    steps = []
    for variant, graph, sizes, c in cases:

        def run(
            results: Results,
            variant: str = variant,
            graph: str = graph,
            sizes: Any = sizes,
        ) -> str:
            for n in sizes:
                results["protocol_n"].append(
                    protocol.secagg_cost(n, s.protocol_dim, variant, graph, seed)
                )
            last = results["protocol_n"][-1]
            sent = last["bytes_per_client_per_round"]
            return f"n={last['clients']}: {sent:,.0f} B/client/round"

        name = f"secagg {variant} {graph}, n up to {max(sizes)}"
        steps.append(Step(name, 1 + sum(c * n * n for n in sizes), run))

    def mpc(results: Results) -> str:
        for n in s.mpc_sizes:
            results["protocol_n"].append(protocol.mpc_cost(n, s.protocol_dim, seed))
        last = results["protocol_n"][-1]
        return f"n={last['clients']}: parties {last['parties_seconds']:.2f} s"

    steps.append(
        Step(f"mpc, n up to {max(s.mpc_sizes)}", 1 + 0.001 * sum(s.mpc_sizes), mpc)
    )

    def by_d(results: Results) -> str:
        for d in s.protocol_dims:
            results["protocol_d"].append(
                protocol.secagg_cost(s.d_clients, d, "semi_honest", "auto", seed)
            )
            results["protocol_d"].append(protocol.mpc_cost(s.d_clients, d, seed))
        return f"d up to {max(s.protocol_dims):,}"

    steps.append(
        Step("secagg and mpc against d", 1 + 2.5e-6 * sum(s.protocol_dims), by_d)
    )
    return steps


def _dropout_cost(s: CompareSettings) -> float:
    return 0.0045 * s.dropout_clients * s.dropout_rounds * len(s.dropout_rates) * 9


def _dropouts(s: CompareSettings, seed: int) -> Callable[[Results], str]:
    def run(results: Results) -> str:
        for variant in ("semi_honest", "active"):
            for stage in protocol.dropout_stages(variant):
                for rate in s.dropout_rates:
                    results["dropouts"].append(
                        protocol.secagg_dropouts(
                            variant,
                            stage,
                            rate,
                            s.dropout_clients,
                            s.dropout_dim,
                            s.dropout_rounds,
                            seed,
                        )
                    )
        for rate in s.dropout_rates:
            results["dropouts"].append(
                protocol.mpc_dropouts(rate, s.dropout_clients, s.dropout_dim, seed)
            )
        return f"{len(results['dropouts'])} cases"

    return run


def _expansion(results: Results) -> str:
    from experiments import expansion

    models = expansion.fit()
    results["expansion"] = [
        {**expansion.expansion(models, n, d), "paper": paper}
        for n, d, paper in expansion.PAPER
    ]
    return ", ".join(f"{r['expansion']:.2f}x" for r in results["expansion"])


def read_external(source: ExternalResults, root: Path = ROOT) -> dict[str, Any]:
    """The last matching row of ``source.path`` mapped to report columns."""
    path = root / source.path
    if not path.is_file():
        return {"missing": True, "command": source.command}
    row: dict[str, Any] | None = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        candidate = json.loads(line)
        if all(candidate.get(k) == v for k, v in source.match.items()):
            row = candidate
    if row is None:
        return {"missing": True, "command": source.command}
    out = {col: row.get(key) for col, key in source.fields.items()}
    return {**out, "source": source.path, "raw": row}


def _external(s: CompareSettings) -> Callable[[Results], str]:
    def run(results: Results) -> str:
        for a in by_key(s.approaches):
            if isinstance(a.source, ExternalResults):
                results["external"][a.key] = read_external(a.source)
        missing = [k for k, v in results["external"].items() if v.get("missing")]
        return f"not measured yet: {', '.join(missing)}" if missing else "read"

    return run


def _fmt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def run_steps(
    steps: list[Step],
    results: Results,
    save: Callable[[Results], None],
    out: TextIO,
) -> None:
    """Run every step with a progress bar; save the results after each one.

    A step that raises is recorded under ``errors`` and the next one runs.
    """
    progress = Progress([st.name for st in steps], [st.expected for st in steps], out)
    for k, step in enumerate(steps):
        progress.begin(k)
        started = time.perf_counter()
        try:
            note = step.run(results)
        except Exception as exc:
            note = f"failed: {type(exc).__name__}: {exc}"
            results.setdefault("errors", []).append({"step": step.name, "error": note})
        results.setdefault("step_seconds", {})[step.name] = (
            time.perf_counter() - started
        )
        results.setdefault("load_averages", []).append(round(os.getloadavg()[0], 2))
        save(results)
        progress.done(k, note)
    progress.close()
