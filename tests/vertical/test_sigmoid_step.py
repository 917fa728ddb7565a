"""The secure spline and the exact gradient step against plaintext."""

from __future__ import annotations

import numpy as np

from fedsec.mpc.arithmetic import reveal
from fedsec.mpc.local import run_local
from fedsec.mpc.ring import FixedPoint
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.shares import Shared, split, views
from fedsec.vertical.sigmoid import MAX_ERROR, secure_sigmoid, slope_steps, spline
from fedsec.vertical.step import exact_floor, scaled_step

ENC = FixedPoint(14)


def test_spline_error_against_the_logistic_function() -> None:
    z = np.linspace(-30, 30, 600_001)
    err = np.max(np.abs(spline(z, 14) - 1 / (1 + np.exp(-z))))
    assert 0.011 < err <= MAX_ERROR
    assert slope_steps(14).sum() == 0


def test_secure_sigmoid_equals_the_spline() -> None:
    z = np.concatenate([np.linspace(-9, 9, 301), [-1e4, 1e4, 0.0, 6.0, -6.0]])
    parts = views(split(ENC.encode(z)))

    def prog(rt: Runtime, x: Shared) -> np.ndarray:
        out = reveal(rt, secure_sigmoid(rt, x))
        assert out is not None
        return out

    run = run_local(prog, parts, ENC)
    got = ENC.decode(run.outputs[0], frac_bits=28)
    want = spline(ENC.decode(ENC.encode(z)), 14)
    assert np.max(np.abs(got - want)) < 2**-27
    assert run.stats[0].rounds == 11 + 1  # and the reveal


def test_garbage_input_saturates_to_zero_or_one() -> None:
    garbage = np.array([2**62 + 12345, -(2**62) - 999], dtype=np.int64).view(np.uint64)
    parts = views(split(garbage))

    def prog(rt: Runtime, x: Shared) -> np.ndarray:
        out = reveal(rt, secure_sigmoid(rt, x))
        assert out is not None
        return out

    got = ENC.decode(run_local(prog, parts, ENC).outputs[0], frac_bits=28)
    assert np.allclose(got, [spline(1e9, 14), 0.0])
    assert abs(got[0] - 1) < 2**-12


def test_exact_floor_is_exact_for_large_values() -> None:
    vals = np.array([2**60 + 12345, -(2**61) - 7, 5, -5, 0, 2**42 - 1], dtype=np.int64)
    comps = split(vals.view(np.uint64))

    def prog(rt: Runtime, _: None) -> np.ndarray:
        out = reveal(rt, exact_floor(rt, comps[rt.index], 28))
        assert out is not None
        return out

    got = run_local(prog, [None] * 3, ENC).outputs[0].view(np.int64)
    assert list(got) == [int(v) >> 28 for v in vals]


def test_scaled_step() -> None:
    g = np.array([3.25, -700.5, 0.0, 1e-3])
    comps = split(ENC.encode(g, frac_bits=42))

    def prog(rt: Runtime, _: None) -> np.ndarray:
        out = reveal(rt, scaled_step(rt, comps[rt.index], 0.5 / 32))
        assert out is not None
        return out

    got = ENC.decode(run_local(prog, [None] * 3, ENC).outputs[0])
    assert np.max(np.abs(got - g * 0.5 / 32)) <= 3 * 2**-14
