"""A sweep's folder as tables and plots; one progress line per finished run."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hydra import compose, initialize_config_dir

from experiments import sweep_report
from experiments.simulate import ROOT
from experiments.sweep_progress import SweepProgress, count_jobs


def _config(n: int, secagg: str = "none", dp: str = "none", drop: str = "") -> dict:
    return {
        "num_clients": n,
        "seed": 42,
        "data": {"task": "breast_cancer", "test_fraction": 0.2},
        "model": {"name": "logreg", "hidden_dim": 32},
        "secagg": {"mode": secagg},
        "dp": {"mode": dp, "noise_multiplier": 1.0},
        "mpc": {"mode": "none", "noise_multiplier": 0.0},
        "faults": {"drop": drop},
    }


def _run(
    folder: Path,
    name: str,
    config: dict,
    up_per_site: float,
    seconds: float,
    accuracy: float,
    epsilon: float | None = None,
    aborted: tuple[int, ...] = (),
    parameters: int | None = 62,
) -> None:
    n = config["num_clients"]
    rounds = []
    for r in (1, 2, 3):
        row: dict[str, Any] = {
            "round": r,
            "accuracy": accuracy,
            "loss": 0.1,
            "seconds": seconds * (3 if r == 1 else 1),
            "bytes_up": up_per_site * n,
            "bytes_down": 2 * up_per_site * n,
        }
        if epsilon is not None:
            row["epsilon"] = epsilon * r / 3
        if r in aborted:
            row["aborted"] = 1.0
        rounds.append(row)
    doc: dict[str, Any] = {
        "config": config,
        "rounds": rounds,
        "final": {"accuracy": accuracy, "loss": 0.1},
    }
    if parameters is not None:
        doc["model_parameters"] = parameters
    (folder / name / ".hydra").mkdir(parents=True)
    (folder / name / "metrics.json").write_text(json.dumps(doc))
    overrides = "".join(f"- {o}\n" for o in name.split(","))
    (folder / name / ".hydra" / "overrides.yaml").write_text(overrides)


@pytest.fixture
def multirun(tmp_path: Path) -> Path:
    folder = tmp_path / "multirun" / "2026-12-03" / "10-00-00"
    for n in (5, 10, 20):
        _run(folder, f"num_clients={n},secagg=none", _config(n), 600.0, 0.01 * n, 0.95)
        _run(
            folder,
            f"num_clients={n},secagg=semi_honest",
            _config(n, "semi_honest"),
            500.0 * n**0.5,
            0.03 * n,
            0.95,
        )
    for z, eps, acc in ((0.5, 30.0, 0.93), (1.0, 8.0, 0.91)):
        _run(
            folder,
            f"dp=central,dp.noise_multiplier={z}",
            _config(10, dp="central"),
            600.0,
            0.1,
            acc,
            epsilon=eps,
            parameters=None,  # an older metrics.json: d from the config
        )
    _run(
        folder,
        "faults.drop=1:masked_input,secagg=semi_honest",
        _config(10, "semi_honest", drop="1:masked_input,2:masked_input"),
        700.0,
        0.3,
        0.94,
        aborted=(2,),
    )
    return folder


def test_every_run_is_a_row_of_the_csv_and_the_table(multirun: Path) -> None:
    rows = sweep_report.main([str(multirun)])
    assert len(rows) == 9
    table = list(csv.DictReader(io.StringIO((multirun / "sweep.csv").read_text())))
    assert len(table) == 9
    assert tuple(table[0]) == sweep_report.COLUMNS
    by = {r["run"]: r for r in rows}
    plain = by["num_clients=20,secagg=none"]
    assert plain["mode"] == "plain"
    assert plain["clients"] == 20
    assert plain["bytes_up_per_site_per_round"] == pytest.approx(600.0)
    assert plain["seconds_per_round"] == pytest.approx(0.2)  # rounds after the first
    assert plain["parameters"] == 62
    central = by["dp=central,dp.noise_multiplier=0.5"]
    assert central["mode"] == "dp=central"
    assert central["epsilon"] == pytest.approx(30.0)  # the last round's
    assert central["parameters"] == 62  # breast cancer, logreg: 30 x 2 + 2
    dropped = by["faults.drop=1:masked_input,secagg=semi_honest"]
    assert dropped["dropout_rate"] == pytest.approx(0.2)
    assert dropped["dropout_stage"] == "masked_input"
    assert dropped["completed_rounds"] == 2
    md = (multirun / "sweep.md").read_text().splitlines()
    assert len(md) == 2 + 9
    assert any(
        ln.startswith("| num_clients=5,secagg=semi_honest | secagg=semi_honest | 5 |")
        for ln in md
    )


def test_plots_are_drawn_where_their_axis_varies(multirun: Path) -> None:
    sweep_report.main([str(multirun), "--out", str(multirun / "report")])
    drawn = sorted(p.name for p in (multirun / "report").glob("*.png"))
    # every run has the same d: no latency-against-d plot
    assert drawn == [
        "accuracy_vs_epsilon.png",
        "bytes_vs_n.png",
        "latency_vs_n.png",
        "rounds_vs_dropout.png",
    ]


def test_an_empty_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no metrics\.json"):
        sweep_report.main([str(tmp_path)])


def test_modes_are_named_from_the_config() -> None:
    assert sweep_report.mode_of(_config(5)) == "plain"
    assert (
        sweep_report.mode_of(_config(5, "semi_honest", "distributed"))
        == "secagg=semi_honest+dp=distributed"
    )
    mpc = {**_config(5), "mpc": {"mode": "clip_and_sum", "noise_multiplier": 1.0}}
    assert sweep_report.mode_of(mpc) == "mpc+noise"


# ------------------------------------------------------------------ progress


def test_the_sweep_is_counted_from_its_overrides() -> None:
    assert count_jobs(["num_clients=5,10,20", "secagg=none,semi_honest", "seed=1"]) == 6
    assert count_jobs(["seed=range(0,4)"]) == 4
    assert count_jobs(["seed=1"], {"num_clients": "5,10"}) == 2
    assert count_jobs(["a=b=c=,"]) is None


def test_a_line_per_finished_run_with_eta() -> None:
    now = [0.0]
    out = io.StringIO()
    cb = SweepProgress(out=out, now=lambda: now[0])
    config = SimpleNamespace(
        hydra=_Node({"overrides": _Node({"task": ["seed=1,2,3"]})})
    )
    cb.on_multirun_start(config)
    now[0] = 60.0
    cb.on_job_end(config, _Return(["seed=1"], 0.95))
    now[0] = 120.0
    cb.on_job_end(config, _Return(["seed=2"], RuntimeError("boom")))
    lines = out.getvalue().splitlines()
    assert lines[0] == "sweep [1/3] 1m00s elapsed, ETA ~2m00s: seed=1 -> 0.9500"
    assert lines[1].startswith(
        "sweep [2/3] 2m00s elapsed, ETA ~1m00s: seed=2 -> failed"
    )
    assert "RuntimeError: boom" in lines[1]


def test_a_single_run_prints_no_progress_line() -> None:
    out = io.StringIO()
    SweepProgress(out=out).on_job_end(None, _Return([], 0.9))
    assert out.getvalue() == ""


def test_experiments_run_has_the_progress_callback() -> None:
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", return_hydra_config=True)
    target = cfg.hydra.callbacks.progress._target_
    assert target == "experiments.sweep_progress.SweepProgress"


class _Node(dict):  # attribute and key access, like a DictConfig
    __getattr__ = dict.__getitem__


class _Return:
    def __init__(self, overrides: list[str], value: Any) -> None:
        self.overrides = overrides
        self._value = value

    @property
    def return_value(self) -> Any:
        if isinstance(self._value, BaseException):
            raise self._value
        return self._value
