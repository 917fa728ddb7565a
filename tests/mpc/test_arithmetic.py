"""Arithmetic protocols against plaintext, within fixed-point tolerance."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fedsec.mpc import arithmetic as ar
from fedsec.mpc.ring import FixedPoint
from fedsec.mpc.shares import Shared, split, views

from .conftest import run, share

ENC = FixedPoint(16)
ULP = 2.0**-16
reals = arrays(np.float64, st.integers(1, 12), elements=st.floats(-1000, 1000))


def _pairs(x: np.ndarray, y: np.ndarray) -> list[tuple[Shared, Shared]]:
    return list(zip(share(ENC.encode(x)), share(ENC.encode(y)), strict=True))


def test_share_and_reveal_roundtrip(enc: FixedPoint) -> None:
    x = np.array([0.0, -1.5, 3.25, 1e6])
    out, _ = run(lambda rt, s: ar.reveal(rt, s), share(enc.encode(x)))
    for o in out.outputs:
        np.testing.assert_array_equal(enc.decode(o), x)


def test_reveal_to_one_party_only(enc: FixedPoint) -> None:
    x = np.array([2.0, -7.0])
    out, _ = run(lambda rt, s: ar.reveal(rt, s, to=(1,)), share(enc.encode(x)))
    assert out.outputs[0] is None
    assert out.outputs[2] is None
    np.testing.assert_array_equal(enc.decode(out.outputs[1]), x)


def test_components_of_a_sharing_look_random() -> None:
    x0, x1, x2 = split(np.zeros(4096, dtype=np.uint64))
    assert np.all((x0 + x1 + x2) == 0)
    # half of the bits are set, as for uniform words
    assert abs(np.unpackbits(x0.view(np.uint8)).mean() - 0.5) < 0.01


@settings(max_examples=25, deadline=None)
@given(reals, st.floats(-100, 100))
def test_add_sub_and_public_ops(x: np.ndarray, c: float) -> None:
    y = x[::-1].copy()
    cc = ENC.encode(c)

    def prog(rt, p):
        s, t = p
        return [
            ar.reveal(rt, s + t),
            ar.reveal(rt, s - t),
            ar.reveal(rt, ar.add_public(rt, s, cc)),
            ar.reveal(rt, s.mul_public(3)),
        ]

    out, _ = run(prog, _pairs(x, y))
    add, sub, addc, mul3 = (ENC.decode(v) for v in out.outputs[0])
    xq, yq = ENC.decode(ENC.encode(x)), ENC.decode(ENC.encode(y))
    np.testing.assert_array_equal(add, xq + yq)
    np.testing.assert_array_equal(sub, xq - yq)
    np.testing.assert_allclose(addc, xq + ENC.decode(cc), atol=1e-9)
    np.testing.assert_array_equal(mul3, 3 * xq)


@settings(max_examples=25, deadline=None)
@given(reals)
def test_mul_fixed_matches_plaintext(x: np.ndarray) -> None:
    y = np.flip(x) / 7.0 + 0.5
    out, _ = run(lambda rt, p: ar.reveal(rt, ar.mul_fixed(rt, *p)), _pairs(x, y))
    xq, yq = ENC.decode(ENC.encode(x)), ENC.decode(ENC.encode(y))
    # truncation error is at most one unit in the last place
    np.testing.assert_allclose(ENC.decode(out.outputs[0]), xq * yq, atol=1.01 * ULP)


@settings(max_examples=25, deadline=None)
@given(reals)
def test_dot_and_square_match_plaintext(x: np.ndarray) -> None:
    y = np.cos(x)
    xq, yq = ENC.decode(ENC.encode(x)), ENC.decode(ENC.encode(y))

    def prog(rt, p):
        s, t = p
        return (
            ar.reveal(rt, ar.dot_fixed(rt, s, t)),
            ar.reveal(rt, ar.square_fixed(rt, s)),
            ar.reveal(rt, ar.dot(rt, s, t)),
        )

    out, _ = run(prog, _pairs(x, y))
    dot_f, sq_f, dot_2f = out.outputs[1]
    assert ENC.decode(dot_f) == pytest.approx(xq @ yq, abs=1.01 * ULP)
    np.testing.assert_allclose(ENC.decode(sq_f), xq * xq, atol=1.01 * ULP)
    # without truncation the product is exact at 2f fractional bits
    assert ENC.decode(dot_2f, frac_bits=32) == pytest.approx(xq @ yq, abs=1e-9)


def test_integer_mul_is_exact() -> None:
    x = np.array([3, -4, 2**20, 0], dtype=np.int64).view(np.uint64)
    y = np.array([-5, 6, 2**20, 9], dtype=np.int64).view(np.uint64)
    out, _ = run(
        lambda rt, p: ar.reveal(rt, ar.mul(rt, *p)),
        list(zip(share(x), share(y), strict=True)),
    )
    np.testing.assert_array_equal(out.outputs[0].view(np.int64), [-15, -24, 2**40, 0])


def test_batched_dot_over_rows() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 40)), rng.normal(size=(5, 40))
    out, _ = run(lambda rt, p: ar.reveal(rt, ar.dot_fixed(rt, *p)), _pairs(a, b))
    aq, bq = ENC.decode(ENC.encode(a)), ENC.decode(ENC.encode(b))
    np.testing.assert_allclose(
        ENC.decode(out.outputs[2]), (aq * bq).sum(1), atol=1.01 * ULP
    )


def test_truncation_error_is_one_ulp_on_many_values() -> None:
    x = np.linspace(-(2**20), 2**20, 5001).astype(np.int64).view(np.uint64)
    out, _ = run(lambda rt, s: ar.reveal(rt, ar.truncate(rt, s, 8)), share(x))
    got = out.outputs[0].view(np.int64)
    exact = x.view(np.int64) >> 8
    assert np.all((got - exact >= 0) & (got - exact <= 1))


def test_mul_is_one_message_per_party() -> None:
    x = np.ones(10, dtype=np.uint64)
    out, _ = run(
        lambda rt, p: ar.mul(rt, *p), list(zip(share(x), share(x), strict=True))
    )
    for s in out.stats:
        assert (s.messages_sent, s.rounds, s.bytes_sent) == (1, 1, 80)
    assert views((x, x, x))[0].shape == (10,)
