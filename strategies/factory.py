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
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    FedYogi,
    Krum,
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
        "min_available_nodes": cfg.available_nodes,
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

# Robust strategies look at every individual update: plain mode only.
ROBUST_STRATEGIES: dict[str, StrategyBuilder] = {
    "krum": lambda c: Krum(num_malicious_nodes=1, **_common(c)),  # type: ignore[arg-type]
    "fedmedian": lambda c: FedMedian(**_common(c)),  # type: ignore[arg-type]
    "fedtrimmedavg": lambda c: FedTrimmedAvg(beta=0.2, **_common(c)),  # type: ignore[arg-type]
}


def build_strategy(cfg: StrategyConfig, *, secure: bool = False) -> Strategy:
    """The strategy for ``cfg.name``; with ``secure=True`` only linear ones."""
    if cfg.name in ROBUST_STRATEGIES:
        if secure:
            raise ConfigError(
                f"strategy {cfg.name!r} needs every client's update in the clear; "
                "secure aggregation and MPC only release the weighted sum. Use one "
                f"of: {', '.join(LINEAR_STRATEGIES)}"
            )
        return ROBUST_STRATEGIES[cfg.name](cfg)
    try:
        return LINEAR_STRATEGIES[cfg.name](cfg)
    except KeyError:
        raise ConfigError(
            f"unknown strategy {cfg.name!r}; use one of {', '.join(LINEAR_STRATEGIES)}"
        ) from None
