"""Build the Flower Message-API strategy named in the run config.

Secure aggregation and MPC hand the strategy one securely computed weighted
average instead of the individual updates. That is only correct for
strategies whose server update is a function of the weighted average, so a
registry marks which are *linear*; the others (Krum, FedMedian, trimmed mean,
...) need every update in the clear and are refused in a secure mode.
"""

from __future__ import annotations

from collections.abc import Callable

from flwr.serverapp.strategy import (
    FedAdagrad,
    FedAdam,
    FedAvg,
    FedAvgM,
    FedProx,
    FedYogi,
    Strategy,
)

from fedsec.config import StrategyConfig
from fedsec.errors import ConfigError

StrategyBuilder = Callable[[StrategyConfig], Strategy]


def _common(cfg: StrategyConfig) -> dict[str, float | int]:
    return {
        "fraction_train": cfg.fraction_train,
        # federated evaluation is optional; the server evaluates the global model
        "fraction_evaluate": 0.0,
        "min_train_nodes": cfg.min_nodes,
        "min_available_nodes": cfg.min_nodes,
    }


def _fedopt(cfg: StrategyConfig) -> dict[str, float | int]:
    return {**_common(cfg), "eta": cfg.server_learning_rate}


# Every strategy here is linear in the client updates: its new global model
# depends on the replies only through their weighted average.
LINEAR_STRATEGIES: dict[str, StrategyBuilder] = {
    "fedavg": lambda c: FedAvg(**_common(c)),  # type: ignore[arg-type]
    "fedprox": lambda c: FedProx(proximal_mu=c.proximal_mu, **_common(c)),  # type: ignore[arg-type]
    "fedadam": lambda c: FedAdam(**_fedopt(c)),  # type: ignore[arg-type]
    "fedyogi": lambda c: FedYogi(**_fedopt(c)),  # type: ignore[arg-type]
    "fedadagrad": lambda c: FedAdagrad(**_fedopt(c)),  # type: ignore[arg-type]
    "fedavgm": lambda c: FedAvgM(  # type: ignore[arg-type]
        server_learning_rate=1.0, server_momentum=c.server_momentum, **_common(c)
    ),
}

# Flower strategies that look at individual updates; named so the error is clear.
NONLINEAR_STRATEGIES = (
    "krum",
    "multikrum",
    "bulyan",
    "fedmedian",
    "fedtrimmedavg",
    "qfedavg",
)


def build_strategy(cfg: StrategyConfig, *, secure: bool = False) -> Strategy:
    """The strategy for ``cfg.name``; with ``secure=True`` only linear ones."""
    name = cfg.name.lower()
    if name in NONLINEAR_STRATEGIES:
        if secure:
            raise ConfigError(
                f"strategy {cfg.name!r} needs every client's update in the clear; "
                "secure aggregation and MPC only release the weighted sum. Use one "
                f"of: {', '.join(LINEAR_STRATEGIES)}"
            )
        raise ConfigError(f"strategy {cfg.name!r} is not offered by fedsec yet")
    try:
        return LINEAR_STRATEGIES[name](cfg)
    except KeyError:
        raise ConfigError(
            f"unknown strategy {cfg.name!r}; use one of {', '.join(LINEAR_STRATEGIES)}"
        ) from None
