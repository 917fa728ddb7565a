"""Opacus glue: DP-SGD steps, ε equals the accountant, rounds add up, clean keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from fedsec.dp.accounting import accountant_to_bytes, epsilon, make_accountant
from fedsec.dp.opacus_glue import PrivateTraining, make_private, unwrapped_state_dict
from fedsec.dp.source import CryptoRandom
from fedsec.errors import ConfigError

DELTA = 1e-5
N, D = 96, 6


def dataset() -> TensorDataset:
    rng = CryptoRandom(bytes(range(32)))
    x = torch.tensor((rng.uniform(N * D) - 0.5).reshape(N, D), dtype=torch.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()  # linearly separable
    return TensorDataset(x, y)


def logreg() -> nn.Module:
    return nn.Sequential(nn.Linear(D, 2))


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, 2))


def private(model: nn.Module, **kw: object) -> PrivateTraining:
    loader = DataLoader(dataset(), batch_size=16)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    args: dict[str, object] = {"max_grad_norm": 1.0, "noise_multiplier": 0.8}
    args.update(kw)
    return make_private(model, opt, loader, **args)  # type: ignore[arg-type]


def train(pt: PrivateTraining, epochs: int) -> int:
    loss_fn = nn.CrossEntropyLoss()
    steps = 0
    pt.model.train()
    for _ in range(epochs):
        for xb, yb in pt.data_loader:
            pt.optimizer.zero_grad()
            loss_fn(pt.model(xb), yb).backward()
            pt.optimizer.step()
            steps += 1
    return steps


def accuracy(model: nn.Module) -> float:
    x, y = dataset().tensors
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean())


@pytest.mark.parametrize("factory", [logreg, mlp])
@pytest.mark.parametrize("accountant", ["prv", "rdp"])
def test_dp_sgd_epsilon_matches_accountant(factory: type, accountant: str) -> None:
    model = factory()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pt = private(model, accountant=accountant)
    assert pt.sample_rate == pytest.approx(16 / N)
    steps = train(pt, epochs=2)
    assert steps == 2 * len(pt.data_loader)
    eps = pt.epsilon(DELTA)
    assert eps > 0
    expected = epsilon(steps, pt.noise_multiplier, pt.sample_rate, DELTA, accountant)
    assert eps == pytest.approx(expected, rel=1e-9)
    state = pt.state_dict()
    assert set(state) == set(before)
    assert not any("_module" in k for k in state)
    assert any(not torch.equal(state[k], before[k]) for k in state)
    assert set(unwrapped_state_dict(pt.model)) == set(before)


def test_dp_sgd_still_learns() -> None:
    model = logreg()
    pt = private(model, noise_multiplier=0.5, accountant="rdp")
    train(pt, epochs=8)
    fresh = logreg()
    fresh.load_state_dict(pt.state_dict())
    assert accuracy(fresh) > 0.8


def test_accountant_history_accumulates_over_rounds() -> None:
    first = private(logreg(), accountant="rdp")
    steps1 = train(first, epochs=1)
    eps1 = first.epsilon(DELTA)
    saved = first.accountant_state()  # what the client keeps in context.state

    model = logreg()
    model.load_state_dict(first.state_dict())
    second = private(model, accountant="rdp", accountant_state=saved)
    steps2 = train(second, epochs=1)
    eps2 = second.epsilon(DELTA)
    assert eps2 > eps1
    total = epsilon(steps1 + steps2, 0.8, first.sample_rate, DELTA, "rdp")
    assert eps2 == pytest.approx(total, rel=1e-9)


def test_target_epsilon_is_met_after_the_planned_epochs() -> None:
    pt = private(
        logreg(),
        noise_multiplier=None,
        target_epsilon=3.0,
        delta=DELTA,
        epochs=3,
        accountant="rdp",
    )
    train(pt, epochs=3)
    assert 2.9 < pt.epsilon(DELTA) <= 3.0


def test_restoring_a_different_mechanism_is_refused() -> None:
    acc = make_accountant("prv")
    acc.step(noise_multiplier=1.0, sample_rate=0.1)
    with pytest.raises(ConfigError, match="saved accountant"):
        private(logreg(), accountant="rdp", accountant_state=accountant_to_bytes(acc))


@pytest.mark.parametrize(
    "kw",
    [
        {"accountant": "gdp"},
        {"noise_multiplier": None},
        {"target_epsilon": 1.0, "delta": DELTA, "epochs": 1},
        {"noise_multiplier": None, "target_epsilon": 1.0},
        {"noise_multiplier": -1.0},
        {"max_grad_norm": 0.0},
    ],
)
def test_bad_arguments_raise(kw: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        private(logreg(), **kw)


def test_batchnorm_is_refused() -> None:
    model = nn.Sequential(nn.Linear(D, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    with pytest.raises(ConfigError, match="Opacus"):
        private(model)


def test_fresh_training_reports_zero_epsilon() -> None:
    pt = private(logreg())
    assert pt.epsilon(DELTA) == 0.0
    assert np.isfinite(pt.noise_multiplier)
