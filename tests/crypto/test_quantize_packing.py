"""Quantisation error bounds, headroom, and bit-packing round trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fedsec.crypto.packing import pack, packed_size, padded_length, unpack, unpack_add
from fedsec.crypto.quantize import Quantizer
from fedsec.errors import ConfigError, CryptoError, DataError

floats = hnp.arrays(
    np.float32,
    st.integers(1, 64),
    elements=st.floats(-3, 3, width=32, allow_nan=False),
)


@settings(max_examples=60, deadline=None)
@given(
    x=floats, weight=st.integers(0, 8), bits=st.integers(8, 32), n=st.integers(1, 50)
)
def test_single_client_error_is_below_one_step(
    x: np.ndarray, weight: int, bits: int, n: int
) -> None:
    q = Quantizer(clip=1.0, bits=bits, max_weight=8, num_summands=n)
    got = q.dequantize_sum(q.quantize(x, weight))
    expected = weight * np.clip(x, -1, 1).astype(np.float64)
    assert np.all(np.abs(got - expected) <= 1 / q.scale + 1e-9)


@pytest.mark.parametrize("bits", [8, 16, 22, 32])
def test_headroom_for_n_extreme_summands(bits: int) -> None:
    n = 37
    q = Quantizer(clip=2.0, bits=bits, max_weight=5, num_summands=n)
    x = np.array([2.0, -2.0, 5.0, -7.0], dtype=np.float32)  # clipped to ±2
    total = np.zeros(4, dtype=np.uint32)
    for _ in range(n):
        total += q.quantize(x, 5)
    got = q.dequantize_sum(total & np.uint32(q.ring_mask))
    assert np.allclose(got, n * 5 * np.array([2, -2, 2, -2]), atol=n / q.scale)


def test_stochastic_rounding_is_unbiased() -> None:
    q = Quantizer(clip=1.0, bits=8, max_weight=1, num_summands=1)
    x = np.full(200_000, 0.3 / q.scale, dtype=np.float32)  # 0.3 of a step
    levels = q.quantize(x, 1)
    assert set(np.unique(levels).tolist()) <= {0, 1}
    assert abs(levels.mean() - 0.3) < 0.01


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_updates_are_refused(bad: float) -> None:
    q = Quantizer(clip=1.0, bits=16, max_weight=1, num_summands=2)
    with pytest.raises(DataError):
        q.quantize(np.array([0.1, bad], dtype=np.float32), 1)


def test_bad_parameters() -> None:
    with pytest.raises(ConfigError):
        Quantizer(clip=1.0, bits=8, max_weight=1, num_summands=1000)
    with pytest.raises(ConfigError):
        Quantizer(clip=0.0, bits=8, max_weight=1, num_summands=1)
    q = Quantizer(clip=1.0, bits=8, max_weight=1, num_summands=1)
    with pytest.raises(DataError):
        q.quantize(np.zeros(2, np.float32), 2)


@settings(max_examples=100, deadline=None)
@given(bits=st.integers(1, 32), count=st.integers(0, 300), data=st.data())
def test_pack_round_trip(bits: int, count: int, data: st.DataObject) -> None:
    values = data.draw(
        hnp.arrays(np.uint32, count, elements=st.integers(0, (1 << bits) - 1))
    )
    blob = pack(values, bits)
    assert len(blob) == packed_size(count, bits)
    assert len(blob) <= (count * bits + 7) // 8 + 124
    assert np.array_equal(unpack(blob, bits, count), values)
    acc = np.arange(padded_length(count), dtype=np.uint32)
    unpack_add(blob, bits, acc)
    expected = np.arange(padded_length(count), dtype=np.uint32)
    expected[:count] += values
    assert np.array_equal(acc, expected)


def test_packing_errors() -> None:
    with pytest.raises(CryptoError):
        pack(np.array([8], dtype=np.uint32), 3)
    blob = pack(np.arange(40, dtype=np.uint32), 7)
    with pytest.raises(CryptoError):
        unpack(blob[:-1], 7, 40)
    with pytest.raises(CryptoError):
        unpack(blob, 0, 40)
