"""Reciprocal square root by Newton iteration against plaintext."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsec.mpc import arithmetic as ar
from fedsec.mpc.ring import FixedPoint
from fedsec.mpc.rsqrt import clipped_rsqrt, rsqrt

from .conftest import run, share

ENC = FixedPoint(16)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(2.0**-10, 2.0**30), min_size=1, max_size=8))
def test_rsqrt_matches_plaintext(values: list[float]) -> None:
    x = np.array(values)
    out, _ = run(lambda rt, s: ar.reveal(rt, rsqrt(rt, s)), share(ENC.encode(x)))
    xq = ENC.decode(ENC.encode(x))
    expected = 1 / np.sqrt(xq)
    # absolute error a few units in the last place, relative 1e-3 for large outputs
    np.testing.assert_allclose(
        ENC.decode(out.outputs[0]), expected, rtol=2e-3, atol=8 * 2.0**-16
    )


def test_clipped_rsqrt_is_min_one() -> None:
    u = np.array([0.0, 1e-3, 0.5, 1.0, 1.01, 4.0, 1e4, 2.0**29])
    out, _ = run(
        lambda rt, s: ar.reveal(rt, clipped_rsqrt(rt, s)), share(ENC.encode(u))
    )
    got = ENC.decode(out.outputs[0])
    np.testing.assert_allclose(
        got, np.minimum(1.0, 1 / np.sqrt(np.maximum(u, 1e-300))), atol=8 * 2.0**-16
    )


def test_clipped_rsqrt_drops_a_negative_wrapped_norm() -> None:
    u = np.array([-1.0, -(2.0**40)])
    out, _ = run(
        lambda rt, s: ar.reveal(rt, clipped_rsqrt(rt, s)), share(ENC.encode(u))
    )
    np.testing.assert_array_equal(out.outputs[0], [0, 0])


def test_clipped_rsqrt_is_within_two_units_over_the_whole_range() -> None:
    """From below 1 to 2^45 (a crafted norm): the normalised Newton holds."""
    rng = np.random.default_rng(0)
    u = np.concatenate(
        [np.linspace(0.0, 4.0, 101), 2.0 ** rng.uniform(0, 45, 500), [2.0**45]]
    )
    out, _ = run(
        lambda rt, s: ar.reveal(rt, clipped_rsqrt(rt, s)), share(ENC.encode(u))
    )
    uq = ENC.decode(ENC.encode(u))
    expected = np.minimum(1.0, 1 / np.sqrt(np.maximum(uq, 1e-300)))
    error = np.abs(ENC.decode(out.outputs[0]) - expected) * 2.0**16
    assert error.max() <= 2.0
