"""Partitioners: complete, disjoint, deterministic, skewed when asked."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsec.data import dirichlet_partition, iid_partition
from fedsec.errors import ConfigError


def _assert_exact_cover(parts: list[np.ndarray], n: int) -> None:
    joined = np.concatenate(parts)
    assert len(joined) == n
    assert np.array_equal(np.sort(joined), np.arange(n))


@given(n=st.integers(10, 500), k=st.integers(1, 10), seed=st.integers(0, 2**31))
@settings(max_examples=50, deadline=None)
def test_iid_is_an_exact_balanced_cover(n: int, k: int, seed: int) -> None:
    parts = iid_partition(n, k, seed)
    _assert_exact_cover(parts, n)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1


def test_same_seed_same_split_other_seed_other_split() -> None:
    a, b, c = (
        iid_partition(100, 4, 1),
        iid_partition(100, 4, 1),
        iid_partition(100, 4, 2),
    )
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_dirichlet_cover_and_label_skew() -> None:
    labels = np.repeat(np.arange(4), 100)
    skewed = dirichlet_partition(labels, 5, alpha=0.1, seed=3)
    uniform = dirichlet_partition(labels, 5, alpha=1000.0, seed=3)
    _assert_exact_cover(skewed, len(labels))
    _assert_exact_cover(uniform, len(labels))

    def max_class_share(parts: list[np.ndarray]) -> float:
        return float(
            np.mean([np.bincount(labels[p], minlength=4).max() / len(p) for p in parts])
        )

    # small alpha: sites are dominated by one class; large alpha: about 1/4 each
    assert max_class_share(skewed) > 0.6
    assert max_class_share(uniform) < 0.35


def test_dirichlet_is_deterministic() -> None:
    labels = np.repeat(np.arange(3), 50)
    a = dirichlet_partition(labels, 4, 0.5, seed=9)
    b = dirichlet_partition(labels, 4, 0.5, seed=9)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(
    "call",
    [
        lambda: iid_partition(3, 5, 0),
        lambda: iid_partition(10, 0, 0),
        lambda: dirichlet_partition(np.zeros(10, dtype=np.int64), 2, 0.0, 0),
        lambda: dirichlet_partition(
            np.zeros(10, dtype=np.int64), 5, 0.5, 0, min_size=3
        ),
    ],
)
def test_impossible_splits_are_refused(call) -> None:
    with pytest.raises(ConfigError):
        call()
