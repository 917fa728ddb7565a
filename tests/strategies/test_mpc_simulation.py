"""MPC clip-and-sum in Flower's simulation engine, against a poisoning site."""

from __future__ import annotations

import pytest

from experiments.simulate import simulate
from fedsec.config import RunConfig

pytestmark = pytest.mark.slow

# a boosted sign-flip: the site sends start − 100·(trained − start)
POISON = {"num-server-rounds": 2, "faults-poison": "5", "faults-poison-scale": -100.0}


def test_mpc_clipping_keeps_the_model_accurate_plain_fedavg_does_not() -> None:
    mpc = simulate(
        RunConfig.from_mapping(
            {**POISON, "mpc-mode": "clip_and_sum", "mpc-clip-norm": 1.0}
        ),
        num_clients=10,
    )
    plain = simulate(RunConfig.from_mapping(POISON), num_clients=10)
    # every site's shares were used, the poisoned one clipped to norm C
    assert [r.extra["included"] for r in mpc.rounds] == [10, 10]
    assert all(r.extra["mpc_bytes_between_parties"] > 0 for r in mpc.rounds)
    assert mpc.final.accuracy >= 0.9
    assert plain.final.accuracy < 0.7
    assert plain.final.loss > 3 * mpc.final.loss
