"""Sample-level DP-SGD at one site through Opacus.

DP-SGD (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016)
clips each example's gradient and adds Gaussian noise to the batch sum; Opacus
(Yousefpour et al., 2021) implements it with per-sample gradients, Poisson
sampling of batches and an accountant. This module wraps Opacus's
``PrivacyEngine`` for federated use:

* the accountant's history is restored from the previous round (it lives in
  Flower's ``context.state`` as bytes, see :mod:`fedsec.dp.accounting`), so ε
  keeps growing across rounds instead of restarting at zero;
* :func:`unwrapped_state_dict` returns the original module's weights, without
  the ``_module.`` prefix Opacus's wrapper adds, which is what must be sent.

Opacus's ``secure_mode`` is unavailable here (it needs ``torchcsprng``, which
cannot be installed with torch 2.13): the DP-SGD noise comes from torch's
Mersenne Twister and is therefore fit for experiments, not for a production
guarantee; see ``docs/dp.md``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from opacus import PrivacyEngine
from opacus.validators.errors import UnsupportedModuleError
from torch import nn
from torch.utils.data import DataLoader

from fedsec.dp.accounting import (
    ACCOUNTANTS,
    accountant_from_bytes,
    accountant_from_dict,
    accountant_to_bytes,
    noise_multiplier_for,
)
from fedsec.errors import ConfigError

__all__ = ["PrivateTraining", "make_private", "unwrapped_state_dict"]


@dataclass
class PrivateTraining:
    """The objects Opacus returns, plus the parameters that were used.

    Attributes
    ----------
    engine
        The ``PrivacyEngine``; its ``accountant`` steps on every optimiser step.
    model
        The wrapped module (a ``GradSampleModule``); train it as usual.
    optimizer
        The ``DPOptimizer`` that clips and noises.
    data_loader
        The Poisson-sampling data loader (when ``poisson_sampling`` is set).
    noise_multiplier
        The noise multiplier in use (given, or derived from a target ε).
    sample_rate
        ``1 / len(data_loader)``, the per-step sampling probability.
    max_grad_norm
        The per-sample clipping bound.
    """

    engine: Any
    model: nn.Module
    optimizer: Any
    data_loader: DataLoader[Any]
    noise_multiplier: float
    sample_rate: float
    max_grad_norm: float

    def epsilon(self, delta: float) -> float:
        """ε(δ) spent so far, all rounds included."""
        if not self.engine.accountant.history:
            return 0.0
        return float(self.engine.accountant.get_epsilon(delta=delta))

    def accountant_state(self) -> bytes:
        """The accountant's history as bytes, for ``context.state``."""
        return accountant_to_bytes(self.engine.accountant)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The original module's weights (see :func:`unwrapped_state_dict`)."""
        return unwrapped_state_dict(self.model)


def unwrapped_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Return the weights of the module inside any Opacus wrapper.

    Follows ``_module`` through ``GradSampleModule`` (and ``DPDDP``) wrappers,
    so the keys are those of the original model (``"fc.weight"``, not
    ``"_module.fc.weight"``). Tensors are detached copies.
    """
    inner: nn.Module = model
    while isinstance(nxt := getattr(inner, "_module", None), nn.Module):
        inner = nxt
    return {k: v.detach().clone() for k, v in inner.state_dict().items()}


def _restore(
    engine: Any, state: bytes | Mapping[str, Any] | None, accountant: str
) -> None:
    if state is None:
        return
    restored = (
        accountant_from_bytes(state)
        if isinstance(state, bytes | bytearray)
        else accountant_from_dict(state)
    )
    if restored.mechanism() != accountant:
        raise ConfigError(
            f"saved accountant is {restored.mechanism()!r}, requested {accountant!r}"
        )
    # In place: the optimiser hook Opacus attaches is bound to this object.
    engine.accountant.history = list(restored.history)


def make_private(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data_loader: DataLoader[Any],
    *,
    max_grad_norm: float,
    noise_multiplier: float | None = None,
    target_epsilon: float | None = None,
    delta: float | None = None,
    epochs: int | None = None,
    poisson_sampling: bool = True,
    accountant: str = "prv",
    accountant_state: bytes | Mapping[str, Any] | None = None,
) -> PrivateTraining:
    """Wrap a model, optimiser and data loader for DP-SGD.

    Parameters
    ----------
    model, optimizer, data_loader
        The plain torch objects; the optimiser must hold the model's parameters.
    max_grad_norm
        Per-sample gradient clipping bound.
    noise_multiplier
        Noise standard deviation over ``max_grad_norm``. Give exactly one of
        ``noise_multiplier`` and ``target_epsilon``.
    target_epsilon
        Derive the noise multiplier so that ``epochs`` epochs (counted from
        zero) spend this ε at ``delta``. In federated training pass the total
        number of local epochs over *all* rounds, and cache the resulting
        :attr:`PrivateTraining.noise_multiplier` for the later rounds.
    delta
        Target δ, required with ``target_epsilon``.
    epochs
        Planned number of epochs, required with ``target_epsilon``.
    poisson_sampling
        Poisson-sample the batches (needed for the accountant's guarantee).
    accountant
        ``"prv"`` or ``"rdp"``.
    accountant_state
        The :meth:`PrivateTraining.accountant_state` of the previous round;
        ε then accumulates over rounds.

    Returns
    -------
    PrivateTraining
        The wrapped objects and the parameters in use.
    """
    if accountant not in ACCOUNTANTS:
        known = ", ".join(sorted(ACCOUNTANTS))
        raise ConfigError(f"unknown accountant {accountant!r}; known: {known}")
    if not math.isfinite(max_grad_norm) or max_grad_norm <= 0:
        raise ConfigError("max_grad_norm must be positive")
    if len(data_loader) == 0:
        raise ConfigError("the data loader is empty")
    sample_rate = 1.0 / len(data_loader)
    if (noise_multiplier is None) == (target_epsilon is None):
        raise ConfigError("give exactly one of noise_multiplier and target_epsilon")
    if noise_multiplier is None:
        if target_epsilon is None or delta is None or epochs is None or epochs < 1:
            raise ConfigError("target_epsilon needs delta and a positive epochs")
        noise_multiplier = noise_multiplier_for(
            target_epsilon,
            delta=delta,
            sample_rate=sample_rate,
            steps=epochs * len(data_loader),
            accountant=accountant,
        )
    if not math.isfinite(noise_multiplier) or noise_multiplier <= 0:
        raise ConfigError("noise_multiplier must be positive")

    with warnings.catch_warnings():
        # Opacus warns that secure_mode is off; docs/dp.md explains why.
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        engine = PrivacyEngine(accountant=accountant, secure_mode=False)
    _restore(engine, accountant_state, accountant)
    try:
        wrapped, dp_optimizer, dp_loader = engine.make_private(
            module=model,
            optimizer=optimizer,
            data_loader=data_loader,
            noise_multiplier=noise_multiplier,
            max_grad_norm=max_grad_norm,
            poisson_sampling=poisson_sampling,
        )
    except UnsupportedModuleError as exc:
        raise ConfigError(f"model not supported by Opacus: {exc}") from exc
    return PrivateTraining(
        engine=engine,
        model=wrapped,
        optimizer=dp_optimizer,
        data_loader=dp_loader,
        noise_multiplier=float(noise_multiplier),
        sample_rate=sample_rate,
        max_grad_norm=float(max_grad_norm),
    )
