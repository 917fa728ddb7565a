"""The privacy–utility experiment: grid, comparison, plot, and one tiny real run."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir

from experiments.privacy_utility import (
    ExperimentConfig,
    Setting,
    compare,
    plot,
    privacy_keys,
    settings_grid,
)
from experiments.run import run_config_from_hydra
from experiments.simulate import ROOT
from fedsec.config import SEMI_HONEST_DEFAULT_THRESHOLD, RunConfig
from fedsec.errors import ConfigError
from strategies.secagg_backend import SecAggBackend

from .hydra_runs import run_experiment

CONF = ROOT / "conf"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _compose(*overrides: str) -> Any:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("privacy_utility", overrides=list(overrides))


def _row(mode: str, z: float | None, acc: float, eps: float | None, **kw: Any) -> Any:
    return {
        "mode": mode,
        "noise_multiplier": z,
        "survivor_fraction": kw.get("f"),
        "repeat": kw.get("repeat", 0),
        "epsilon": eps,
        "delta": None if eps is None else 1e-5,
        "accuracy": acc,
        "seconds_per_round": 0.1,
        "rounds": 2,
    }


def test_default_grid_runs_every_mode_and_noise() -> None:
    exp = ExperimentConfig.from_hydra(_compose().pu)
    grid = list(settings_grid(exp))
    assert grid[0] == Setting("none")
    dp_modes = ("local_opacus", "distributed", "central")
    for mode in dp_modes:
        zs = [s.noise_multiplier for s in grid if s.mode == mode]
        assert zs == list(exp.noise_multipliers[mode])
    # fairness: distributed and central on the same noise, hence the same ε
    assert exp.noise_multipliers["distributed"] == exp.noise_multipliers["central"]
    assert exp.accountant == "rdp"
    assert len(grid) == 1 + sum(len(exp.noise_multipliers[m]) for m in dp_modes)


def test_every_setting_is_a_valid_run_config() -> None:
    cfg = _compose("pu.distributed_survivor_fractions=[1.0,0.5]")
    exp = ExperimentConfig.from_hydra(cfg.pu)
    base = run_config_from_hydra(cfg).to_mapping()
    seen = set()
    for setting in settings_grid(exp):
        run = RunConfig.from_mapping(base | privacy_keys(setting, exp))
        assert run.dp.mode == setting.mode
        if setting.mode == "distributed":
            assert run.secagg.mode == "semi_honest"
            # the threshold no longer sets the noise: it stays the default
            assert run.secagg.effective_threshold == SEMI_HONEST_DEFAULT_THRESHOLD
            assert run.dp.survivor_fraction == setting.survivor_fraction
            seen.add(setting.survivor_fraction)
        else:
            assert not run.secagg.enabled
        if setting.mode != "none":
            assert run.dp.noise_multiplier == setting.noise_multiplier
            assert run.dp.accountant == exp.accountant
    assert seen == {1.0, 0.5}


@pytest.mark.parametrize(
    "override",
    [
        "pu.modes=[none,laplace]",
        "pu.noise_multipliers.central=[0.0]",
        "pu.repeats=0",
        "pu.timing_epochs=1",  # the per-epoch slope needs two epoch counts
        "pu.distributed_survivor_fractions=[]",
        "pu.distributed_survivor_fractions=[0.0]",
        "pu.distributed_survivor_fractions=[1.0,1.5]",
    ],
)
def test_bad_experiment_config_is_refused(override: str) -> None:
    with pytest.raises(ConfigError):
        ExperimentConfig.from_hydra(_compose(override).pu)


def test_the_survivor_fraction_axis_changes_the_noise() -> None:
    """Fraction f: all n surviving carry 1/sqrt(f) times the target z."""
    cfg = _compose("pu.distributed_survivor_fractions=[1.0,0.5]")
    exp = ExperimentConfig.from_hydra(cfg.pu)
    base = run_config_from_hydra(cfg).to_mapping()
    n = int(cfg.num_clients)
    for setting in settings_grid(exp):
        if setting.mode != "distributed":
            continue
        assert setting.noise_multiplier is not None
        assert setting.survivor_fraction is not None
        run = RunConfig.from_mapping(base | privacy_keys(setting, exp))
        noise = SecAggBackend(run.secagg, run.dp)._noise_params(62, n)
        assert noise is not None
        assert noise.params.min_survivors == math.ceil(setting.survivor_fraction * n)
        z_all = noise.params.effective_noise_multiplier(n)
        expected = setting.noise_multiplier / math.sqrt(setting.survivor_fraction)
        assert z_all == pytest.approx(expected, rel=1e-4)


def test_compare_averages_repeats_and_applies_the_target() -> None:
    rows = [
        _row("central", 1.0, 0.95, 7.0, repeat=0),
        _row("central", 1.0, 0.93, 7.0, repeat=1),
        _row("distributed", 1.0, 0.935, 7.0, f=1.0, repeat=0),
        _row("distributed", 1.0, 0.925, 7.0, f=1.0, repeat=1),
        _row("central", 2.0, 0.90, 3.0),
        _row("distributed", 2.0, 0.85, 3.0, f=1.0),
        _row("distributed", 4.0, 0.80, 1.0, f=1.0),  # no central partner: skipped
        _row("distributed", 1.0, 0.90, 4.9, f=0.5),  # more noise, smaller ε
    ]
    out = compare(rows, target_points=1.0)
    assert [(c["survivor_fraction"], c["noise_multiplier"]) for c in out] == [
        (0.5, 1.0),
        (1.0, 1.0),
        (1.0, 2.0),
    ]
    half, out = out[0], out[1:]
    assert half["epsilon_distributed"] == 4.9
    assert half["epsilon_central"] == 7.0
    assert half["gap_points"] == pytest.approx(4.0)
    assert out[0]["accuracy_central"] == pytest.approx(0.94)
    assert out[0]["accuracy_distributed"] == pytest.approx(0.93)
    assert out[0]["gap_points"] == pytest.approx(1.0)
    assert out[0]["target_met"]
    # sample variances 2e-4 and 5e-5, two repeats each: sqrt(1.25e-4) = 1.118 pt
    assert out[0]["gap_stderr_points"] == pytest.approx(1.118, abs=1e-3)
    assert out[1]["gap_stderr_points"] is None  # one repeat: no spread
    assert out[1]["gap_points"] == pytest.approx(5.0)
    assert not out[1]["target_met"]


def test_plot_writes_a_png(tmp_path: Path) -> None:
    rows = [
        _row("none", None, 0.96, None),
        _row("local_opacus", 1.0, 0.9, 6.0),
        _row("distributed", 1.0, 0.92, 7.0, f=1.0),
        _row("distributed", 1.0, 0.90, 4.9, f=0.5),
        _row("central", 1.0, 0.93, 7.0),
    ]
    path = tmp_path / "plot.png"
    plot(rows, path)
    assert path.read_bytes().startswith(PNG_MAGIC)


@pytest.mark.slow
def test_tiny_run_writes_json_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_experiment(
        "privacy_utility",
        out,
        "num_rounds=2",
        "num_clients=4",
        "pu.noise_multipliers.local_opacus=[1.0]",
        "pu.noise_multipliers.distributed=[1.0]",
        "pu.noise_multipliers.central=[1.0]",
        "pu.timing_epochs=2",
        "pu.timing_repeats=1",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    progress = [line for line in proc.stdout.splitlines() if "repeat=" in line]
    assert len(progress) == 4  # one line per finished configuration
    doc = json.loads((out / "privacy_utility.json").read_text())
    rows = {r["mode"]: r for r in doc["rows"]}
    assert len(doc["rows"]) == 4
    assert set(rows) == {"none", "local_opacus", "distributed", "central"}
    for mode, row in rows.items():
        assert 0.0 <= row["accuracy"] <= 1.0
        assert row["seconds_per_round"] > 0
        if mode == "none":
            assert row["epsilon"] is None
            assert row["delta"] is None
        else:
            assert math.isfinite(row["epsilon"])
            assert row["epsilon"] > 0
            assert row["delta"] == pytest.approx(1e-5)
            assert row["noise_multiplier"] == 1.0
    # same z, same accountant, same rounds: the same ε up to z_eff / z
    assert rows["distributed"]["epsilon"] == pytest.approx(
        rows["central"]["epsilon"], rel=1e-3
    )
    (pair,) = doc["comparison"]
    assert pair["gap_points"] == pytest.approx(
        100 * (rows["central"]["accuracy"] - rows["distributed"]["accuracy"])
    )
    # measured, not asserted: a loaded machine may even make the slope 0
    for key in ("dp_sgd_epoch_seconds", "plain_epoch_seconds", "dp_sgd_setup_seconds"):
        assert math.isfinite(doc[key])
        assert doc[key] >= 0
    assert doc["cores"] == os.cpu_count()
    png = out / "privacy_utility.png"
    assert png.stat().st_size > 0
    assert png.read_bytes().startswith(PNG_MAGIC)
