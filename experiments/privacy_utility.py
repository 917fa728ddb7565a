"""Privacy–utility experiment: accuracy against ε for the four DP modes (issue 4).

    python -m experiments.privacy_utility
    python -m experiments.privacy_utility pu.repeats=3 \
        'pu.distributed_survivor_fractions=[1.0,0.5]'

Runs the real Flower simulation (:func:`experiments.simulate.simulate`) for no
DP, local DP-SGD (Opacus, record-level), distributed DP inside secure
aggregation (Kairouz, Liu, Steinke ICML 2021; Agarwal, Kairouz, Liu NeurIPS
2021) and central DP (trusted server), each over a grid of noise multipliers,
distributed DP also over the survivor fractions its noise is calibrated for
(``dp-survivor-fraction``; the SecAgg threshold stays at the variant's
default, it does not change the noise), and writes into the Hydra run folder:

* ``privacy_utility.json`` — ``rows`` (``mode``, ``noise_multiplier``,
  ``epsilon`` of the final round, ``delta``, ``accuracy`` of the final model,
  ``seconds_per_round`` = median of the rounds after the first, plus
  ``survivor_fraction`` (distributed only) and ``repeat``); ``comparison`` of
  distributed against central DP at the same noise multiplier (with survivor
  fraction 1 and every site surviving, the same noise and ε) with the issue's
  target; DP-SGD's time per epoch against plain local training on one site
  (``dp_sgd_epoch_seconds``, ``plain_epoch_seconds``, ``cores``).
  For ``none`` the fields ``epsilon``, ``delta`` and ``noise_multiplier`` are
  ``null`` (no privacy guarantee: ε = ∞, which JSON cannot hold).
* ``privacy_utility.png`` — accuracy against ε, one line per DP mode, no DP
  as a horizontal line.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from experiments.run import run_config_from_hydra
from experiments.simulate import SimulationResources, simulate
from fedsec.config import DP_MODES, ClientSettings, RunConfig
from fedsec.errors import ConfigError
from strategies.loop import History

JSON_NAME = "privacy_utility.json"
PLOT_NAME = "privacy_utility.png"
DP_ONLY = tuple(m for m in DP_MODES if m != "none")


@dataclass(frozen=True)
class ExperimentConfig:
    """The ``pu`` section of ``conf/privacy_utility.yaml``, checked once."""

    modes: tuple[str, ...]
    noise_multipliers: Mapping[str, tuple[float, ...]]
    accountant: str
    delta: float
    clip_norm: float
    max_grad_norm: float
    mechanism: str
    distributed_survivor_fractions: tuple[float, ...]
    repeats: int
    target_points: float
    timing_epochs: int
    timing_repeats: int

    @classmethod
    def from_hydra(cls, pu: DictConfig) -> ExperimentConfig:
        """Parse and validate the ``pu`` section."""
        modes = tuple(str(m) for m in pu.modes)
        unknown = sorted(set(modes) - set(DP_MODES))
        if unknown or not modes:
            raise ConfigError(f"pu.modes must name some of {DP_MODES}, got {modes}")
        grids = {
            m: tuple(float(z) for z in pu.noise_multipliers.get(m, ())) for m in modes
        }
        for mode in set(modes) & set(DP_ONLY):
            if not grids[mode] or min(grids[mode]) <= 0:
                raise ConfigError(f"pu.noise_multipliers.{mode} needs positive values")
        fractions = tuple(float(f) for f in pu.distributed_survivor_fractions)
        if "distributed" in modes and not fractions:
            raise ConfigError(
                "pu.distributed_survivor_fractions needs at least one value"
            )
        if not all(0.0 < f <= 1.0 for f in fractions):
            raise ConfigError(
                f"pu.distributed_survivor_fractions must lie in (0, 1], got {fractions}"
            )
        for name, least in (
            ("repeats", 1),
            ("timing_epochs", 2),
            ("timing_repeats", 1),
        ):
            if int(pu[name]) < least:
                raise ConfigError(f"pu.{name} must be >= {least}, got {pu[name]}")
        return cls(
            modes=modes,
            noise_multipliers=grids,
            accountant=str(pu.accountant),
            delta=float(pu.delta),
            clip_norm=float(pu.clip_norm),
            max_grad_norm=float(pu.max_grad_norm),
            mechanism=str(pu.mechanism),
            distributed_survivor_fractions=fractions,
            repeats=int(pu.repeats),
            target_points=float(pu.target_points),
            timing_epochs=int(pu.timing_epochs),
            timing_repeats=int(pu.timing_repeats),
        )


@dataclass(frozen=True)
class Setting:
    """One point of the grid: a DP mode, its noise and (distributed) survivor fraction.

    ``survivor_fraction`` is ``dp-survivor-fraction``: the noise is calibrated
    so that this fraction of the sites, surviving, carries the target.
    """

    mode: str
    noise_multiplier: float | None = None
    survivor_fraction: float | None = None

    def label(self) -> str:
        """Short name for progress lines."""
        parts = [self.mode]
        if self.noise_multiplier is not None:
            parts.append(f"z={self.noise_multiplier:g}")
        if self.survivor_fraction is not None:
            parts.append(f"survivors={self.survivor_fraction:g}n")
        return " ".join(parts)


def settings_grid(exp: ExperimentConfig) -> Iterator[Setting]:
    """Every configuration to run, in the order of ``pu.modes``."""
    for mode in exp.modes:
        if mode == "none":
            yield Setting("none")
            continue
        fractions = (
            exp.distributed_survivor_fractions if mode == "distributed" else (None,)
        )
        for fraction in fractions:
            for z in exp.noise_multipliers[mode]:
                yield Setting(mode, z, fraction)


def privacy_keys(setting: Setting, exp: ExperimentConfig) -> dict[str, Any]:
    """The flat run-config keys that turn the base run into ``setting``.

    Distributed DP runs in semi-honest secure aggregation at the threshold of
    the base run (the variant's default); only ``dp-survivor-fraction``
    changes its noise.
    """
    keys: dict[str, Any] = {"dp-mode": setting.mode, "secagg-mode": "none"}
    if setting.mode == "none":
        return keys
    keys |= {
        "dp-noise-multiplier": setting.noise_multiplier,
        "dp-accountant": exp.accountant,
        "dp-delta": exp.delta,
        "dp-clip-norm": exp.clip_norm,
        "dp-max-grad-norm": exp.max_grad_norm,
        "dp-mechanism": exp.mechanism,
    }
    if setting.mode == "distributed":
        keys |= {
            "secagg-mode": "semi_honest",
            "dp-survivor-fraction": setting.survivor_fraction,
        }
    return keys


def seconds_per_round(history: History) -> float:
    """Median wall time of the rounds after the first (which pays for start-up)."""
    seconds = [r.seconds for r in history.rounds]
    return statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


def result_row(
    setting: Setting, history: History, exp: ExperimentConfig, repeat: int
) -> dict[str, Any]:
    """One row of ``privacy_utility.json``."""
    private = setting.mode != "none"
    epsilon = history.rounds[-1].extra.get("epsilon") if history.rounds else None
    if private and epsilon is None:
        raise ConfigError(f"{setting.label()}: the run reported no ε")
    return {
        "mode": setting.mode,
        "noise_multiplier": setting.noise_multiplier,
        "survivor_fraction": setting.survivor_fraction,
        "repeat": repeat,
        "epsilon": float(epsilon) if private and epsilon is not None else None,
        "delta": exp.delta if private else None,
        "accuracy": float(history.final.accuracy),
        "seconds_per_round": seconds_per_round(history),
        "rounds": len(history.rounds),
    }


def compare(
    rows: Sequence[Mapping[str, Any]], target_points: float
) -> list[dict[str, Any]]:
    """Distributed against central DP at the same noise multiplier.

    With survivor fraction 1 and every site surviving, the distributed sum
    carries the same noise as central DP's, hence the same ε (up to the
    discretisation); with fraction ``f < 1`` it carries ``1/sqrt(f)`` times
    more and reports the smaller ε of that noise (``epsilon_distributed``),
    so the gap is what the dropout tolerance costs at the same ``z``.

    Accuracies are averaged over repeats; with at least two repeats of each
    side ``gap_stderr_points`` is the standard error of the gap (else null).
    The target holds when distributed DP loses at most ``target_points``
    accuracy points against central DP (point estimate).
    """

    def accuracies(mode: str, z: float, fraction: float | None) -> list[float]:
        return [
            float(r["accuracy"])
            for r in rows
            if r["mode"] == mode
            and r["noise_multiplier"] == z
            and r["survivor_fraction"] == fraction
        ]

    def epsilon_of(mode: str, z: float, fraction: float | None) -> float:
        return next(
            float(r["epsilon"])
            for r in rows
            if r["mode"] == mode
            and r["noise_multiplier"] == z
            and r["survivor_fraction"] == fraction
        )

    central = {r["noise_multiplier"] for r in rows if r["mode"] == "central"}
    pairs = sorted(
        {
            (r["survivor_fraction"], r["noise_multiplier"])
            for r in rows
            if r["mode"] == "distributed" and r["noise_multiplier"] in central
        }
    )
    out = []
    for fraction, z in pairs:
        acc_d = accuracies("distributed", z, fraction)
        acc_c = accuracies("central", z, None)
        gap = 100.0 * (statistics.fmean(acc_c) - statistics.fmean(acc_d))
        stderr = (
            100.0
            * math.sqrt(
                statistics.variance(acc_c) / len(acc_c)
                + statistics.variance(acc_d) / len(acc_d)
            )
            if min(len(acc_c), len(acc_d)) > 1
            else None
        )
        out.append(
            {
                "noise_multiplier": z,
                "survivor_fraction": fraction,
                "epsilon_central": epsilon_of("central", z, None),
                "epsilon_distributed": epsilon_of("distributed", z, fraction),
                "accuracy_central": statistics.fmean(acc_c),
                "accuracy_distributed": statistics.fmean(acc_d),
                "repeats": min(len(acc_c), len(acc_d)),
                "gap_points": gap,
                "gap_stderr_points": stderr,
                "target_met": gap <= target_points,
            }
        )
    return out


def time_dp_sgd(
    run_config: RunConfig, num_clients: int, exp: ExperimentConfig
) -> dict[str, Any]:
    """Seconds per local epoch of DP-SGD and of plain SGD on site 0.

    One training call is one round's work at the site: set-up (model, loader;
    for DP-SGD the Opacus wrapping and ε) plus the epochs. Calls with 1 and
    with ``timing_epochs`` epochs are timed (median of ``timing_repeats``, after
    one untimed warm-up); the slope is the time per epoch and the intercept the
    set-up per round, so a fixed cost is not passed off as an epoch.
    """
    import torch

    from clients.private_training import PrivateState, train_privately
    from clients.site_data import load_site
    from clients.training import build_site_model, train_locally
    from fedsec.models import get_weights

    base = run_config.to_mapping() | privacy_keys(Setting("local_opacus", 1.0), exp)

    def settings_for(epochs: int) -> ClientSettings:
        run = RunConfig.from_mapping(base | {"local-epochs": epochs})
        return ClientSettings.from_mapping(run.client_mapping())

    short, long = settings_for(1), settings_for(exp.timing_epochs)
    site = load_site({"partition-id": 0, "num-partitions": num_clients}, short.data)
    weights = get_weights(build_site_model(short, site))

    def plain(settings: ClientSettings) -> object:
        return train_locally(weights, site, settings)

    def private(settings: ClientSettings) -> object:
        return train_privately(
            weights, site, settings, PrivateState(), planned_rounds=1
        )

    def median_call(
        train: Callable[[ClientSettings], object], s: ClientSettings
    ) -> float:
        train(s)  # warm-up: first-call imports and allocations
        samples = []
        for _ in range(exp.timing_repeats):
            started = time.perf_counter()
            train(s)
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    def per_epoch_and_setup(
        train: Callable[[ClientSettings], object],
    ) -> tuple[float, float]:
        one, many = median_call(train, short), median_call(train, long)
        epoch = max(many - one, 0.0) / (exp.timing_epochs - 1)
        return epoch, max(one - epoch, 0.0)

    threads = torch.get_num_threads()
    try:
        plain_epoch, plain_setup = per_epoch_and_setup(plain)
        dp_epoch, dp_setup = per_epoch_and_setup(private)
    finally:
        torch.set_num_threads(threads)  # the training functions pin one thread
    return {
        "dp_sgd_epoch_seconds": dp_epoch,
        "plain_epoch_seconds": plain_epoch,
        "dp_sgd_slowdown": dp_epoch / plain_epoch if plain_epoch > 0 else None,
        "dp_sgd_setup_seconds": dp_setup,
        "plain_setup_seconds": plain_setup,
        "timing_site_examples": len(site.train),
        "cores": os.cpu_count(),
    }


def plot(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Accuracy against ε (log scale); no DP as a horizontal line.

    Lines join the means over repeats; with repeats every run is also drawn as
    a faint dot.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    series: dict[str, dict[float, list[tuple[float, float]]]] = {}
    for r in rows:
        if r["mode"] == "none":
            continue
        name = r["mode"]
        if r["mode"] == "distributed":
            name = f"distributed (noise for {r['survivor_fraction']:g}·n survivors)"
        runs = series.setdefault(name, {}).setdefault(r["noise_multiplier"], [])
        runs.append((r["epsilon"], r["accuracy"]))
    for name, by_noise in sorted(series.items()):
        means = sorted(
            (statistics.fmean(e for e, _ in runs), statistics.fmean(a for _, a in runs))
            for runs in by_noise.values()
        )
        xs, ys = zip(*means, strict=True)
        (line,) = ax.plot(xs, ys, marker="o", label=name)
        dots = [p for runs in by_noise.values() if len(runs) > 1 for p in runs]
        if dots:
            dx, dy = zip(*dots, strict=True)
            ax.scatter(dx, dy, s=10, alpha=0.35, color=line.get_color())
    plain = [r["accuracy"] for r in rows if r["mode"] == "none"]
    if plain:
        ax.axhline(
            statistics.fmean(plain), color="black", linestyle="--", label="no DP"
        )
    if series:
        ax.set_xscale("log")
    ax.set_xlabel("ε (δ as in the JSON; local: per record, others: per client)")
    ax.set_ylabel("test accuracy (final round)")
    ax.set_title("fedsec privacy–utility")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _progress(row: Mapping[str, Any], label: str) -> str:
    eps = "inf" if row["epsilon"] is None else f"{row['epsilon']:.3g}"
    return (
        f"privacy_utility: {label} repeat={row['repeat']} eps={eps} "
        f"accuracy={row['accuracy']:.4f} "
        f"seconds_per_round={row['seconds_per_round']:.2f}"
    )


@hydra.main(version_base="1.3", config_path="../conf", config_name="privacy_utility")
def main(cfg: DictConfig) -> None:
    """Run the grid, then write the JSON and the plot into the Hydra run folder."""
    exp = ExperimentConfig.from_hydra(cfg.pu)
    base = run_config_from_hydra(cfg).to_mapping()
    resources = SimulationResources(
        cpus=cfg.simulation.cpus, client_cpus=cfg.simulation.client_cpus
    )
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for setting in settings_grid(exp):
        run_config = RunConfig.from_mapping(base | privacy_keys(setting, exp))
        for repeat in range(exp.repeats):
            history = simulate(run_config, int(cfg.num_clients), resources)
            rows.append(result_row(setting, history, exp, repeat))
            print(_progress(rows[-1], setting.label()), flush=True)
    timing = time_dp_sgd(RunConfig.from_mapping(base), int(cfg.num_clients), exp)
    print(
        f"privacy_utility: DP-SGD {timing['dp_sgd_epoch_seconds']:.4f} s/epoch, "
        f"plain {timing['plain_epoch_seconds']:.4f} s/epoch",
        flush=True,
    )
    comparison = compare(rows, exp.target_points)
    document = {
        "config": OmegaConf.to_container(cfg, resolve=True),
        "rows": rows,
        "comparison": comparison,
        "target_met": all(c["target_met"] for c in comparison) if comparison else None,
        **timing,
        "load_average": os.getloadavg()[0],
        "total_seconds": time.perf_counter() - started,
    }
    (out_dir / JSON_NAME).write_text(json.dumps(document, indent=2) + "\n")
    plot(rows, out_dir / PLOT_NAME)
    for c in comparison:
        print(
            f"privacy_utility: z={c['noise_multiplier']:g} "
            f"survivors={c['survivor_fraction']:g}n "
            f"eps={c['epsilon_central']:.3g}/{c['epsilon_distributed']:.3g} "
            f"central={c['accuracy_central']:.4f} "
            f"distributed={c['accuracy_distributed']:.4f} gap={c['gap_points']:+.2f} "
            f"points (target <= {exp.target_points:g})",
            flush=True,
        )
    print(f"privacy_utility: results in {out_dir / JSON_NAME}", flush=True)


if __name__ == "__main__":
    main()
