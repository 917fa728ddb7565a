"""Central DP: clip, sum, Gaussian noise of the right size from the crypto source."""

from __future__ import annotations

import numpy as np
import pytest

from fedsec.dp.central import central_aggregate
from fedsec.dp.clipping import clip_l2, clip_rows_l2
from fedsec.dp.source import CryptoRandom
from fedsec.errors import ConfigError, DataError


def updates(n: int, d: int) -> np.ndarray:
    u = CryptoRandom(bytes(32)).uniform(n * d).reshape(n, d) - 0.5
    u *= 0.01
    u[0] *= 1000.0  # norm far above the clip
    return u


def test_without_noise_it_is_the_mean_of_clipped_updates() -> None:
    u = updates(5, 50)
    out = central_aggregate(u, clip_norm=1.0, noise_multiplier=0.0)
    assert np.allclose(out, clip_rows_l2(u, 1.0).mean(axis=0))
    assert np.linalg.norm(clip_rows_l2(u, 1.0)[0]) == pytest.approx(1.0)


def test_noise_has_standard_deviation_z_c_over_n() -> None:
    n, d, c, z = 10, 20_000, 2.0, 1.3
    u = updates(n, d)
    out = central_aggregate(
        u, clip_norm=c, noise_multiplier=z, rng=CryptoRandom(bytes(range(32)))
    )
    err = out - clip_rows_l2(u, c).mean(axis=0)
    assert np.std(err) == pytest.approx(z * c / n, rel=0.03)
    assert abs(float(np.mean(err))) < 5 * z * c / n / np.sqrt(d)


def test_fixed_denominator() -> None:
    u = updates(4, 10)
    out = central_aggregate(u, clip_norm=1.0, noise_multiplier=0.0, denominator=8.0)
    assert np.allclose(out, clip_rows_l2(u, 1.0).sum(axis=0) / 8.0)


def test_fresh_noise_every_call() -> None:
    u = updates(3, 100)
    a = central_aggregate(u, clip_norm=1.0, noise_multiplier=1.0)
    b = central_aggregate(u, clip_norm=1.0, noise_multiplier=1.0)
    assert not np.allclose(a, b)


def test_clip_l2_leaves_short_vectors_alone() -> None:
    x = np.array([0.3, 0.4])
    assert np.array_equal(clip_l2(x, 1.0), x)
    assert np.linalg.norm(clip_l2(10 * x, 1.0)) == pytest.approx(1.0)
    assert np.array_equal(clip_rows_l2(np.zeros((2, 3)), 1.0), np.zeros((2, 3)))


@pytest.mark.parametrize(
    ("arr", "kw", "err"),
    [
        (np.zeros(5), {}, DataError),
        (np.full((2, 2), np.inf), {}, DataError),
        (np.zeros((2, 2)), {"noise_multiplier": -1.0}, ConfigError),
        (np.zeros((2, 2)), {"clip_norm": 0.0}, ConfigError),
        (np.zeros((2, 2)), {"denominator": 0.0}, ConfigError),
    ],
)
def test_bad_inputs_raise(arr: np.ndarray, kw: dict[str, float], err: type) -> None:
    args: dict[str, float] = {"clip_norm": 1.0, "noise_multiplier": 1.0}
    args.update(kw)
    with pytest.raises(err):
        central_aggregate(arr, **args)  # type: ignore[arg-type]
