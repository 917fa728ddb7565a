"""Secure aggregation in the Flower Deployment Engine: SuperLink + 3 SuperNodes.

The deployment runs as the sites should, from the kits ``fedsec provision``
writes: TLS with the kit's certificate and SuperNode authentication with
registered keys (the harness default). Afterwards ``fedsec status`` reports
the federation as an operator would see it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.deployment import ROUND_LINE, local_deployment

pytestmark = [pytest.mark.slow, pytest.mark.deployment]


def test_two_secure_rounds_across_three_sites(tmp_path: Path) -> None:
    with local_deployment(tmp_path, num_sites=3) as deployment:
        assert deployment.tls is not None
        assert len(deployment.node_keys) == 3
        proc = deployment.run("num-server-rounds=2 secagg-mode='semi_honest'")
        status = subprocess.run(
            [
                str(Path(sys.executable).with_name("fedsec")),
                "status",
                "--dir",
                str(deployment.kits),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
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

    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["reachable"]
    assert sorted((n["site"], n["status"]) for n in report["nodes"]) == [
        (f"site{i}", "online") for i in range(3)
    ]
    assert report["run"]["status"].startswith("finished")
    assert [r["round"] for r in report["rounds"]] == [1, 2]
