"""Models: heads per task, deterministic init, weights round trip, training learns."""

from __future__ import annotations

import numpy as np
import pytest

from fedsec.data import simulated_site
from fedsec.errors import ConfigError
from fedsec.models import (
    build_model,
    evaluate,
    get_weights,
    make_loader,
    set_weights,
    train_epochs,
)


@pytest.mark.parametrize("name", ["logreg", "mlp"])
def test_same_seed_same_weights_and_round_trip(name: str) -> None:
    a, b = build_model(name, 30, 2, seed=5), build_model(name, 30, 2, seed=5)
    wa, wb = get_weights(a), get_weights(b)
    assert list(wa) == list(wb)
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    c = build_model(name, 30, 2, seed=6)
    set_weights(c, wa)
    assert all(np.array_equal(get_weights(c)[k], wa[k]) for k in wa)


def test_set_weights_refuses_mismatch() -> None:
    model = build_model("logreg", 30, 2)
    weights = get_weights(model)
    with pytest.raises(ConfigError, match="keys"):
        set_weights(model, {"x": weights["0.weight"]})
    with pytest.raises(ConfigError, match="shape"):
        set_weights(model, {**weights, "0.weight": np.zeros((3, 30), np.float32)})
    with pytest.raises(ConfigError, match="unknown model"):
        build_model("cnn", 30, 2)


def test_local_training_learns_breast_cancer() -> None:
    import torch

    site = simulated_site("breast_cancer", 0, 2, seed=0)
    model = build_model("mlp", site.train.num_features, site.train.num_outputs, seed=0)
    before = evaluate(model, site.val)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train_epochs(
        model, make_loader(site.train, 16, 0), optimizer, site.train.kind, epochs=5
    )
    after = evaluate(model, site.val)
    assert after.loss < before.loss
    assert after.accuracy > 0.9
