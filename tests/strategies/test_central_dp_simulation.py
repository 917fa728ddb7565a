"""Central DP at a trusted server, in Flower's simulation engine."""

from __future__ import annotations

import pytest

from experiments.simulate import simulate
from fedsec.config import RunConfig
from fedsec.dp.accounting import epsilon

pytestmark = pytest.mark.slow


def test_central_dp_reports_the_accountants_epsilon_and_still_learns() -> None:
    cfg = RunConfig.from_mapping(
        {
            "num-server-rounds": 3,
            "dp-mode": "central",
            "dp-noise-multiplier": 0.5,
            "dp-clip-norm": 2.0,
            "dp-accountant": "rdp",
        }
    )
    # ten sites: the noise on the average (z·C/n = 0.1 per coordinate) leaves
    # the learning visible in every run (with five, 0.2, one run in a few
    # ended near 0.76)
    history = simulate(cfg, num_clients=10)
    # every round samples all ten: the first does not start before the
    # engine has registered them (it registers its nodes one by one)
    assert [r.extra["replies"] for r in history.rounds] == [10, 10, 10]
    eps = [r.extra["epsilon"] for r in history.rounds]
    expected = [epsilon(k, 0.5, 1.0, 1e-5, "rdp") for k in (1, 2, 3)]
    assert eps == pytest.approx(expected)
    assert eps[0] < eps[1] < eps[2]
    assert history.final.accuracy > 0.8
    assert history.final.loss < history.initial.loss
