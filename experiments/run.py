"""Hydra entry point: one federated training run in Flower's simulation engine.

    python -m experiments.run num_rounds=3
    python -m experiments.run -m data.partition=iid,dirichlet

Writes ``metrics.json`` into the Hydra run folder::

    {"config": {...}, "rounds": [{"round", "accuracy", "loss", "seconds",
     "bytes_up", "bytes_down", ...}, ...], "final": {"accuracy", "loss"},
     "model_parameters": d}

``python -m experiments.sweep_report multirun/<date>/<time>`` turns a sweep's
folders into a CSV, a Markdown table and plots; while a sweep runs, a Hydra
callback (``conf/hydra/callbacks/progress.yaml``) prints one line per
finished run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from experiments.simulate import SimulationResources, simulate, simulate_analytics
from fedsec.config import RunConfig
from fedsec.flower.records import record_to_weights
from strategies.loop import History

# groups whose keys map onto flat `<group>-<key>` run-config keys
PRIVACY_GROUPS = ("secagg", "dp", "mpc", "faults", "analytics", "vertical")


def run_config_from_hydra(cfg: DictConfig) -> RunConfig:
    """Map the Hydra tree onto the flat run config of the Flower app."""
    strategy = cfg.strategy
    mapping: dict[str, Any] = {
        "num-server-rounds": cfg.num_rounds,
        "mode": cfg.get("mode", "train"),
        "round-timeout": float(cfg.round_timeout),
        "seed": cfg.seed,
        "task": cfg.data.task,
        "partition": cfg.data.partition,
        "dirichlet-alpha": float(cfg.data.alpha),
        "test-fraction": float(cfg.data.test_fraction),
        "task-schema": cfg.data.get("schema", ""),
        "standardise": cfg.data.get("standardise", "site"),
        "test-path": cfg.data.get("test_path", ""),
        "model": cfg.model.name,
        "hidden-dim": cfg.model.hidden_dim,
        "local-epochs": cfg.train.local_epochs,
        "batch-size": cfg.train.batch_size,
        "learning-rate": float(cfg.train.learning_rate),
        "strategy": strategy.name,
        "fraction-train": float(strategy.fraction_train),
        "min-nodes": strategy.min_nodes,
    }
    optional = {
        "proximal-mu": "proximal_mu",
        "server-learning-rate": "server_learning_rate",
        "server-momentum": "server_momentum",
    }
    for key, name in optional.items():
        if name in strategy:
            mapping[key] = float(strategy[name])
    # privacy groups: `secagg.rounds_per_key_set` -> `secagg-rounds-per-key-set`
    for group in PRIVACY_GROUPS:
        if group not in cfg:  # a config without the group keeps its defaults
            continue
        for name, value in cfg[group].items():
            mapping[f"{group}-{str(name).replace('_', '-')}"] = value
    return RunConfig.from_mapping(mapping)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def metrics_document(cfg: DictConfig, history: History) -> dict[str, Any]:
    """The content of ``metrics.json``."""
    rounds = []
    for record in history.rounds:
        row = record.as_dict()
        row["accuracy"] = _finite(record.accuracy)
        rounds.append(row)
    return {
        "config": OmegaConf.to_container(cfg, resolve=True),
        "rounds": rounds,
        "final": {
            "accuracy": _finite(history.final.accuracy),
            "loss": _finite(history.final.loss),
        },
        "model_parameters": sum(
            int(w.size) for w in record_to_weights(history.arrays).values()
        ),
    }


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Run one configuration; return the final accuracy (for sweepers)."""
    run_config = run_config_from_hydra(cfg)
    if run_config.mode == "analytics":
        outcome = simulate_analytics(run_config, int(cfg.num_clients))
        print(f"fedsec: statistics in {', '.join(map(str, outcome.paths.values()))}")
        return float("nan")
    history = simulate(
        run_config,
        int(cfg.num_clients),
        SimulationResources(
            cpus=cfg.simulation.cpus, client_cpus=cfg.simulation.client_cpus
        ),
    )
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    path = out_dir / "metrics.json"
    path.write_text(json.dumps(metrics_document(cfg, history), indent=2) + "\n")
    print(f"fedsec: final accuracy {history.final.accuracy:.4f}, metrics in {path}")
    return float(history.final.accuracy)


if __name__ == "__main__":
    main()
