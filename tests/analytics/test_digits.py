"""Digits in Z_{2^k}: the ring sum of every site's digits decodes to the exact sum."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsec.analytics.digits import DigitLayout
from fedsec.errors import ConfigError, DataError


def _ring_sum(layout: DigitLayout, vectors: list[np.ndarray]) -> np.ndarray:
    total = np.zeros(layout.dim, dtype=np.uint64)
    for v in vectors:
        total = (total + layout.encode(v).astype(np.uint64)) % (1 << layout.bits)
    return total.astype(np.uint32)


@settings(max_examples=60, deadline=None)
@given(
    bits=st.integers(12, 32),
    sites=st.integers(1, 40),
    bounds=st.lists(st.integers(0, 2**61), min_size=1, max_size=6),
    seed=st.integers(0, 2**32 - 1),
)
def test_sum_is_exact_for_any_values_within_their_bounds(
    bits: int, sites: int, bounds: list[int], seed: int
) -> None:
    layout = DigitLayout.of(bounds, bits, sites)
    rng = np.random.default_rng(seed)  # test data
    vectors = [
        np.array(
            [int(rng.integers(-b, b, endpoint=True)) for b in bounds], dtype=np.int64
        )
        for _ in range(sites)
    ]
    expected = [sum(int(v[i]) for v in vectors) for i in range(len(bounds))]
    assert layout.decode(_ring_sum(layout, vectors)) == expected


def test_extreme_values_at_the_bound_and_every_site_at_it() -> None:
    bounds = [2**20, 2**40, 2**60]
    layout = DigitLayout.of(bounds, 20, 16)
    assert layout.digit_bits == 16
    for sign in (1, -1):
        vectors = [sign * np.array(bounds, dtype=np.int64)] * 16
        assert layout.decode(_ring_sum(layout, vectors)) == [
            sign * 16 * b for b in bounds
        ]


def test_digit_count_follows_bits_and_sites() -> None:
    assert DigitLayout.of([2**40], 32, 10).counts == (2,)  # 28-bit digits
    assert DigitLayout.of([2**40], 20, 10).counts == (3,)  # 16-bit digits
    assert DigitLayout.of([1000], 32, 2).dim == 1


def test_refusals() -> None:
    layout = DigitLayout.of([100, 100], 16, 4)
    with pytest.raises(DataError, match="exceeds its public bound"):
        layout.encode(np.array([0, 1 << (layout.digit_bits * layout.counts[1])]))
    with pytest.raises(DataError, match="expected 2"):
        layout.encode(np.array([1]))
    with pytest.raises(DataError, match="ring sum"):
        layout.decode(np.zeros(layout.dim + 1, dtype=np.uint32))
    with pytest.raises(ConfigError, match="raise secagg-bits"):
        DigitLayout.of([10], 8, 64)
