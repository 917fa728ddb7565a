"""Global vs per-site standardisation on hospitals that differ, over several seeds.

    python -m experiments.global_stats --sites 8 --seeds 0 1 2 3 4 --rounds 5

For each seed, :mod:`experiments.rehearsal` writes a shifted split (label
skew, case-mix shift, missing values, a categorical column) and the same
federation trains twice in Flower's simulation, reading those files:

- ``site``: every site imputes and standardises with its own training rows;
- ``global``: a secure statistics round first (semi-honest secure
  aggregation: the server learns only the sums), then every site imputes
  with the global median and standardises with the global mean and std.

Reported per run: the server's accuracy on the held-out ``test.csv``
(scaled like the sites: its own rows, or the global statistics) and the
sites' accuracy on their own validation rows (each scaled as that site
trained), weighted by rows. Writes one JSON document (``--out``) and prints
one JSON object per run, then the summary (median over seeds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from experiments.rehearsal import write_rehearsal
from experiments.simulate import ROOT, simulate
from fedsec.config import RunConfig
from fedsec.data import load_schema
from fedsec.flower.records import record_to_weights
from fedsec.models import build_model, evaluate, set_weights

MODES = ("site", "global")


def _site_accuracy(run: RunConfig, paths: list[Path], history: Any) -> float:
    """Row-weighted accuracy of the final model on every site's validation rows."""
    from clients.site_data import load_site

    schema = load_schema(run.data.task_schema)
    scaling = None
    if history.statistics is not None:
        from fedsec.analytics.layout import Layout

        layout = Layout.of(schema, run.analytics.frac_bits, run.analytics.max_rows)
        scaling = history.statistics.scaling(layout)
    model = build_model(run.train.model, schema.input_dim, schema.num_outputs)
    set_weights(model, record_to_weights(history.arrays))
    correct = total = 0.0
    for path in paths:
        site = load_site({"data-path": str(path)}, run.data, schema, scaling)
        result = evaluate(model, site.val)
        correct += result.accuracy * result.num_examples
        total += result.num_examples
    return correct / total


def run_case(
    folder: Path, sites: int, seed: int, mode: str, rounds: int, secure: bool
) -> dict[str, Any]:
    """Train once on the seed's files with ``mode`` scaling; measure it."""
    made = write_rehearsal(folder / f"seed{seed}", sites, seed=seed)
    mapping: dict[str, Any] = {
        "num-server-rounds": rounds,
        "seed": seed,
        "task-schema": str(made.schema),
        "test-path": str(made.test),
        "standardise": mode,
    }
    if secure:
        mapping["secagg-mode"] = "semi_honest"
    run = RunConfig.from_mapping(mapping)
    started = time.perf_counter()
    history = simulate(run, sites, data_paths=dict(enumerate(made.sites)))
    return {
        "seed": seed,
        "standardise": mode,
        "sites": sites,
        "rounds": rounds,
        "server_test_accuracy": history.final.accuracy,
        "site_validation_accuracy": _site_accuracy(run, made.sites, history),
        "seconds": time.perf_counter() - started,
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and mean per mode, and how often global was at least as accurate."""
    out: dict[str, Any] = {}
    for metric in ("server_test_accuracy", "site_validation_accuracy"):
        per_mode = {
            m: [r[metric] for r in rows if r["standardise"] == m] for m in MODES
        }
        pairs = list(zip(per_mode["site"], per_mode["global"], strict=True))
        out[metric] = {
            **{
                m: {
                    "median": statistics.median(v),
                    "mean": statistics.fmean(v),
                    "min": min(v),
                    "max": max(v),
                }
                for m, v in per_mode.items()
            },
            "global_at_least_as_accurate": sum(g >= s for s, g in pairs),
            "seeds": len(pairs),
        }
    return out


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sites", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--secure", action="store_true", help="train with semi-honest SecAgg too"
    )
    parser.add_argument("--data", type=Path, default=ROOT / ".flwr" / "global-stats")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "outputs" / "global_stats.json"
    )
    args = parser.parse_args(argv)
    rows = []
    for seed in args.seeds:
        for mode in MODES:
            row = run_case(args.data, args.sites, seed, mode, args.rounds, args.secure)
            print(json.dumps(row), flush=True)
            rows.append(row)
    document = {
        "machine": {"cores": os.cpu_count(), "load": os.getloadavg()},
        "runs": rows,
        "summary": summary(rows),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document["summary"], indent=2))


if __name__ == "__main__":
    main()
