"""Noise samplers driven by a cryptographic source.

Every sampler takes its randomness from a :class:`~fedsec.dp.source.CryptoRandom`
and is vectorised with numpy: rejection samplers draw whole batches of
candidates and keep the accepted ones, so Python only loops over rejection
rounds (a handful), never over coordinates.

* :func:`discrete_laplace` and :func:`discrete_gaussian` follow Canonne, Kamath
  and Steinke, "The Discrete Gaussian for Differential Privacy" (NeurIPS 2020),
  Algorithms 2 and 3: a discrete Gaussian of scale ``sigma`` is a discrete
  Laplace of scale ``t = floor(sigma) + 1`` accepted with probability
  ``exp(-(|y| - sigma^2/t)^2 / (2 sigma^2))``. The geometric variates are drawn
  by inversion, ``floor(-t log U)``, and the Bernoulli tests compare a 53-bit
  uniform with a float64 probability, so the output matches the exact
  distribution up to float64 rounding (relative errors of order 2^-52) rather
  than bit-exactly as the paper's rational-arithmetic version does.
* :func:`poisson` uses inversion of a tabulated CDF for small means and
  Hörmann's transformed rejection with squeeze (PTRS, "The transformed
  rejection method for generating Poisson random variables", 1993) for large
  ones, with a cancellation-free log-pmf so that means up to 2^60 stay accurate.
* :func:`skellam` is the difference of two independent Poisson variates, as in
  Agarwal, Kairouz and Liu, "The Skellam Mechanism for Differentially Private
  Federated Learning" (NeurIPS 2021).
* :func:`gaussian` is the Box–Muller transform of 53-bit uniforms; it is used
  for central DP on a trusted server.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from fedsec.dp.source import CryptoRandom
from fedsec.errors import ConfigError

__all__ = [
    "discrete_gaussian",
    "discrete_laplace",
    "gaussian",
    "poisson",
    "skellam",
]

_PTRS_MIN_MEAN = 64.0
_MAX_MEAN = 2.0**60
_MAX_REJECTION_ROUNDS = 10_000
_SMALL_LOG_FACTORIALS = np.array(
    [math.lgamma(k + 1.0) for k in range(16)], dtype=np.float64
)


def _check(scale: float, size: int, name: str) -> None:
    if not math.isfinite(scale) or scale < 0:
        raise ConfigError(f"{name} must be finite and non-negative, got {scale}")
    if size < 0:
        raise ConfigError(f"sample size must be non-negative, got {size}")


def _rejection_fill(
    size: int,
    draw: Callable[[int], npt.NDArray[np.int64]],
) -> npt.NDArray[np.int64]:
    """Fill ``size`` samples from ``draw(batch)``, which returns the accepted ones."""
    out = np.empty(size, dtype=np.int64)
    filled = 0
    rate = 0.5
    for _ in range(_MAX_REJECTION_ROUNDS):
        if filled == size:
            return out
        want = size - filled
        batch = math.ceil(want / rate) + 32
        accepted = draw(batch)
        rate = max(0.05, accepted.size / batch)
        take = min(want, accepted.size)
        out[filled : filled + take] = accepted[:take]
        filled += take
    if filled == size:
        return out
    raise ConfigError("rejection sampler did not converge; the parameters are extreme")


def _geometric(scale: float, size: int, rng: CryptoRandom) -> npt.NDArray[np.float64]:
    """``P(G = k) = (1 - e^{-1/scale}) e^{-k/scale}`` for ``k >= 0``, by inversion."""
    return np.floor(-scale * np.log(rng.uniform_open(size)))


def discrete_laplace(
    scale: float, size: int, rng: CryptoRandom
) -> npt.NDArray[np.int64]:
    """Sample the discrete Laplace distribution ``P(y) ∝ exp(-|y| / scale)``.

    Parameters
    ----------
    scale
        The scale ``t > 0``; ``0`` returns zeros.
    size
        Number of samples.
    rng
        The cryptographic source.

    Returns
    -------
    numpy.ndarray
        ``int64`` samples, the difference of two geometric variates.
    """
    _check(scale, size, "the discrete Laplace scale")
    if scale == 0:
        return np.zeros(size, dtype=np.int64)
    diff = _geometric(scale, size, rng) - _geometric(scale, size, rng)
    return diff.astype(np.int64)


class _DiscreteGaussianBatch:
    def __init__(self, sigma: float, rng: CryptoRandom) -> None:
        self.sigma_sq = sigma * sigma
        self.t = math.floor(sigma) + 1.0
        self.rng = rng

    def __call__(self, batch: int) -> npt.NDArray[np.int64]:
        y = discrete_laplace(self.t, batch, self.rng)
        gap = np.abs(y).astype(np.float64) - self.sigma_sq / self.t
        accept = self.rng.uniform(batch) < np.exp(-(gap * gap) / (2.0 * self.sigma_sq))
        return y[accept]


def discrete_gaussian(
    sigma: float, size: int, rng: CryptoRandom
) -> npt.NDArray[np.int64]:
    """Sample the discrete Gaussian ``P(y) ∝ exp(-y^2 / (2 sigma^2))`` on the integers.

    Parameters
    ----------
    sigma
        The scale parameter (for ``sigma >= 1`` the variance is ``sigma^2`` to
        within ``sigma^2 * 1e-8``; see Canonne et al., Proposition 19).
    size
        Number of samples.
    rng
        The cryptographic source.

    Returns
    -------
    numpy.ndarray
        ``int64`` samples (Canonne, Kamath, Steinke 2020, Algorithm 3).
    """
    _check(sigma, size, "the discrete Gaussian sigma")
    if sigma == 0 or size == 0:
        return np.zeros(size, dtype=np.int64)
    return _rejection_fill(size, _DiscreteGaussianBatch(sigma, rng))


def _log_factorial(k: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``log(k!)`` for non-negative integer-valued floats (Stirling above 15)."""
    small = k < _SMALL_LOG_FACTORIALS.size
    kk = np.where(small, 16.0, k)
    inv = 1.0 / kk
    inv2 = inv * inv
    series = inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)))
    big = kk * np.log(kk) - kk + 0.5 * np.log(2.0 * math.pi * kk) + series
    idx = np.where(small, k, 0).astype(np.int64)
    return np.where(small, _SMALL_LOG_FACTORIALS[idx], big)


def _log_poisson_pmf(
    offset: npt.NDArray[np.float64], base: float, lam: float
) -> npt.NDArray[np.float64]:
    """``log P(K = base + offset)`` for ``K ~ Poisson(lam)``, accurate for huge ``lam``.

    ``base`` is an integer near ``lam`` (``floor(lam)`` or ``0``) so that the
    deviation ``k - lam = offset - (lam - base)`` is computed without rounding.
    For ``k >= 16`` Stirling's series gives
    ``log p = (k - lam) - k log1p((k - lam) / lam) - log(2 pi k) / 2 - series(k)``,
    whose terms are of the size of the deviation rather than of ``lam log lam``.
    """
    k = base + offset
    small = k < _SMALL_LOG_FACTORIALS.size
    direct = k * math.log(lam) - lam - _log_factorial(np.where(small, k, 0.0))
    kk = np.where(small, 16.0, k)
    inv = 1.0 / kk
    inv2 = inv * inv
    series = inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)))
    dev = np.where(small, kk - lam, offset - (lam - base))
    stirling = dev - kk * np.log1p(dev / lam) - 0.5 * np.log(2.0 * math.pi * kk)
    return np.where(small, direct, stirling - series)


def _poisson_inversion(
    lam: float, size: int, rng: CryptoRandom
) -> npt.NDArray[np.int64]:
    """Inversion of the tabulated CDF on ``[0, lam + 40 sqrt(lam) + 40]``."""
    hi = math.ceil(lam + 40.0 * math.sqrt(lam) + 40.0)
    support = np.arange(hi + 1, dtype=np.float64)
    logp = _log_poisson_pmf(support, 0.0, lam)
    cdf = np.cumsum(np.exp(logp - logp.max()))
    cdf /= cdf[-1]
    idx = np.searchsorted(cdf, rng.uniform(size), side="right")
    return np.minimum(idx, hi).astype(np.int64)


class _PtrsBatch:
    """Hörmann (1993) PTRS candidates; constants as in the paper, Table 1.

    Candidates are computed as offsets from ``base = floor(lam)`` so that the
    fractional part of ``lam`` survives for means beyond 2^52.
    """

    def __init__(self, lam: float, rng: CryptoRandom) -> None:
        self.lam = lam
        self.base = math.floor(lam)
        self.frac = lam - self.base
        self.rng = rng
        slam = math.sqrt(lam)
        self.b = 0.931 + 2.53 * slam
        self.a = -0.059 + 0.02483 * self.b
        self.log_inv_alpha = math.log(1.1239 + 1.1328 / (self.b - 3.4))
        self.v_r = 0.9277 - 3.6224 / (self.b - 2.0)

    def __call__(self, batch: int) -> npt.NDArray[np.int64]:
        u = self.rng.uniform(batch) - 0.5
        v = self.rng.uniform_open(batch)
        us = 0.5 - np.abs(u)
        us = np.maximum(us, 2.0**-60)  # u = -0.5 is rejected below anyway
        offset = np.floor((2.0 * self.a / us + self.b) * u + self.frac + 0.43)
        quick = (us >= 0.07) & (v <= self.v_r)
        plausible = (offset >= -self.base) & ~((us < 0.013) & (v > us))
        safe = np.maximum(offset, float(-self.base))
        lhs = np.log(v) + self.log_inv_alpha - np.log(self.a / (us * us) + self.b)
        logp = _log_poisson_pmf(safe, float(self.base), self.lam)
        accept = quick | (plausible & (lhs <= logp))
        return offset[accept].astype(np.int64) + np.int64(self.base)


def poisson(lam: float, size: int, rng: CryptoRandom) -> npt.NDArray[np.int64]:
    """Sample the Poisson distribution of mean ``lam`` (``0 <= lam <= 2^60``).

    Parameters
    ----------
    lam
        The mean.
    size
        Number of samples.
    rng
        The cryptographic source.

    Returns
    -------
    numpy.ndarray
        ``int64`` samples.
    """
    _check(lam, size, "the Poisson mean")
    if lam > _MAX_MEAN:
        raise ConfigError("the Poisson mean must be at most 2^60")
    if lam == 0 or size == 0:
        return np.zeros(size, dtype=np.int64)
    if lam < _PTRS_MIN_MEAN:
        return _poisson_inversion(lam, size, rng)
    return _rejection_fill(size, _PtrsBatch(lam, rng))


def skellam(variance: float, size: int, rng: CryptoRandom) -> npt.NDArray[np.int64]:
    """Sample the symmetric Skellam distribution of the given variance.

    ``Sk(mu, mu) = Poisson(mu) - Poisson(mu)`` with ``mu = variance / 2``
    (Agarwal, Kairouz, Liu 2021, Definition 3.1).
    """
    _check(variance, size, "the Skellam variance")
    mu = variance / 2.0
    return poisson(mu, size, rng) - poisson(mu, size, rng)


def gaussian(sigma: float, size: int, rng: CryptoRandom) -> npt.NDArray[np.float64]:
    """Sample ``N(0, sigma^2)`` by the Box–Muller transform of 53-bit uniforms."""
    _check(sigma, size, "the Gaussian sigma")
    pairs = (size + 1) // 2
    radius = np.sqrt(-2.0 * np.log(rng.uniform_open(pairs)))
    angle = 2.0 * math.pi * rng.uniform(pairs)
    out = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])[:size]
    return sigma * out
