"""``python -m experiments.compare``: measure every approach, write the report.

    python -m experiments.compare
    python -m experiments.compare compare.replot=true
    python -m experiments.compare compare.out_dir=outputs/try \
        'compare.parts=[approaches,expansion]' num_rounds=3

Writes ``<compare.out_dir>/comparison.md`` (``docs/`` by default), its
figures and, beside them in ``comparison/``, ``config.yaml`` (the resolved
config of this run: ``python -m experiments.compare --config-path
$PWD/docs/comparison --config-name config`` measures again with it) and
``results.json`` (every measured value, the machine, the load, the commit).
Flower's and Ray's output goes to ``compare.log`` in the Hydra run folder;
the terminal shows one progress line per step.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from experiments.compare.approaches import ExternalResults, by_key
from experiments.compare.console import quiet
from experiments.compare.measure import empty_results, plan, read_external, run_steps
from experiments.compare.plots import plot_all
from experiments.compare.report import render
from experiments.compare.settings import CompareSettings
from experiments.run import run_config_from_hydra
from experiments.simulate import ROOT, SimulationResources

REPORT = "comparison.md"
FOLDER = "comparison"


def commit() -> str:
    """The checked-out commit (``+dirty`` with uncommitted changes)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def model_parameters(cfg: DictConfig) -> int:
    """Parameters of the approaches' model on the configured task."""
    from fedsec.data import server_test_set
    from fedsec.models import build_model

    test = server_test_set(cfg.data.task, float(cfg.data.test_fraction), int(cfg.seed))
    model = build_model(
        cfg.model.name,
        test.num_features,
        test.num_outputs,
        int(cfg.model.hidden_dim),
        seed=int(cfg.seed),
    )
    return sum(p.numel() for p in model.parameters())


def write_report(results: dict[str, Any], settings: CompareSettings) -> Path:
    """The page and its figures from ``results``."""
    out = (
        ROOT / settings.out_dir
        if not settings.out_dir.is_absolute()
        else settings.out_dir
    )
    out.mkdir(parents=True, exist_ok=True)
    plot_all(results, out)
    page = out / REPORT
    page.write_text(render(results))
    return page


def _refresh_external(results: dict[str, Any], settings: CompareSettings) -> None:
    for a in by_key(settings.approaches):
        if isinstance(a.source, ExternalResults):
            results.setdefault("external", {})[a.key] = read_external(a.source)


@hydra.main(version_base="1.3", config_path="../../conf", config_name="compare")
def main(cfg: DictConfig) -> None:
    """Measure (or, with ``compare.replot``, reload) and write the report."""
    settings = CompareSettings.from_mapping(cfg.compare)
    out = (
        ROOT / settings.out_dir
        if not settings.out_dir.is_absolute()
        else settings.out_dir
    )
    folder = out / FOLDER
    results_path = folder / "results.json"
    if settings.replot:
        results = json.loads(results_path.read_text())
        _refresh_external(results, settings)
        page = write_report(results, settings)
        print(f"compare: {page} rebuilt from {results_path}")
        return
    measured_at = commit()  # before this run rewrites its config.yaml
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    base = run_config_from_hydra(cfg).to_mapping()
    resources = SimulationResources(
        cpus=int(cfg.simulation.cpus), client_cpus=int(cfg.simulation.client_cpus)
    )
    results = empty_results()
    started = time.perf_counter()
    results["meta"] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m experiments.compare", *sys.argv[1:]]),
        "commit": measured_at,
        "seed": int(cfg.seed),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_start": round(os.getloadavg()[0], 2),
        "num_clients": int(cfg.num_clients),
        "num_rounds": int(cfg.num_rounds),
        "drop": settings.drop,
        "approaches": list(settings.approaches),
        "task": str(cfg.data.task),
        "model": str(cfg.model.name),
        "model_parameters": model_parameters(cfg),
        "simulation_cpus": resources.cpus,
    }

    def save(res: dict[str, Any]) -> None:
        res["meta"]["wall_seconds"] = time.perf_counter() - started
        res["meta"]["load_averages"] = res.get("load_averages", [])
        res["meta"]["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        results_path.write_text(json.dumps(res, indent=1, default=str) + "\n")

    steps = plan(settings, base, int(cfg.num_clients), resources, int(cfg.seed))
    log = Path(HydraConfig.get().runtime.output_dir) / "compare.log"
    print(
        f"compare: {len(steps)} steps, ~{sum(s.expected for s in steps) / 60:.0f} min "
        f"on a quiet 2-core machine; Flower's output goes to {log}",
        flush=True,
    )
    with quiet(log) as terminal:
        run_steps(steps, results, save, terminal)
    save(results)
    page = write_report(results, settings)
    wall = results["meta"]["wall_seconds"]
    print(
        f"compare: {page} written in {wall / 60:.1f} min "
        f"(load {min(results['load_averages'], default=0):.1f}–"
        f"{max(results['load_averages'], default=0):.1f}); results in {results_path}",
        flush=True,
    )


if __name__ == "__main__":
    main()
