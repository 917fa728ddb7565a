"""Accounting: ε is Opacus's, grows with rounds, round-trips; budgets stop."""

from __future__ import annotations

import itertools

import pytest
from opacus.accountants import PRVAccountant, RDPAccountant

from fedsec.dp.accounting import (
    PrivacyBudget,
    accountant_from_bytes,
    accountant_from_dict,
    accountant_to_bytes,
    accountant_to_dict,
    epsilon,
    make_accountant,
    noise_multiplier_for,
)
from fedsec.errors import ConfigError, DataError, PrivacyBudgetExhausted

DELTA = 1e-5


def opacus_epsilon(cls: type, steps: int, z: float, q: float) -> float:
    acc = cls()
    for _ in range(steps):
        acc.step(noise_multiplier=z, sample_rate=q)
    return float(acc.get_epsilon(delta=DELTA))


@pytest.mark.parametrize(
    ("name", "cls"), [("prv", PRVAccountant), ("rdp", RDPAccountant)]
)
@pytest.mark.parametrize(
    ("steps", "z", "q"), [(1, 1.0, 1.0), (50, 1.1, 0.1), (300, 0.8, 0.01)]
)
def test_epsilon_equals_opacus(
    name: str, cls: type, steps: int, z: float, q: float
) -> None:
    ours = epsilon(steps, z, q, DELTA, accountant=name)
    assert ours == pytest.approx(opacus_epsilon(cls, steps, z, q), rel=1e-9)
    assert ours > 0


@pytest.mark.parametrize("name", ["prv", "rdp"])
def test_epsilon_grows_with_rounds(name: str) -> None:
    eps = [epsilon(r, 1.5, 0.3, DELTA, accountant=name) for r in (1, 2, 5, 10)]
    assert all(a < b for a, b in itertools.pairwise(eps))
    assert epsilon(0, 1.5, 0.3, DELTA, accountant=name) == 0.0


def test_more_noise_or_less_sampling_spends_less() -> None:
    base = epsilon(20, 1.0, 0.5, DELTA, "rdp")
    assert epsilon(20, 2.0, 0.5, DELTA, "rdp") < base
    assert epsilon(20, 1.0, 0.1, DELTA, "rdp") < base


def test_noise_multiplier_for_inverts_epsilon() -> None:
    z = noise_multiplier_for(
        2.0, delta=DELTA, sample_rate=0.2, steps=30, accountant="rdp"
    )
    assert epsilon(30, z, 0.2, DELTA, "rdp") <= 2.0
    assert epsilon(30, z * 0.97, 0.2, DELTA, "rdp") > 2.0 - 0.01


def test_noise_multiplier_for_impossible_budget() -> None:
    with pytest.raises(ConfigError):
        noise_multiplier_for(
            1e-9, delta=1e-12, sample_rate=1.0, steps=10**6, accountant="rdp"
        )


@pytest.mark.parametrize("name", ["gdp", "PRV", "", "moments"])
def test_unknown_accountant_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="unknown accountant"):
        make_accountant(name)
    with pytest.raises(ConfigError):
        epsilon(1, 1.0, 1.0, DELTA, accountant=name)


@pytest.mark.parametrize(
    "args",
    [
        (1, 0.0, 0.5, DELTA),
        (1, 1.0, 0.0, DELTA),
        (1, 1.0, 1.5, DELTA),
        (1, 1.0, 0.5, 0.0),
    ],
)
def test_bad_step_parameters(args: tuple[int, float, float, float]) -> None:
    with pytest.raises(ConfigError):
        epsilon(*args)


@pytest.mark.parametrize("name", ["prv", "rdp"])
def test_serialisation_round_trip(name: str) -> None:
    acc = make_accountant(name)
    for _ in range(7):
        acc.step(noise_multiplier=1.2, sample_rate=0.25)
    acc.step(noise_multiplier=0.9, sample_rate=0.5)
    again = accountant_from_bytes(accountant_to_bytes(acc))
    assert again.mechanism() == name
    assert again.history == acc.history
    assert again.get_epsilon(delta=DELTA) == acc.get_epsilon(delta=DELTA)
    assert accountant_from_dict(accountant_to_dict(acc)).history == acc.history


@pytest.mark.parametrize(
    "blob",
    [
        b"not json",
        b"[1, 2]",
        b'{"mechanism": "rdp"}',
        b'{"mechanism": "nope", "history": []}',
        b'{"mechanism": "rdp", "history": [[1.0, 2.0, 3]]}',
        b'{"mechanism": "rdp", "history": [[-1.0, 0.5, 3]]}',
        b'{"mechanism": "rdp", "history": [[1.0, 0.5]]}',
        b"\xff\xfe",
    ],
)
def test_malformed_state_is_refused(blob: bytes) -> None:
    with pytest.raises((DataError, ConfigError)):
        accountant_from_bytes(blob)


def test_budget_stops_before_exceeding() -> None:
    budget = PrivacyBudget(target_epsilon=3.0, delta=DELTA, accountant="rdp")
    rounds = 0
    while budget.epsilon_after(3.0, 1.0) <= 3.0:
        budget.step(noise_multiplier=3.0, sample_rate=1.0)
        rounds += 1
        assert budget.spent <= 3.0
    with pytest.raises(PrivacyBudgetExhausted) as info:
        budget.step(noise_multiplier=3.0, sample_rate=1.0)
    assert rounds > 1
    assert budget.exhausted
    assert info.value.stage == "accounting"
    # the refused round was not recorded and nothing more can run
    assert len(budget.round_epsilons) == rounds
    assert budget.spent == budget.round_epsilons[-1] <= 3.0
    assert budget.epsilon_after(3.0, 1.0) > 3.0
    assert budget.round_epsilons == sorted(budget.round_epsilons)
    assert budget.spent == pytest.approx(epsilon(rounds, 3.0, 1.0, DELTA, "rdp"))


def test_budget_check_does_not_spend() -> None:
    budget = PrivacyBudget(5.0, DELTA, "rdp")
    after = budget.check(1.0, 0.1, steps=10)
    assert after > 0
    assert budget.spent == 0.0
    assert budget.remaining == 5.0
    assert not budget.exhausted


def test_budget_shares_an_external_accountant() -> None:
    acc = make_accountant("rdp")
    budget = PrivacyBudget(10.0, DELTA, acc)
    for _ in range(40):  # as Opacus's optimizer hook would
        acc.step(noise_multiplier=1.0, sample_rate=0.05)
    eps = budget.close_round()
    assert eps == pytest.approx(epsilon(40, 1.0, 0.05, DELTA, "rdp"))
    assert budget.round_epsilons == [eps]


def test_budget_round_trip() -> None:
    budget = PrivacyBudget(4.0, DELTA, "prv")
    budget.step(1.5, 0.2, steps=3)
    budget.step(1.5, 0.2, steps=3)
    again = PrivacyBudget.from_bytes(budget.to_bytes())
    assert again.round_epsilons == budget.round_epsilons
    assert again.spent == budget.spent
    assert again.accountant.mechanism() == "prv"
    with pytest.raises(DataError):
        PrivacyBudget.from_bytes(b'{"delta": 1e-5}')


def test_budget_rejects_bad_config() -> None:
    with pytest.raises(ConfigError):
        PrivacyBudget(0.0, DELTA)
    with pytest.raises(ConfigError):
        PrivacyBudget(1.0, 1.5)
    with pytest.raises(ConfigError):
        PrivacyBudget(1.0, DELTA, "gdp")
