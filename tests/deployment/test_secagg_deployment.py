"""Secure aggregation in the Flower Deployment Engine: SuperLink + 3 SuperNodes.

The deployment runs as the sites should: TLS with a throwaway CA and SuperNode
authentication with registered keys (the harness default).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from experiments.deployment import ROUND_LINE, local_deployment

pytestmark = [pytest.mark.slow, pytest.mark.deployment]


def test_two_secure_rounds_across_three_sites(tmp_path: Path) -> None:
    with local_deployment(tmp_path, num_sites=3) as deployment:
        assert deployment.tls is not None
        assert len(deployment.node_keys) == 3
        proc = deployment.run("num-server-rounds=2 secagg-mode='semi_honest'")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    rounds = ROUND_LINE.findall(out)
    assert [(r, backend) for r, _, backend, _ in rounds] == [
        ("1", "secagg"),
        ("2", "secagg"),
    ], out[-3000:]
    assert float(rounds[-1][3]) >= 0.9
    # key set-up once (2 round trips), then 2 round trips per secure round
    trips = [float(x) for x in re.findall(r"round_trips=(\d+)", out)]
    assert trips == [4.0, 2.0]
    assert re.findall(r"survivors=(\d+)", out) == ["3", "3"]
