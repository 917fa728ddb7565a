"""The demo: `flwr run .` on a real local SuperLink, 10 SuperNodes, secure + DP."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from experiments.demo import local_superlink_pids
from experiments.simulate import ROOT

pytestmark = pytest.mark.slow


def test_demo_trains_ten_hospitals_and_leaves_no_server(tmp_path) -> None:
    env_home = tmp_path / "flwr-home"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.demo",
            "--run-config",
            "num-server-rounds=2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**__import__("os").environ, "FLWR_HOME": str(env_home)},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    rounds = re.findall(
        r"round (\d)/2 \[secagg-semi_honest\+ddp\]: accuracy=([0-9.]+).*", out
    )
    assert [r for r, _ in rounds] == ["1", "2"]
    lines = [line for line in out.splitlines() if "round 1/2" in line]
    assert len(lines) == 1  # one line per round, no duplicated Flower lines
    assert "dropped=1" in lines[0]  # hospital 3 dropped before its masked input
    assert "epsilon=" in lines[0]
    assert float(rounds[-1][1]) >= 0.85
    table = out[out.index("accuracy (secure aggregation") :]
    assert "accuracy of plain FedAvg" in table
    assert re.search(r"dropouts survived +2\n", table)
    assert re.search(r"rounds completed +2 of 2\n", table)
    assert (env_home / "demo.log").is_file()  # Flower's full output is kept
    assert "10 simulated SuperNodes" in (env_home / "demo.log").read_text()
    assert local_superlink_pids(env_home) == []
