"""Sample-level DP-SGD at one site through Opacus, with secret randomness.

DP-SGD (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016)
clips each example's gradient and adds Gaussian noise to the batch sum; Opacus
(Yousefpour et al., 2021) implements it with per-sample gradients, Poisson
sampling of batches and an accountant. This module wraps Opacus's
``PrivacyEngine`` for federated use:

* the Gaussian noise comes from a fresh, unseeded
  :class:`~fedsec.dp.source.CryptoRandom` (ChaCha20 keyed from ``os.urandom``)
  through :func:`fedsec.dp.samplers.gaussian`, drawn by
  :class:`SecretNoiseOptimizer`, a ``DPOptimizer`` whose ``add_noise`` differs
  from Opacus's only in its source; the Poisson batch sampler draws from a
  ``torch.Generator`` seeded with 64 bits of that same stream. No value a
  caller or a server can know (a data seed, a round number, torch's global
  seed, the loader's own generator) reaches either, so nobody can regenerate
  the noise and subtract it from a released model, which is what happened
  when the noise came from torch's global generator seeded with a public
  ``seed * 1000 + round`` (issue 10, attack 6; ``tests/attacks/test_dpsgd_noise.py``);
* the accountant's history is restored from the previous round (it lives in
  Flower's ``context.state`` as bytes, see :mod:`fedsec.dp.accounting`), so ε
  keeps growing across rounds instead of restarting at zero;
* :func:`unwrapped_state_dict` returns the original module's weights, without
  the ``_module.`` prefix Opacus's wrapper adds, which is what must be sent.

Opacus's own ``secure_mode`` is unavailable here (it needs ``torchcsprng``,
which cannot be installed with torch 2.13). What it would add beyond the
secret source is the floating-point hardening of Holohan & Braghin (2021):
the noise here is a float64 Box–Muller draw rounded to the parameters' dtype,
see ``docs/dp.md``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from opacus import PrivacyEngine
from opacus.data_loader import switch_generator
from opacus.optimizers import DPOptimizer
from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed
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
from fedsec.dp.samplers import gaussian
from fedsec.dp.source import CryptoRandom
from fedsec.errors import ConfigError

__all__ = [
    "PrivateTraining",
    "SecretNoiseOptimizer",
    "make_private",
    "unwrapped_state_dict",
]
_SAMPLER_SEED_BYTES = 8  # torch.Generator.manual_seed takes 64 bits


class SecretNoiseOptimizer(DPOptimizer):  # type: ignore[misc]  # opacus is untyped
    """Opacus's ``DPOptimizer`` with its Gaussian noise drawn from a CSPRNG.

    Clipping, accumulation, scaling and the accountant's step hook are
    Opacus's; only :meth:`add_noise` differs: the noise ``N(0, (zC)^2)`` of
    every parameter comes from ``noise_source`` (float64 Box–Muller of 53-bit
    uniforms, :func:`~fedsec.dp.samplers.gaussian`), rounded to the
    parameter's dtype, instead of ``torch.normal`` on torch's generator.

    Parameters
    ----------
    optimizer
        The plain torch optimiser to wrap.
    noise_source
        An *unseeded* :class:`~fedsec.dp.source.CryptoRandom`; a seeded one
        is refused, since its draws could be reproduced.
    **kwargs
        ``noise_multiplier``, ``max_grad_norm``, ``expected_batch_size``,
        ``loss_reduction``, as for ``DPOptimizer``.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        noise_source: CryptoRandom,
        **kwargs: Any,
    ) -> None:
        if noise_source.seeded:
            raise ConfigError("DP-SGD noise must come from an unseeded CryptoRandom")
        super().__init__(optimizer, **kwargs)
        self.noise_source = noise_source

    def add_noise(self) -> None:
        """Add secret Gaussian noise to every clipped sum; store it in ``p.grad``."""
        params: list[Any] = list(self.params)  # with opacus's summed_grad
        for p in params:
            _check_processed_flag(p.summed_grad)
        std = float(self.noise_multiplier) * float(self.max_grad_norm)
        sizes = [int(p.summed_grad.numel()) for p in params]
        flat = torch.from_numpy(gaussian(std, sum(sizes), self.noise_source))
        for p, noise in zip(params, torch.split(flat, sizes), strict=True):
            summed = p.summed_grad
            p.grad = (summed + noise.view_as(summed).to(summed)).view_as(p)
            _mark_as_processed(summed)


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
        The :class:`SecretNoiseOptimizer` (a ``DPOptimizer``) that clips and
        adds secret noise.
    data_loader
        The Poisson-sampling data loader with a secret generator (when
        ``poisson_sampling`` is set).
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
    """Wrap a model, optimiser and data loader for DP-SGD with secret randomness.

    The noise comes from a fresh :class:`~fedsec.dp.source.CryptoRandom`
    (:class:`SecretNoiseOptimizer`) and, with ``poisson_sampling``, the batches
    from a generator seeded from it: neither torch's global seed nor the
    loader's generator has any effect, so two calls with identical inputs
    train differently. Without ``poisson_sampling`` the loader is used as
    given (its order is the caller's).

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
        # Opacus warns that secure_mode is off; the source is replaced below.
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
    source = CryptoRandom()
    if poisson_sampling:
        dp_loader = switch_generator(
            data_loader=dp_loader, generator=_secret_generator(source)
        )
    return PrivateTraining(
        engine=engine,
        model=wrapped,
        optimizer=_with_secret_noise(dp_optimizer, source),
        data_loader=dp_loader,
        noise_multiplier=float(noise_multiplier),
        sample_rate=sample_rate,
        max_grad_norm=float(max_grad_norm),
    )


def _secret_generator(source: CryptoRandom) -> torch.Generator:
    """A torch generator for batch sampling, seeded with 64 secret bits."""
    seed = int.from_bytes(source.random_bytes(_SAMPLER_SEED_BYTES), "little")
    return torch.Generator().manual_seed(seed)


def _with_secret_noise(dp_optimizer: Any, source: CryptoRandom) -> SecretNoiseOptimizer:
    """Rebuild Opacus's optimiser as a :class:`SecretNoiseOptimizer`.

    ``PrivacyEngine`` picks its optimiser class itself (flat clipping, one
    process: exactly ``DPOptimizer``) and offers no hook for another noise
    source than a ``torch.Generator``. The same parameters and the
    accountant's step hook Opacus attached are moved onto the subclass; the
    first optimiser, never stepped, is dropped.
    """
    if type(dp_optimizer) is not DPOptimizer:
        raise ConfigError(
            f"Opacus chose {type(dp_optimizer).__name__}; only flat clipping in "
            "one process draws secret noise"
        )
    secret = SecretNoiseOptimizer(
        dp_optimizer.original_optimizer,
        noise_source=source,
        noise_multiplier=dp_optimizer.noise_multiplier,
        max_grad_norm=dp_optimizer.max_grad_norm,
        expected_batch_size=dp_optimizer.expected_batch_size,
        loss_reduction=dp_optimizer.loss_reduction,
    )
    secret.attach_step_hook(dp_optimizer.step_hook)
    return secret
