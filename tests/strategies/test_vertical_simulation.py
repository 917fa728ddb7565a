"""Vertical training in Flower simulation: holders and parties as SuperNodes."""

from __future__ import annotations

import pytest

from experiments.simulate import simulate
from fedsec.config import RunConfig
from fedsec.errors import FedsecError

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("psi", ["shares", "intersection"])
def test_vertical_logistic_regression_in_simulation(psi: str) -> None:
    cfg = RunConfig.from_mapping(
        {"vertical-model": "logistic", "vertical-psi": psi, "vertical-epochs": 5}
    )
    history = simulate(cfg, num_clients=3)
    (record,) = history.rounds
    assert record.accuracy >= 0.95
    assert record.extra["rows"] > 400
    assert record.extra["mpc_bytes_between_parties"] > 0
    if psi == "intersection":
        assert record.extra["intersection"] == record.extra["rows"]


def test_a_holder_without_the_vertical_mode_stops_the_run() -> None:
    cfg = RunConfig.from_mapping({"vertical-model": "logistic", "vertical-epochs": 1})
    with pytest.raises(FedsecError, match="modes"):
        simulate(cfg, num_clients=3, site_policy={"policy-modes": "mpc"})


def test_vertical_dp_noise_is_accounted() -> None:
    from fedsec.dp.accounting import epsilon

    cfg = RunConfig.from_mapping(
        {
            "vertical-model": "logistic",
            "vertical-epochs": 2,
            "vertical-noise-multiplier": 1.0,
            "vertical-row-norm": 3.0,
            "dp-accountant": "rdp",
        }
    )
    (record,) = simulate(cfg, num_clients=3).rounds
    rows = int(record.extra["rows"])
    steps = 2 * -(-rows // 32)
    assert record.extra["epsilon"] == pytest.approx(
        epsilon(steps, 1.0, 32 / rows, cfg.dp.delta, "rdp")
    )
    assert record.accuracy >= 0.8


def test_vertical_linear_regression_on_diabetes() -> None:
    cfg = RunConfig.from_mapping(
        {
            "task": "diabetes",
            "vertical-model": "linear",
            "vertical-learning-rate": 0.1,
            "vertical-epochs": 10,
        }
    )
    history = simulate(cfg, num_clients=3)
    (record,) = history.rounds
    # standardised targets: the mean predictor has MSE 1
    assert record.loss < 0.7 * history.initial.loss
