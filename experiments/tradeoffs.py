"""Plain FL, secure aggregation, DP and MPC side by side at one size, one table.

(The full report, with every approach, the sweeps over n and d and the
dropout curves, is ``python -m experiments.compare``, built on these rows.)

    python -m experiments.tradeoffs
    python -m experiments.tradeoffs tradeoffs.drop=2 num_rounds=5
    python -m experiments.tradeoffs 'tradeoffs.only=[plain,secagg,mpc]'

Runs every configuration of ``conf/tradeoffs.yaml`` (run-config overrides on
top of the usual Hydra groups) in the real Flower simulation, with
``tradeoffs.drop`` sites dropping after training in every round, and writes
into the Hydra run folder:

* ``tradeoffs.json`` — ``rows``: ``name``, ``overrides``, ``repeat``,
  ``server_sees`` (what the aggregation server learns), ``accuracy`` and
  ``loss`` of the final model, ``epsilon`` of the final round (``null``: no
  DP guarantee), ``seconds_per_round`` (median of the rounds after the
  first), ``first_round_seconds`` (key set-up, party discovery),
  ``bytes_up_per_round`` / ``bytes_down_per_round`` (means, every site
  together), ``round_trips`` (median), ``sites_used`` (mean number of sites
  in an aggregate), ``dropped`` (sites that dropped), ``aborted_rounds``;
  plus the machine (``cores``, ``load_average``) and ``total_seconds``.
* ``tradeoffs.md`` — the same as a Markdown table.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from experiments.run import run_config_from_hydra
from experiments.simulate import SimulationResources, simulate
from fedsec.config import RunConfig
from fedsec.errors import ConfigError
from strategies.loop import History

JSON_NAME = "tradeoffs.json"
TABLE_NAME = "tradeoffs.md"
MPC_PARTIES = 3  # partitions 0-2 are the compute parties: they never drop


def drop_stage(cfg: RunConfig) -> str:
    """The stage at which a site that drops after training is lost."""
    if cfg.mpc.enabled:
        return "mpc_share"
    if cfg.secagg.enabled:
        return "masked_input"
    return "train"


def server_sees(cfg: RunConfig) -> str:
    """What the aggregation server learns of the sites' updates."""
    if cfg.vertical.enabled:
        return "only the trained model (vertical, MPC)"
    if cfg.mpc.enabled:
        noised = ", noised" if cfg.mpc.noise_multiplier > 0 else ""
        return f"only the clipped sum (MPC{noised})"
    if cfg.secagg.enabled:
        noised = " (noised)" if cfg.dp.mode == "distributed" else ""
        return f"only the sum{noised}"
    if cfg.dp.mode == "central":
        return "every update (trusted, noises the sum)"
    if cfg.dp.mode == "local_opacus":
        return "every DP-SGD-trained update"
    return "every update"


def configurations(
    base: Mapping[str, Any],
    table: Mapping[str, Mapping[str, Any]],
    only: Sequence[str],
    drop: int,
    num_clients: int,
) -> list[tuple[str, dict[str, Any], RunConfig]]:
    """``(name, overrides, run config)`` per configuration, drops included.

    Raises
    ------
    ConfigError
        For an unknown name in ``only``, a bad override, or more dropping
        sites than the federation can lose.
    """
    unknown = sorted(set(only) - set(table))
    if unknown:
        raise ConfigError(f"tradeoffs.only names unknown configurations {unknown}")
    if not 0 <= drop <= num_clients - MPC_PARTIES:
        raise ConfigError(
            f"tradeoffs.drop must be in [0, {num_clients - MPC_PARTIES}] "
            f"for {num_clients} clients"
        )
    dropping = range(num_clients - drop, num_clients)
    out = []
    for name, overrides in table.items():
        if only and name not in only:
            continue
        cfg = RunConfig.from_mapping({**base, **overrides})
        if drop:
            stage = drop_stage(cfg)
            faults = ",".join(f"{p}:{stage}" for p in dropping)
            cfg = RunConfig.from_mapping({**cfg.to_mapping(), "faults-drop": faults})
        out.append((name, dict(overrides), cfg))
    return out


def _median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def result_row(
    name: str, overrides: Mapping[str, Any], cfg: RunConfig, history: History
) -> dict[str, Any]:
    """One row of the report from a finished run."""
    rounds = history.rounds
    steady = rounds[1:] or rounds
    eps = [r.extra["epsilon"] for r in rounds if "epsilon" in r.extra]
    used = []  # sites in each aggregate, as each backend counts them
    for r in rounds:
        for key in ("survivors", "included", "replies"):
            if key in r.extra:
                used.append(r.extra[key])
                break
    return {
        "name": name,
        "overrides": dict(overrides),
        "server_sees": server_sees(cfg),
        "accuracy": history.final.accuracy,
        "loss": history.final.loss,
        "epsilon": eps[-1] if eps else None,
        "delta": cfg.dp.delta if eps else None,
        "seconds_per_round": _median([r.seconds for r in steady]),
        "first_round_seconds": rounds[0].seconds if rounds else None,
        "bytes_up_per_round": statistics.fmean(r.bytes_up for r in rounds)
        if rounds
        else None,
        "bytes_down_per_round": statistics.fmean(r.bytes_down for r in rounds)
        if rounds
        else None,
        "round_trips": _median(
            [r.extra["round_trips"] for r in rounds if "round_trips" in r.extra]
        ),
        "sites_used": statistics.fmean(used) if used else None,
        "dropped": len(cfg.faults.drops()),
        "aborted_rounds": sum(1 for r in rounds if "aborted" in r.extra),
    }


def _cell(value: Any, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The report as a Markdown table, one line per run."""
    head = (
        "| configuration | server sees | accuracy | ε | s/round | first round s "
        "| kB up/round | kB down/round | round trips | sites used | dropped |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    lines = []
    for r in rows:
        kb_up = (
            None if r["bytes_up_per_round"] is None else r["bytes_up_per_round"] / 1e3
        )
        kb_down = (
            None
            if r["bytes_down_per_round"] is None
            else r["bytes_down_per_round"] / 1e3
        )
        lines.append(
            f"| {r['name']} | {r['server_sees']} | {_cell(r['accuracy'], '.4f')} "
            f"| {_cell(r['epsilon'], '.3g')} | {_cell(r['seconds_per_round'], '.2f')} "
            f"| {_cell(r['first_round_seconds'], '.2f')} | {_cell(kb_up, '.1f')} "
            f"| {_cell(kb_down, '.1f')} | {_cell(r['round_trips'], 'g')} "
            f"| {_cell(r['sites_used'], '.1f')} | {r['dropped']} |"
        )
    return head + "\n".join(lines) + "\n"


@hydra.main(version_base="1.3", config_path="../conf", config_name="tradeoffs")
def main(cfg: DictConfig) -> None:
    """Run every configuration; write the JSON and the table."""
    t = cfg.tradeoffs
    num_clients = int(cfg.num_clients)
    table = OmegaConf.to_container(t.configurations, resolve=True)
    if not isinstance(table, dict) or not table:
        raise ConfigError("tradeoffs.configurations must be a non-empty mapping")
    runs = configurations(
        run_config_from_hydra(cfg).to_mapping(),
        {str(k): dict(v or {}) for k, v in table.items()},
        [str(n) for n in t.only],
        int(t.drop),
        num_clients,
    )
    resources = SimulationResources(
        cpus=cfg.simulation.cpus, client_cpus=cfg.simulation.client_cpus
    )
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for k, (name, overrides, run_config) in enumerate(runs, 1):
        for repeat in range(int(t.repeats)):
            history = simulate(run_config, num_clients, resources)
            rows.append(
                {**result_row(name, overrides, run_config, history), "repeat": repeat}
            )
            row = rows[-1]
            print(
                f"tradeoffs [{k}/{len(runs)}] {name} repeat={repeat}: "
                f"accuracy={row['accuracy']:.4f} epsilon={row['epsilon']} "
                f"seconds_per_round={row['seconds_per_round']}",
                flush=True,
            )
    document = {
        "config": OmegaConf.to_container(cfg, resolve=True),
        "rows": rows,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "total_seconds": time.perf_counter() - started,
    }
    (out_dir / JSON_NAME).write_text(json.dumps(document, indent=2) + "\n")
    text = markdown_table(rows)
    (out_dir / TABLE_NAME).write_text(text)
    print(text, flush=True)
    print(f"tradeoffs: results in {out_dir / JSON_NAME}", flush=True)


if __name__ == "__main__":
    main()
