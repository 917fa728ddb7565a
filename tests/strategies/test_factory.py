"""Strategy registry: linear ones build; robust ones are refused when secure."""

from __future__ import annotations

import pytest
from flwr.serverapp.strategy import FedAdam, FedAvg, FedAvgM, FedProx, FedYogi

from fedsec.config import StrategyConfig
from fedsec.errors import ConfigError
from strategies.factory import LINEAR_STRATEGIES, build_strategy


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("fedavg", FedAvg),
        ("fedprox", FedProx),
        ("fedadam", FedAdam),
        ("fedyogi", FedYogi),
        ("fedavgm", FedAvgM),
    ],
)
def test_linear_strategies_build_in_secure_mode(name: str, cls: type) -> None:
    strategy = build_strategy(StrategyConfig(name=name), secure=True)
    assert isinstance(strategy, cls)
    assert name in LINEAR_STRATEGIES


def test_fedprox_carries_mu() -> None:
    strategy = build_strategy(StrategyConfig(name="fedprox", proximal_mu=0.3))
    assert isinstance(strategy, FedProx)
    assert strategy.proximal_mu == 0.3


@pytest.mark.parametrize("name", ["krum", "fedmedian", "fedtrimmedavg"])
def test_robust_strategy_is_plain_only(name: str) -> None:
    assert build_strategy(StrategyConfig(name=name), secure=False) is not None
    with pytest.raises(ConfigError, match="needs every client's update in the clear"):
        build_strategy(StrategyConfig(name=name), secure=True)


def test_registry_matches_config_names() -> None:
    from fedsec.config import LINEAR_STRATEGY_NAMES, ROBUST_STRATEGY_NAMES
    from strategies.factory import ROBUST_STRATEGIES

    assert set(LINEAR_STRATEGIES) == set(LINEAR_STRATEGY_NAMES)
    assert set(ROBUST_STRATEGIES) == set(ROBUST_STRATEGY_NAMES)


def test_the_strategy_waits_for_the_federation_and_samples_at_least_min_nodes() -> None:
    strategy = build_strategy(StrategyConfig(min_nodes=3, min_available_nodes=10))
    assert isinstance(strategy, FedAvg)
    assert strategy.min_available_nodes == 10
    assert strategy.min_train_nodes == 3
