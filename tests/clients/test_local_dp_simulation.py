"""Local DP-SGD (Opacus) at every site, in Flower's simulation engine."""

from __future__ import annotations

import pytest

from experiments.simulate import simulate
from fedsec.config import RunConfig

pytestmark = pytest.mark.slow


def test_epsilon_is_reported_grows_and_the_budget_stops_sites() -> None:
    cfg = RunConfig.from_mapping(
        {
            "num-server-rounds": 4,
            "dp-mode": "local_opacus",
            "dp-noise-multiplier": 1.0,
            "dp-epsilon-budget": 5.0,
            "local-epochs": 1,
        }
    )
    history = simulate(cfg, num_clients=4)
    eps = [r.extra.get("epsilon") for r in history.rounds]
    # ε is reported while sites train, and grows round after round
    assert eps[0] is not None
    assert eps[1] > eps[0]
    # the budget stops every site before it is exceeded: later rounds have no replies
    assert all(e is None or e <= 5.0 for e in eps)
    stopped = [r for r in history.rounds if r.extra["replies"] == 0]
    assert stopped, "sites should have stopped once their budget was spent"
    assert all(r.extra["failures"] == 4 for r in stopped)
    # a round without replies leaves the model as it was
    last_trained = history.rounds[len(history.rounds) - len(stopped) - 1]
    assert stopped[-1].accuracy == last_trained.accuracy
    assert last_trained.accuracy >= 0.85
