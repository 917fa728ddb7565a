"""Privacy accounting over rounds: thin wrappers over Opacus's accountants.

The maths is Opacus's: the PRV accountant (Gopi, Lee and Wutschitz, "Numerical
Composition of Differential Privacy", NeurIPS 2021) and the RDP accountant of
the sampled Gaussian mechanism (Mironov, Talwar and Zhang, "Rényi Differential
Privacy of the Sampled Gaussian Mechanism", 2019). This module adds

* a registry with a clear error for an unknown accountant name;
* :func:`epsilon` and its inverse :func:`noise_multiplier_for`;
* a lossless serialisation of an accountant's history to a JSON-able dict or
  to bytes, so that it can live in Flower's ``context.state`` between rounds;
* :class:`PrivacyBudget`, which refuses a step that would exceed the budget.

One accounting step is one application of a Poisson-subsampled Gaussian
mechanism: a DP-SGD step at a site (``sample_rate`` = batch fraction) or one
federated round in the central and distributed modes (``sample_rate`` = the
fraction of clients sampled, ``noise_multiplier`` = central noise standard
deviation divided by the clipping norm; for distributed DP use
:meth:`fedsec.dp.distributed.DistributedDPParams.effective_noise_multiplier`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from opacus.accountants import IAccountant, PRVAccountant, RDPAccountant
from opacus.accountants.utils import get_noise_multiplier

from fedsec.errors import ConfigError, DataError, PrivacyBudgetExhausted

__all__ = [
    "ACCOUNTANTS",
    "PrivacyBudget",
    "accountant_from_bytes",
    "accountant_from_dict",
    "accountant_to_bytes",
    "accountant_to_dict",
    "epsilon",
    "epsilon_of_steps",
    "make_accountant",
    "noise_multiplier_for",
]

ACCOUNTANTS: Mapping[str, type[IAccountant]] = {
    "prv": PRVAccountant,
    "rdp": RDPAccountant,
}


def make_accountant(name: str) -> IAccountant:
    """Return a fresh accountant called ``name`` (``"prv"`` or ``"rdp"``)."""
    try:
        return ACCOUNTANTS[name]()
    except (KeyError, TypeError):
        known = ", ".join(sorted(ACCOUNTANTS))
        raise ConfigError(f"unknown accountant {name!r}; known: {known}") from None


def _check_step(noise_multiplier: float, sample_rate: float, steps: int) -> None:
    if not math.isfinite(noise_multiplier) or noise_multiplier <= 0:
        raise ConfigError("the noise multiplier must be positive and finite")
    if not 0 < sample_rate <= 1:
        raise ConfigError("the sample rate must be in (0, 1]")
    if steps < 0:
        raise ConfigError("the number of steps cannot be negative")


def _check_delta(delta: float) -> None:
    if not 0 < delta < 1:
        raise ConfigError("delta must be in (0, 1)")


def _append(
    history: list[tuple[float, float, int]],
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
) -> None:
    """Add ``steps`` steps to an Opacus history, merging as Opacus's ``step`` does."""
    if steps == 0:
        return
    if history and history[-1][0] == noise_multiplier and history[-1][1] == sample_rate:
        history[-1] = (noise_multiplier, sample_rate, history[-1][2] + steps)
    else:
        history.append((noise_multiplier, sample_rate, steps))


def _epsilon_of(accountant: IAccountant, delta: float) -> float:
    if not accountant.history:
        return 0.0
    return float(accountant.get_epsilon(delta=delta))


def epsilon(
    steps: int,
    noise_multiplier: float,
    sample_rate: float,
    delta: float,
    accountant: str = "prv",
) -> float:
    """Return ε(δ) after ``steps`` subsampled Gaussian steps.

    Parameters
    ----------
    steps
        Number of steps (DP-SGD steps, or rounds).
    noise_multiplier
        Noise standard deviation over the L2 sensitivity.
    sample_rate
        Poisson sampling probability of one record (or one client).
    delta
        Target δ.
    accountant
        ``"prv"`` or ``"rdp"``.
    """
    _check_step(noise_multiplier, sample_rate, steps)
    _check_delta(delta)
    acc = make_accountant(accountant)
    _append(acc.history, noise_multiplier, sample_rate, steps)
    return _epsilon_of(acc, delta)


def epsilon_of_steps(
    steps: Sequence[tuple[float, float, int]],
    delta: float,
    accountant: str = "prv",
) -> float:
    """Return ε(δ) after steps of different noise: ``(z, sample_rate, count)`` each.

    The rounds of distributed DP differ in noise when sites drop (the noise
    of the actual survivors is accounted), so the composition is over the
    sequence, not over one repeated step.
    """
    _check_delta(delta)
    acc = make_accountant(accountant)
    for noise_multiplier, sample_rate, count in steps:
        _check_step(noise_multiplier, sample_rate, count)
        _append(acc.history, noise_multiplier, sample_rate, count)
    return _epsilon_of(acc, delta)


def noise_multiplier_for(
    target_epsilon: float,
    *,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str = "prv",
    epsilon_tolerance: float = 0.01,
) -> float:
    """Return the smallest noise multiplier (to a tolerance) giving ``target_epsilon``.

    A binary search by Opacus's ``get_noise_multiplier``; :func:`epsilon` of the
    result is at most ``target_epsilon``.
    """
    if not target_epsilon > 0:
        raise ConfigError("the target epsilon must be positive")
    _check_delta(delta)
    _check_step(1.0, sample_rate, steps)
    if steps < 1:
        raise ConfigError("at least one step is needed")
    make_accountant(accountant)  # the registry's error for an unknown name
    try:
        z = get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant=accountant,
            epsilon_tolerance=epsilon_tolerance,
        )
    except ValueError as exc:
        raise ConfigError(f"no noise multiplier reaches ε={target_epsilon}") from exc
    return float(z)


def accountant_to_dict(accountant: IAccountant) -> dict[str, Any]:
    """Return ``{"mechanism": name, "history": [[z, q, steps], ...]}`` (JSON-able)."""
    return {
        "mechanism": accountant.mechanism(),
        "history": [[float(z), float(q), int(n)] for z, q, n in accountant.history],
    }


def accountant_from_dict(state: Mapping[str, Any]) -> IAccountant:
    """Rebuild an accountant from :func:`accountant_to_dict`'s output (validated)."""
    try:
        acc = make_accountant(str(state["mechanism"]))
        history = [(float(z), float(q), int(n)) for z, q, n in state["history"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError("malformed accountant state") from exc
    for z, q, n in history:
        if not (math.isfinite(z) and z > 0 and 0 < q <= 1 and n > 0):
            raise DataError("malformed accountant state")
    acc.history = history
    return acc


def accountant_to_bytes(accountant: IAccountant) -> bytes:
    """Serialise an accountant to UTF-8 JSON bytes (floats round-trip exactly)."""
    return json.dumps(accountant_to_dict(accountant), sort_keys=True).encode()


def accountant_from_bytes(data: bytes) -> IAccountant:
    """Inverse of :func:`accountant_to_bytes`."""
    try:
        state = json.loads(data.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError("malformed accountant state") from exc
    if not isinstance(state, dict):
        raise DataError("malformed accountant state")
    return accountant_from_dict(state)


class PrivacyBudget:
    """An (ε, δ) budget over an accountant; refuses the step that would exceed it.

    Parameters
    ----------
    target_epsilon
        The total ε allowed.
    delta
        The δ at which ε is reported.
    accountant
        An accountant name for a fresh accountant, or an accountant instance to
        share (e.g. the one inside an Opacus ``PrivacyEngine``, which steps it
        itself; then call :meth:`check` before a round and :meth:`close_round`
        after it).

    Attributes
    ----------
    round_epsilons
        ε(δ) after each completed round, oldest first.
    exhausted
        ``True`` once a step has been refused.
    """

    def __init__(
        self,
        target_epsilon: float,
        delta: float,
        accountant: str | IAccountant = "prv",
    ) -> None:
        if not target_epsilon > 0:
            raise ConfigError("the target epsilon must be positive")
        _check_delta(delta)
        self.target_epsilon = float(target_epsilon)
        self.delta = float(delta)
        self.accountant = (
            make_accountant(accountant) if isinstance(accountant, str) else accountant
        )
        self.round_epsilons: list[float] = []
        self.exhausted = False

    @property
    def spent(self) -> float:
        """ε(δ) spent so far."""
        return _epsilon_of(self.accountant, self.delta)

    @property
    def remaining(self) -> float:
        """ε still available (never negative)."""
        return max(0.0, self.target_epsilon - self.spent)

    def epsilon_after(
        self, noise_multiplier: float, sample_rate: float, steps: int = 1
    ) -> float:
        """ε(δ) that ``steps`` more steps would bring, without taking them."""
        _check_step(noise_multiplier, sample_rate, steps)
        trial = make_accountant(self.accountant.mechanism())
        trial.history = list(self.accountant.history)
        _append(trial.history, noise_multiplier, sample_rate, steps)
        return _epsilon_of(trial, self.delta)

    def check(
        self, noise_multiplier: float, sample_rate: float, steps: int = 1
    ) -> float:
        """Raise ``PrivacyBudgetExhausted`` if the next steps would exceed the budget.

        Returns the ε(δ) those steps would bring.
        """
        after = self.epsilon_after(noise_multiplier, sample_rate, steps)
        if after > self.target_epsilon:
            self.exhausted = True
            raise PrivacyBudgetExhausted(
                f"the next {steps} step(s) would spend ε={after:.4g} "
                f"> budget {self.target_epsilon:.4g} at δ={self.delta:g}",
                stage="accounting",
            )
        return after

    def step(
        self, noise_multiplier: float, sample_rate: float, steps: int = 1
    ) -> float:
        """Check, then record ``steps`` steps as one round; return the new ε(δ)."""
        self.check(noise_multiplier, sample_rate, steps)
        _append(self.accountant.history, noise_multiplier, sample_rate, steps)
        return self.close_round()

    def close_round(self) -> float:
        """Record the ε(δ) spent so far as the end of a round and return it."""
        spent = self.spent
        self.round_epsilons.append(spent)
        return spent

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot (budget, accountant history, per-round ε)."""
        return {
            "target_epsilon": self.target_epsilon,
            "delta": self.delta,
            "accountant": accountant_to_dict(self.accountant),
            "round_epsilons": list(self.round_epsilons),
            "exhausted": self.exhausted,
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> PrivacyBudget:
        """Inverse of :meth:`to_dict`."""
        try:
            budget = cls(
                float(state["target_epsilon"]),
                float(state["delta"]),
                accountant_from_dict(state["accountant"]),
            )
            budget.round_epsilons = [float(e) for e in state["round_epsilons"]]
            budget.exhausted = bool(state["exhausted"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError("malformed privacy-budget state") from exc
        return budget

    def to_bytes(self) -> bytes:
        """UTF-8 JSON of :meth:`to_dict` (e.g. a ``ConfigRecord`` value in state)."""
        return json.dumps(self.to_dict(), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> PrivacyBudget:
        """Inverse of :meth:`to_bytes`."""
        try:
            state = json.loads(data.decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError("malformed privacy-budget state") from exc
        if not isinstance(state, dict):
            raise DataError("malformed privacy-budget state")
        return cls.from_dict(state)
