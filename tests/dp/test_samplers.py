"""The samplers match their distributions: moments, χ² on a histogram, tails."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from fedsec.dp import samplers
from fedsec.dp.source import CryptoRandom
from fedsec.errors import ConfigError
from tests.dp._stats import chi2_pvalue

N = 200_000
P_MIN = 1e-4  # the seeds are fixed, so a pass is deterministic; this is the bar


def rng(tag: int) -> CryptoRandom:
    return CryptoRandom(tag.to_bytes(32, "big"))


def discrete_gaussian_pmf(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    k = np.arange(-math.ceil(12 * sigma) - 2, math.ceil(12 * sigma) + 3)
    w = np.exp(-(k.astype(float) ** 2) / (2 * sigma**2))
    return k, w / w.sum()


@pytest.mark.parametrize("sigma", [0.6, 1.0, 2.5, 10.0, 40.0])
def test_discrete_gaussian_chi2_and_moments(sigma: float) -> None:
    x = samplers.discrete_gaussian(sigma, N, rng(1))
    support, pmf = discrete_gaussian_pmf(sigma)
    assert x.dtype == np.int64
    assert x.shape == (N,)
    assert chi2_pvalue(x, support, pmf) > P_MIN
    var = float(np.sum(pmf * support.astype(float) ** 2))
    assert abs(x.mean()) < 5 * math.sqrt(var / N)
    assert abs(x.var() / var - 1) < 0.02


def test_discrete_gaussian_is_symmetric_and_tails_are_thin() -> None:
    sigma = 5.0
    x = samplers.discrete_gaussian(sigma, N, rng(2))
    # P(|X| > 6 sigma) ~ 2e-9: none expected in 2e5 draws
    assert np.max(np.abs(x)) <= 6 * sigma
    assert abs(np.mean(x > 0) - np.mean(x < 0)) < 0.01


def test_discrete_gaussian_large_sigma_moments() -> None:
    sigma = 1e8
    x = samplers.discrete_gaussian(sigma, N, rng(3)).astype(float)
    assert abs(x.mean()) < 5 * sigma / math.sqrt(N)
    assert abs(x.var() / sigma**2 - 1) < 0.02
    assert stats.kstest(x / sigma, "norm").pvalue > P_MIN


@pytest.mark.parametrize("scale", [0.7, 3.0])
def test_discrete_laplace_chi2(scale: float) -> None:
    x = samplers.discrete_laplace(scale, N, rng(4))
    k = np.arange(-60 * math.ceil(scale), 60 * math.ceil(scale) + 1)
    pmf = np.exp(-np.abs(k) / scale)
    assert chi2_pvalue(x, k, pmf / pmf.sum()) > P_MIN


@pytest.mark.parametrize("lam", [0.4, 3.0, 40.0, 64.0, 500.0, 1e5])
def test_poisson_chi2(lam: float) -> None:
    # 64 and above take the PTRS rejection path, below the inversion table
    x = samplers.poisson(lam, N, rng(5))
    k = np.arange(0, int(lam + 12 * math.sqrt(lam) + 30))
    assert chi2_pvalue(x, k, stats.poisson.pmf(k, lam)) > P_MIN
    assert abs(x.mean() - lam) < 5 * math.sqrt(lam / N)
    assert abs(x.var() / lam - 1) < 0.02


@pytest.mark.parametrize("lam", [1e9, 2.0**53 + 0.5, 2.0**59])
def test_poisson_huge_means(lam: float) -> None:
    x = samplers.poisson(lam, N, rng(6))
    dev = (x - np.int64(math.floor(lam))).astype(float) - (lam - math.floor(lam))
    assert abs(dev.mean()) < 5 * math.sqrt(lam / N)
    assert abs(dev.var() / lam - 1) < 0.02
    assert stats.kstest(dev / math.sqrt(lam), "norm").pvalue > P_MIN


@pytest.mark.parametrize("variance", [0.5, 8.0, 300.0, 1e4])
def test_skellam_chi2(variance: float) -> None:
    x = samplers.skellam(variance, N, rng(7))
    mu = variance / 2
    half = int(12 * math.sqrt(variance) + 20)
    k = np.arange(-half, half + 1)
    assert chi2_pvalue(x, k, stats.skellam.pmf(k, mu, mu)) > P_MIN
    assert abs(x.mean()) < 5 * math.sqrt(variance / N)
    assert abs(x.var() / variance - 1) < 0.02


def test_skellam_large_variance_tails() -> None:
    variance = 1e12
    x = samplers.skellam(variance, N, rng(8)).astype(float)
    sd = math.sqrt(variance)
    assert np.max(np.abs(x)) < 6 * sd
    assert abs(x.var() / variance - 1) < 0.02


def test_gaussian_ks_and_moments() -> None:
    x = samplers.gaussian(3.0, N + 1, rng(9))
    assert x.shape == (N + 1,)
    assert stats.kstest(x / 3.0, "norm").pvalue > P_MIN
    assert abs(x.var() / 9.0 - 1) < 0.02


def test_zero_scale_gives_zeros() -> None:
    r = rng(10)
    assert not samplers.discrete_gaussian(0.0, 5, r).any()
    assert not samplers.skellam(0.0, 5, r).any()
    assert not samplers.gaussian(0.0, 5, r).any()
    assert samplers.discrete_gaussian(3.0, 0, r).shape == (0,)


@pytest.mark.parametrize(
    "call",
    [
        lambda r: samplers.discrete_gaussian(-1.0, 3, r),
        lambda r: samplers.discrete_gaussian(math.nan, 3, r),
        lambda r: samplers.poisson(math.inf, 3, r),
        lambda r: samplers.poisson(2.0**61, 3, r),
        lambda r: samplers.skellam(1.0, -1, r),
        lambda r: samplers.gaussian(-2.0, 3, r),
    ],
)
def test_bad_parameters_raise(call: object) -> None:
    with pytest.raises(ConfigError):
        call(rng(11))  # type: ignore[operator]


def test_chi2_helper_rejects_a_slightly_wrong_distribution() -> None:
    x = samplers.discrete_gaussian(2.5, N, rng(12))
    support, pmf = discrete_gaussian_pmf(2.6)
    assert chi2_pvalue(x, support, pmf) < 1e-6
