"""Bit decomposition, comparison, bit injection and selection against plaintext."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsec.mpc import arithmetic as ar
from fedsec.mpc import boolean as bo
from fedsec.mpc.shares import Shared

from .conftest import run, share

words = st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=16)


@settings(max_examples=25, deadline=None)
@given(words)
def test_a2b_gives_the_twos_complement_bits(values: list[int]) -> None:
    x = np.array(values, dtype=np.int64).view(np.uint64)
    out, _ = run(lambda rt, s: ar.reveal_xor(rt, bo.a2b(rt, s)), share(x))
    for o in out.outputs:
        np.testing.assert_array_equal(o, x)


@settings(max_examples=25, deadline=None)
@given(words)
def test_ltz_matches_sign(values: list[int]) -> None:
    x = np.array(values, dtype=np.int64)
    out, _ = run(lambda rt, s: ar.reveal(rt, bo.ltz(rt, s)), share(x.view(np.uint64)))
    np.testing.assert_array_equal(out.outputs[0], (x < 0).astype(np.uint64))


def test_comparison_of_two_shared_values(enc) -> None:
    a = np.array([1.0, -2.0, 3.5, 1e5, -1e5, 0.0])
    b = np.array([2.0, -3.0, 3.5, 1e5 + 1, -1e5 - 1, 1e-4])
    ins = list(zip(share(enc.encode(a)), share(enc.encode(b)), strict=True))
    out, _ = run(lambda rt, p: ar.reveal(rt, bo.ltz(rt, p[0] - p[1])), ins)
    np.testing.assert_array_equal(out.outputs[1], (a < b).astype(np.uint64))


def test_bit_injection_and_select() -> None:
    bits = np.array([0, 1, 1, 0, 1], dtype=np.uint64)
    # XOR-share the bits by hand: random r0, r1 and r2 = b ^ r0 ^ r1
    r0, r1 = np.array([7, 2, 9, 4, 1], np.uint64), np.array([3, 3, 8, 1, 6], np.uint64)
    r2 = bits ^ r0 ^ r1
    comps = (r0, r1, r2)
    bshares = [Shared(comps[i], comps[(i + 1) % 3]) for i in range(3)]
    one = share(np.full(5, 100, np.uint64))
    zero = share(np.full(5, 200, np.uint64))

    def prog(rt, p):
        b = bo.bit_injection(rt, Shared(p[0].a & np.uint64(1), p[0].b & np.uint64(1)))
        return ar.reveal(rt, b), ar.reveal(rt, bo.select(rt, b, p[1], p[2]))

    out, _ = run(prog, list(zip(bshares, one, zero, strict=True)))
    b, sel = out.outputs[0]
    np.testing.assert_array_equal(b, bits)
    np.testing.assert_array_equal(sel, np.where(bits == 1, 100, 200))


def test_a2b_round_count_is_constant_in_batch_size() -> None:
    small, _ = run(lambda rt, s: bo.a2b(rt, s), share(np.arange(2, dtype=np.uint64)))
    large, _ = run(lambda rt, s: bo.a2b(rt, s), share(np.arange(500, dtype=np.uint64)))
    assert small.stats[0].rounds == large.stats[0].rounds == 8
