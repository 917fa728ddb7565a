"""Distributed DP inside secure aggregation, in Flower's simulation engine."""

from __future__ import annotations

import pytest

from experiments.simulate import simulate
from fedsec.config import RunConfig
from fedsec.dp.accounting import epsilon
from fedsec.dp.distributed import DistributedDPParams

pytestmark = pytest.mark.slow


def test_noise_inside_the_secure_sum_with_a_dropout() -> None:
    cfg = RunConfig.from_mapping(
        {
            "num-server-rounds": 2,
            "secagg-mode": "semi_honest",
            "secagg-bits": 24,
            "dp-mode": "distributed",
            "dp-noise-multiplier": 0.5,
            "dp-clip-norm": 2.0,
            "dp-accountant": "rdp",
            "faults-drop": "3:masked_input",
        }
    )
    # ten sites: with the noise on a sum over nine survivors the learning shows
    # in every run (with six, one run in a few dozen ended near 0.77)
    history = simulate(cfg, num_clients=10)
    assert [r.extra["survivors"] for r in history.rounds] == [9, 9]
    # the noise is calibrated for all 10 sampled sites (dp-survivor-fraction 1);
    # ε is that of the effective noise multiplier of the 9 actual survivors
    params = DistributedDPParams(
        dim=62,  # logistic regression on 30 features, 2 classes
        clip_norm=2.0,
        noise_multiplier=0.5,
        num_clients=10,
        min_survivors=10,
        ring_bits=24,
    )
    z_eff = params.effective_noise_multiplier(9)
    assert z_eff < params.effective_noise_multiplier() < 0.5
    assert [r.extra["noise_multiplier"] for r in history.rounds] == pytest.approx(
        [z_eff, z_eff]
    )
    expected = [epsilon(k, z_eff, 1.0, 1e-5, "rdp") for k in (1, 2)]
    assert [r.extra["epsilon"] for r in history.rounds] == pytest.approx(expected)
    assert history.final.accuracy > 0.8
