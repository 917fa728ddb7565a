"""MPC clip-and-sum in the Flower Deployment Engine: SuperLink + 3 SuperNodes.

Sites 0-2 are the compute parties (their own TLS mesh, keys attested with
their certificates); every site checks the attestations before it shares and
signs its packages with its site key; the parties count registered sites.
The SuperLink runs with TLS and SuperNode authentication (the harness default).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from experiments.deployment import ROUND_LINE, local_deployment

pytestmark = [pytest.mark.slow, pytest.mark.deployment]


def test_an_mpc_round_across_three_sites(tmp_path: Path) -> None:
    with local_deployment(tmp_path, num_sites=3, mpc_parties=True) as deployment:
        proc = deployment.run("num-server-rounds=1 mpc-mode='clip_and_sum'")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    rounds = ROUND_LINE.findall(out)
    assert [(r, backend) for r, _, backend, _ in rounds] == [("1", "mpc")], out[-3000:]
    assert float(rounds[-1][3]) >= 0.9
    # every site's shares were used: all three checked the parties' keys
    assert re.findall(r"included=(\d+)", out) == ["3"]
    assert re.findall(r"mpc_rounds=(\d+)", out) == ["32"]  # docs/mpc.md
    # the three parties checked the sites' signatures against their registry
    assert re.findall(r"mpc_parties_checking_sites=(\d+)", out) == ["3"]
