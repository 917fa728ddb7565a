"""Flower Deployment Engine on loopback: a SuperLink, 3 SuperNodes, site files."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.deployment import ROUND_LINE, local_deployment

pytestmark = [pytest.mark.slow, pytest.mark.deployment]


def test_three_hospitals_train_from_their_own_files(tmp_path: Path) -> None:
    with local_deployment(tmp_path, num_sites=3) as deployment:
        proc = deployment.run("num-server-rounds=2")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    rounds = ROUND_LINE.findall(out)
    assert [(r, total, backend) for r, total, backend, _ in rounds] == [
        ("1", "2", "plain"),
        ("2", "2", "plain"),
    ]
    assert float(rounds[-1][3]) >= 0.9
    assert "Sampled 3 nodes" in out
    # every site read its own file: no site fell back to simulated partitions
    for i in range(3):
        assert (tmp_path / "sites" / f"site{i}.csv").is_file()
