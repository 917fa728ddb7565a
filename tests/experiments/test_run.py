"""End to end in Flower's simulation engine: the real Ray backend, real apps."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from experiments.simulate import simulate
from fedsec.config import RunConfig

from .hydra_runs import run_experiment

pytestmark = pytest.mark.slow


def test_ten_hospitals_reach_093_on_breast_cancer() -> None:
    history = simulate(RunConfig.from_mapping({"num-server-rounds": 5}), num_clients=10)
    assert len(history.rounds) == 5
    assert history.final.accuracy >= 0.93
    assert history.final.accuracy > history.initial.accuracy + 0.3
    first = history.rounds[0]
    # 10 sites each received the model and each sent one back
    assert first.extra["replies"] == 10
    assert first.bytes_down > 0
    assert first.bytes_up > 0


def _hydra(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return run_experiment(
        "run",
        tmp_path / "run",
        *overrides,
        f"hydra.sweep.dir={tmp_path}/multi",
        timeout=600,
    )


def test_hydra_run_writes_metrics_json(tmp_path: Path) -> None:
    proc = _hydra(tmp_path, "num_rounds=3", "num_clients=5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert doc["config"]["num_rounds"] == 3
    assert [r["round"] for r in doc["rounds"]] == [1, 2, 3]
    for row in doc["rounds"]:
        assert {
            "round",
            "accuracy",
            "loss",
            "seconds",
            "bytes_up",
            "bytes_down",
        } <= set(row)
    assert doc["final"]["accuracy"] >= 0.9


def test_hydra_multirun_sweeps_partitions(tmp_path: Path) -> None:
    proc = _hydra(
        tmp_path, "-m", "data.partition=iid,dirichlet", "num_rounds=2", "num_clients=4"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    docs = sorted((tmp_path / "multi").glob("*/metrics.json"))
    assert len(docs) == 2
    partitions = {
        json.loads(p.read_text())["config"]["data"]["partition"] for p in docs
    }
    assert partitions == {"iid", "dirichlet"}


def test_bad_override_is_one_clear_error(tmp_path: Path) -> None:
    proc = _hydra(tmp_path, "data.task=mnist")
    assert proc.returncode != 0
    assert "task must be one of" in proc.stderr
