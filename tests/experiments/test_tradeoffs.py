"""The comparison report: configurations, drops per mode, the table, a real run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from experiments.run import run_config_from_hydra
from experiments.simulate import ROOT
from experiments.tradeoffs import (
    configurations,
    drop_stage,
    markdown_table,
    server_sees,
)
from fedsec.errors import ConfigError

from .hydra_runs import run_experiment

CONF = ROOT / "conf"


def _default() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("tradeoffs")
    table = OmegaConf.to_container(cfg.tradeoffs.configurations, resolve=True)
    assert isinstance(table, dict)
    return run_config_from_hydra(cfg).to_mapping(), {
        str(k): dict(v or {}) for k, v in table.items()
    }


def test_every_mode_loses_its_dropping_sites_at_its_own_stage() -> None:
    base, table = _default()
    runs = configurations(base, table, [], drop=2, num_clients=10)
    assert [name for name, _, _ in runs] == list(table)
    stages = {name: drop_stage(cfg) for name, _, cfg in runs}
    assert stages["plain"] == stages["central_dp"] == "train"
    assert stages["secagg"] == stages["distributed_dp"] == "masked_input"
    assert stages["mpc"] == "mpc_share"
    for name, _, cfg in runs:
        # the highest partitions drop, never the MPC parties 0-2
        assert cfg.faults.drops() == {8: stages[name], 9: stages[name]}
    sees = {name: server_sees(cfg) for name, _, cfg in runs}
    assert sees["plain"] == "every update"
    assert sees["secagg"] == "only the sum"
    assert sees["distributed_dp"] == "only the sum (noised)"
    assert "MPC" in sees["mpc"]


def test_bad_selections_are_refused() -> None:
    base, table = _default()
    with pytest.raises(ConfigError, match="unknown"):
        configurations(base, table, ["plain", "fhe"], drop=0, num_clients=10)
    with pytest.raises(ConfigError, match="drop"):
        configurations(base, table, [], drop=8, num_clients=10)
    only = configurations(base, table, ["mpc"], drop=0, num_clients=10)
    assert [name for name, _, _ in only] == ["mpc"]
    assert only[0][2].faults.drops() == {}


def test_table_has_one_line_per_row_and_dashes_for_missing_values() -> None:
    row = {
        "name": "plain",
        "server_sees": "every update",
        "accuracy": 0.95,
        "epsilon": None,
        "seconds_per_round": 0.2,
        "first_round_seconds": 18.0,
        "bytes_up_per_round": 1800.0,
        "bytes_down_per_round": None,
        "round_trips": None,
        "sites_used": 9.0,
        "dropped": 1,
    }
    lines = markdown_table([row, {**row, "name": "central_dp", "epsilon": 6.58}])
    body = lines.strip().splitlines()[2:]
    assert len(body) == 2
    assert body[0].startswith("| plain | every update | 0.9500 | – | 0.20 |")
    assert "| 6.58 |" in body[1]


@pytest.mark.slow
def test_tiny_comparison_writes_json_and_table(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_experiment(
        "tradeoffs",
        out,
        "num_rounds=2",
        "num_clients=4",
        "tradeoffs.only=[plain,secagg,mpc]",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((out / "tradeoffs.json").read_text())["rows"]
    assert [r["name"] for r in rows] == ["plain", "secagg", "mpc"]
    for r in rows:
        assert r["dropped"] == 1
        assert r["sites_used"] == 3.0  # four sites, one dropped every round
        assert r["accuracy"] >= 0.9
        assert r["aborted_rounds"] == 0
    # secure aggregation costs bytes: key set-up and masked, packed inputs
    assert rows[1]["bytes_up_per_round"] > rows[0]["bytes_up_per_round"]
    table = (out / "tradeoffs.md").read_text()
    assert len(table.strip().splitlines()) == 2 + 3
