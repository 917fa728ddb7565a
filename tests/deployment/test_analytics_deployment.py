"""The rehearsal in the Deployment Engine: own tables, statistics, then training.

Three SuperNodes read the rehearsal's CSVs (missing values, a categorical
column, shuffled columns, shifted sites); the secure statistics round writes
its report, and training with the federation's statistics reaches a usable
accuracy on the server's test file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from experiments.deployment import ROUND_LINE, data_dir_config, local_deployment
from experiments.rehearsal import write_rehearsal

pytestmark = [pytest.mark.slow, pytest.mark.deployment]


def test_statistics_then_training_on_the_rehearsal_tables(tmp_path: Path) -> None:
    made = write_rehearsal(tmp_path / "data", 3, seed=1)
    base = data_dir_config(made.folder, "secagg-mode='semi_honest' min-nodes=3")
    assert "task-schema=" in base
    assert "test-path=" in base
    out_dir = tmp_path / "analytics"
    with local_deployment(tmp_path / "run", 3, data_dir=made.folder) as deployment:
        stats = deployment.run(
            f"{base} mode='analytics' analytics-out={json.dumps(str(out_dir))}"
        )
        train = deployment.run(f"{base} num-server-rounds=2 standardise='global'")
    log = stats.stdout + stats.stderr
    assert stats.returncode == 0, log[-3000:]
    document = json.loads((out_dir / "statistics.json").read_text())
    rows = json.loads((made.folder / "rehearsal.json").read_text())["rows"]
    assert document["sites"] == 3
    assert document["rows"] == sum(rows)
    referral = next(f for f in document["features"] if f["name"] == "referral")
    assert set(referral["levels"]) == {"screening", "gp", "specialist"}
    assert referral["missing"] > 0
    assert (out_dir / "histograms.png").is_file()
    log = train.stdout + train.stderr
    assert train.returncode == 0, log[-3000:]
    rounds = ROUND_LINE.findall(log)
    assert [r for r, *_ in rounds] == ["1", "2"], log[-3000:]
    assert float(rounds[-1][3]) >= 0.85
    # the statistics round set up the key set for training
    assert [float(x) for x in re.findall(r"round_trips=(\d+)", log)] == [2.0, 2.0]
