"""The randomised Hadamard rotation is orthogonal, invertible and seed-determined."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import hadamard

from fedsec.dp.rotation import fwht, padded_dim, rotate, unrotate
from fedsec.errors import ConfigError

SEED = bytes(range(32))


@pytest.mark.parametrize(
    ("dim", "padded"), [(1, 1), (2, 2), (3, 4), (31, 32), (1025, 2048)]
)
def test_padded_dim(dim: int, padded: int) -> None:
    assert padded_dim(dim) == padded


@pytest.mark.parametrize("d", [1, 2, 8, 64])
def test_fwht_is_the_normalised_hadamard_matrix(d: int) -> None:
    assert np.allclose(fwht(np.eye(d)), hadamard(d) / np.sqrt(d))


@pytest.mark.parametrize("dim", [5, 16, 100])
def test_rotation_matrix_is_orthogonal(dim: int) -> None:
    d = padded_dim(dim)
    u = rotate(np.eye(d), SEED)  # row i is U e_i, so this is U^T
    assert np.allclose(u @ u.T, np.eye(d))
    assert not np.allclose(u, fwht(np.eye(d)))  # the signs do something


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=300,
    ),
    st.binary(min_size=32, max_size=32),
)
def test_rotation_is_invertible_and_preserves_norm(
    values: list[float], seed: bytes
) -> None:
    x = np.array(values)
    y = rotate(x, seed)
    assert y.shape == (padded_dim(x.size),)
    assert np.isclose(np.linalg.norm(y), np.linalg.norm(x), rtol=1e-9, atol=1e-9)
    assert np.allclose(unrotate(y, seed, x.size), x, rtol=1e-9, atol=1e-6)


def test_batch_rotation_matches_rowwise() -> None:
    x = np.arange(30.0).reshape(3, 10)
    batch = rotate(x, SEED)
    assert np.allclose(batch, np.stack([rotate(row, SEED) for row in x]))


def test_rotation_flattens_a_spike() -> None:
    d = 4096
    x = np.zeros(d)
    x[7] = 1.0
    y = rotate(x, SEED)
    assert np.allclose(np.abs(y), 1 / np.sqrt(d))


def test_wrong_seed_does_not_invert() -> None:
    x = np.arange(1.0, 17.0)
    y = rotate(x, SEED)
    assert not np.allclose(unrotate(y, bytes(32), 16), x)


def test_bad_lengths_raise() -> None:
    with pytest.raises(ConfigError):
        fwht(np.ones(6))
    with pytest.raises(ConfigError):
        unrotate(np.ones(8), SEED, 9)
    with pytest.raises(ConfigError):
        padded_dim(0)
