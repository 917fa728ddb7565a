"""Vertical training in the Flower Deployment Engine: SuperLink + 3 SuperNodes.

Sites 0-2 are both the data holders (each its columns of breast cancer, in
its own CSV file, labels at site 0) and the compute parties; TLS and
SuperNode authentication (the harness default).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from experiments.deployment import local_deployment

pytestmark = [pytest.mark.slow, pytest.mark.deployment]


def test_vertical_training_across_three_sites(tmp_path: Path) -> None:
    with local_deployment(tmp_path, num_sites=3, vertical_holders=3) as deployment:
        proc = deployment.run("vertical-model='logistic' vertical-epochs=5")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    line = re.search(r"round 1/1 \[vertical\]: accuracy=([0-9.]+)", out)
    assert line is not None, out[-3000:]
    assert float(line.group(1)) >= 0.95
    assert re.findall(r"rows=(\d+)", out) == ["433"]
