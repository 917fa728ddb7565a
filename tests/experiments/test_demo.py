"""`flwr run .` (through the demo wrapper): real local SuperLink, 10 SuperNodes."""

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
    assert "10 simulated SuperNodes" in out
    rounds = re.findall(r"round (\d)/2 \[plain\]: accuracy=([0-9.]+)", out)
    assert [r for r, _ in rounds] == ["1", "2"]
    assert float(rounds[-1][1]) >= 0.9
    assert local_superlink_pids(env_home) == []
