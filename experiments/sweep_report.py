"""A Hydra sweep of ``experiments.run`` as a CSV, a Markdown table and plots.

    python -m experiments.run -m num_clients=5,10,20 secagg=none,semi_honest
    python -m experiments.sweep_report multirun/<date>/<time>

Reads every ``metrics.json`` under the folder (one per run; the run's
overrides from its ``.hydra/overrides.yaml``) and writes into the folder
(or ``--out``):

* ``sweep.csv`` and ``sweep.md`` — one row per run: the overrides, the mode
  (secure aggregation, DP, MPC), ``n`` (sites), ``d`` (model parameters),
  bytes each site sent per round (mean over rounds and sites), seconds per
  round (median of the rounds after the first), final accuracy, ε of the
  last round, the dropout rate (sites listed in ``faults.drop`` over ``n``)
  and stage, and the rounds completed (not aborted);
* ``bytes_vs_n.png``, ``latency_vs_n.png``, ``latency_vs_d.png``,
  ``accuracy_vs_epsilon.png``, ``rounds_vs_dropout.png`` — one line per mode,
  each drawn only when its x axis varies across the runs (fitted exponents
  ``n^b`` in the legends of the n plots).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from experiments.compare.fit import power_law

COLUMNS = (
    "run",
    "mode",
    "clients",
    "parameters",
    "task",
    "rounds",
    "completed_rounds",
    "bytes_up_per_site_per_round",
    "seconds_per_round",
    "accuracy",
    "epsilon",
    "noise_multiplier",
    "dropout_rate",
    "dropout_stage",
)

PLOTS = (
    # file, x, y, x label, y label, log-log, fitted exponent
    ("bytes_vs_n.png", "clients", "bytes_up_per_site_per_round", "sites n",
     "bytes per site per round", True, True),
    ("latency_vs_n.png", "clients", "seconds_per_round", "sites n",
     "seconds per round", True, True),
    ("latency_vs_d.png", "parameters", "seconds_per_round", "model parameters d",
     "seconds per round", True, False),
    ("accuracy_vs_epsilon.png", "epsilon", "accuracy", "ε (last round)",
     "test accuracy", False, False),
    ("rounds_vs_dropout.png", "dropout_rate", "completed_rounds",
     "fraction of sites dropping", "rounds completed", False, False),
)  # fmt: skip


def mode_of(config: Mapping[str, Any]) -> str:
    """``plain``, ``secagg=semi_honest+dp=distributed``, ``mpc+noise``, ..."""
    parts = []
    secagg = str(config.get("secagg", {}).get("mode", "none"))
    if secagg != "none":
        parts.append(f"secagg={secagg}")
    dp = str(config.get("dp", {}).get("mode", "none"))
    if dp != "none":
        parts.append(f"dp={dp}")
    mpc = config.get("mpc", {})
    if str(mpc.get("mode", "none")) != "none":
        noisy = float(mpc.get("noise_multiplier", 0) or 0) > 0
        parts.append("mpc+noise" if noisy else "mpc")
    return "+".join(parts) or "plain"


def parameters_of(config: Mapping[str, Any]) -> int | None:
    """The model's parameter count from the run's config (older metrics.json)."""
    try:
        from fedsec.data import server_test_set
        from fedsec.models import build_model

        data, model = config["data"], config["model"]
        test = server_test_set(
            str(data["task"]), float(data["test_fraction"]), int(config["seed"])
        )
        net = build_model(
            str(model["name"]),
            test.num_features,
            test.num_outputs,
            int(model.get("hidden_dim", 32)),
            seed=int(config["seed"]),
        )
    except (KeyError, ValueError, TypeError):
        return None
    return sum(p.numel() for p in net.parameters())


def _drops(config: Mapping[str, Any]) -> tuple[int, str]:
    drop = str(config.get("faults", {}).get("drop", "") or "")
    items = [x.strip() for x in drop.split(",") if x.strip()]
    stages = sorted({x.partition(":")[2].strip() for x in items})
    return len(items), ",".join(stages)


def row_of(run: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    """One CSV row from one run's ``metrics.json``."""
    config = doc.get("config", {})
    rounds = doc.get("rounds", [])
    n = int(config.get("num_clients", 0)) or None
    steady = rounds[1:] or rounds
    eps = [r["epsilon"] for r in rounds if r.get("epsilon") is not None]
    dropped, stages = _drops(config)
    dp = config.get("dp", {})
    noise = None
    if str(dp.get("mode", "none")) != "none":
        noise = dp.get("noise_multiplier")
    elif str(config.get("mpc", {}).get("mode", "none")) != "none":
        noise = config["mpc"].get("noise_multiplier") or None
    params = doc.get("model_parameters")
    return {
        "run": run,
        "mode": mode_of(config),
        "clients": n,
        "parameters": params if params is not None else parameters_of(config),
        "task": config.get("data", {}).get("task"),
        "rounds": len(rounds),
        "completed_rounds": sum(1 for r in rounds if not r.get("aborted")),
        "bytes_up_per_site_per_round": (
            statistics.fmean(r["bytes_up"] for r in rounds) / n
            if rounds and n
            else None
        ),
        "seconds_per_round": (
            statistics.median(r["seconds"] for r in steady) if steady else None
        ),
        "accuracy": doc.get("final", {}).get("accuracy"),
        "epsilon": eps[-1] if eps else None,
        "noise_multiplier": noise,
        "dropout_rate": dropped / n if n else None,
        "dropout_stage": stages,
    }


def collect(folder: Path) -> list[dict[str, Any]]:
    """Every run under ``folder`` (sorted by its folder name)."""
    rows = []
    for path in sorted(folder.rglob("metrics.json")):
        run = str(path.parent.relative_to(folder)) or "."
        overrides = path.parent / ".hydra" / "overrides.yaml"
        if overrides.is_file():
            from omegaconf import OmegaConf

            listed = OmegaConf.to_container(OmegaConf.load(overrides)) or []
            run = ",".join(str(x) for x in listed) or run  # type: ignore[union-attr]
        rows.append(row_of(run, json.loads(path.read_text())))
    return rows


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as CSV (empty cells for missing values)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if r.get(k) is None else r.get(k) for k in COLUMNS})
    return buf.getvalue()


def to_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as a Markdown table."""
    head = "| " + " | ".join(COLUMNS) + " |\n|" + " --- |" * len(COLUMNS) + "\n"
    return head + "".join(
        "| " + " | ".join(_fmt(r.get(k)) for k in COLUMNS) + " |\n" for r in rows
    )


def _series(
    rows: Sequence[Mapping[str, Any]], x: str, y: str
) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in rows:
        if r.get(x) is None or r.get(y) is None:
            continue
        label = r["mode"]
        if x == "dropout_rate" and r.get("dropout_stage"):
            label += f" @ {r['dropout_stage']}"
        out[label].append((float(r[x]), float(r[y])))
    return {k: sorted(v) for k, v in out.items()}


def plot(rows: Sequence[Mapping[str, Any]], out: Path) -> list[Path]:
    """The plots whose x axis varies across the runs; their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for name, x, y, xlabel, ylabel, loglog, fit in PLOTS:
        if len({r.get(x) for r in rows if r.get(x) is not None}) < 2:
            continue
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for label, pts in _series(rows, x, y).items():
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            law = power_law(xs, ys) if fit else None
            if law is not None:
                label = f"{label} (n^{round(law.exponent, 2) + 0.0:.2f})"
            ax.plot(xs, ys, "o-", ms=4, label=label)
        if loglog:
            ax.set(xscale="log", yscale="log")
        ax.set(xlabel=xlabel, ylabel=ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Write the CSV, the table and the plots; print where they went."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path, help="a multirun folder (or any parent)")
    p.add_argument("--out", type=Path, default=None, help="default: the folder")
    args = p.parse_args(argv)
    rows = collect(args.folder)
    if not rows:
        raise SystemExit(f"sweep_report: no metrics.json under {args.folder}")
    out = args.out or args.folder
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.csv").write_text(to_csv(rows))
    (out / "sweep.md").write_text(to_markdown(rows))
    figures = plot(rows, out)
    print(
        f"sweep_report: {len(rows)} runs -> {out / 'sweep.csv'}, {out / 'sweep.md'}"
        + "".join(f", {f.name}" for f in figures)
    )
    return rows


if __name__ == "__main__":
    main()
