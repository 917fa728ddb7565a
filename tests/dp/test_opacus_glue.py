"""Opacus glue: DP-SGD steps, ε equals the accountant, rounds add up, clean keys.

Also: the noise is the mechanism's N(0, (zC)^2), drawn from the CSPRNG (never
torch's generators), and neither torch's global seed nor the loader's
generator decides the noise or the Poisson batches.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from fedsec.dp.accounting import accountant_to_bytes, epsilon, make_accountant
from fedsec.dp.opacus_glue import (
    PrivateTraining,
    SecretNoiseOptimizer,
    make_private,
    unwrapped_state_dict,
)
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


def private(
    model: nn.Module, loader: DataLoader[object] | None = None, **kw: object
) -> PrivateTraining:
    loader = loader or DataLoader(dataset(), batch_size=16)
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


def weights(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_the_noise_is_the_mechanisms_gaussian() -> None:
    model = nn.Sequential(nn.Linear(200, 50))  # 10 050 coordinates
    pt = private(model, noise_multiplier=1.5, max_grad_norm=0.4)
    assert isinstance(pt.optimizer, SecretNoiseOptimizer)
    for p in pt.optimizer.params:
        p.summed_grad = torch.zeros_like(p)
    pt.optimizer.add_noise()
    noise = torch.cat([p.grad.flatten() for p in pt.optimizer.params])
    assert noise.dtype == torch.float32
    assert noise.numel() == 10_050
    std = 1.5 * 0.4
    assert abs(float(noise.mean())) < 5 * std / noise.numel() ** 0.5
    assert float(noise.std()) == pytest.approx(std, rel=0.04)  # ~6 sigma


def test_dp_sgd_never_draws_noise_from_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("DP-SGD noise drawn from torch's generator")

    monkeypatch.setattr(torch, "normal", forbidden)
    pt = private(logreg())
    assert train(pt, epochs=1) == len(pt.data_loader)


def test_the_noise_ignores_torch_global_seed() -> None:
    """Same global seed, same fixed batches (no Poisson sampling): noise differs."""
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = logreg()
        pt = private(model, poisson_sampling=False)
        train(pt, epochs=1)
        runs.append(weights(model))
    assert not torch.allclose(runs[0], runs[1], atol=1e-4)


def test_poisson_batches_ignore_the_loaders_generator() -> None:
    batches = []
    for _ in range(2):
        torch.manual_seed(0)
        loader = DataLoader(
            dataset(), batch_size=16, generator=torch.Generator().manual_seed(7)
        )
        pt = private(logreg(), loader=loader)
        batches.append([yb.tolist() for _, yb in pt.data_loader])
    assert len(batches[0]) == len(batches[1]) == N // 16
    assert batches[0] != batches[1]


def test_a_seeded_noise_source_is_refused() -> None:
    model = logreg()
    with pytest.raises(ConfigError, match="unseeded"):
        SecretNoiseOptimizer(
            torch.optim.SGD(model.parameters(), lr=0.1),
            noise_source=CryptoRandom(bytes(32)),
            noise_multiplier=1.0,
            max_grad_norm=1.0,
            expected_batch_size=16,
        )
