"""Reciprocal square root of shared fixed-point scalars by Newton iteration.

The initial guess comes from the position of the leading one bit, obtained
securely: bit decomposition (ABY3 A2B), a suffix OR over the bits (six
rounds of ANDs), the one-hot difference of neighbouring prefix bits and bit
injection of each candidate position. For ``x`` in ``[2^e, 2^(e+1))`` the
guess ``0.85 * 2^(-e/2)`` is within 19 % of ``x^(-1/2)``; Newton's step
``y <- y (3 - x y^2) / 2`` squares the relative error (times 1.5), so four
steps reach the fixed-point resolution. Nothing is opened: every party sees
only re-randomised messages. The product ``x y^2`` is computed as
``(x y) y`` so that no intermediate drops below the resolution.

Cost per scalar: 8 (A2B) + 6 (OR) + 2 (injection) + 4 x 6 (Newton) rounds;
vectors of scalars are batched, so the round count does not grow with the
number of scalars. The absolute error of the result is a few ``2^-f``.
"""

from __future__ import annotations

import numpy as np

from fedsec.mpc.arithmetic import add_public, mul, mul_fixed, truncate_additive
from fedsec.mpc.boolean import a2b, and_, bit_injection
from fedsec.mpc.ring import Ring
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.shares import Shared

NEWTON_STEPS = 4
_GUESS = 0.85  # ~ geometric mean of 1 and 1/sqrt(2)
_ONE = np.uint64(1)


def suffix_or(rt: Runtime, bits: Shared) -> Shared:
    """Bit ``k`` of the result is the OR of bits ``k..63`` of the input. Six rounds."""
    o = bits
    for k in (1, 2, 4, 8, 16, 32):
        shifted = o.shift_right(k)
        o = o ^ shifted ^ and_(rt, o, shifted)
    return o


def _bit_columns(x: Shared, positions: Ring) -> Shared:
    """Spread selected bits of XOR-shared words into a (n, len(positions)) matrix."""
    return Shared(
        (x.a[:, None] >> positions[None, :]) & _ONE,
        (x.b[:, None] >> positions[None, :]) & _ONE,
    )


def _guess_constants(rt: Runtime, positions: Ring) -> Ring:
    f = rt.encoder.frac_bits
    exps = positions.astype(np.float64) - f
    return rt.encoder.encode(_GUESS * 2.0 ** (-exps / 2))


def newton_rsqrt(
    rt: Runtime, x: Shared, y: Shared, steps: int = NEWTON_STEPS
) -> Shared:
    """Refine ``y ~ x^(-1/2)`` with ``steps`` Newton iterations (six rounds each)."""
    three = rt.encoder.encode(3.0)
    f = rt.encoder.frac_bits
    for _ in range(steps):
        t = mul_fixed(rt, mul_fixed(rt, x, y), y)
        three_minus_t = add_public(rt, -t, three)
        prod = y.a * (three_minus_t.a + three_minus_t.b) + y.b * three_minus_t.a
        y = truncate_additive(rt, prod, f + 1)
    return y


def rsqrt(rt: Runtime, x: Shared) -> Shared:
    """``x^(-1/2)`` for 1-D shared fixed-point ``x`` with ``2^-f <= x < 2^(62-f)``."""
    bits = a2b(rt, x)
    o = suffix_or(rt, bits)
    lead = o ^ o.shift_right(1)
    positions = np.arange(0, 63, dtype=np.uint64)
    onehot = bit_injection(rt, _bit_columns(lead, positions))
    c = _guess_constants(rt, positions)
    y0 = Shared(onehot.a @ c, onehot.b @ c)
    return newton_rsqrt(rt, x, y0)


def clipped_rsqrt(rt: Runtime, u: Shared, u_bits: Shared | None = None) -> Shared:
    """``min(1, u^(-1/2))`` for 1-D shared fixed-point ``u``; 0 where ``u < 0``.

    Computes ``v = max(u, 1)`` and ``v^(-1/2)``. ``u >= 1`` is read off the
    suffix OR at position ``f`` of the bit decomposition, which the caller may
    pass in if it already decomposed ``u`` (``u_bits``). A negative ``u`` (a
    wrapped norm) has its leading one at bit 63, outside the guess table, so
    the guess and every Newton iterate are exactly zero: such an input is
    dropped, not amplified.
    """
    return _clipped_rsqrt(rt, a2b(rt, u) if u_bits is None else u_bits, u)


def clipped_rsqrt_of_bits(rt: Runtime, u_bits: Shared) -> Shared:
    """:func:`clipped_rsqrt` of a ``u >= 0`` given only by its XOR-shared bits.

    The arithmetic ``u`` is rebuilt from bits 0..62 in the same bit-injection
    round that the initial guess needs, so an exact truncation (shifting the
    bits of a bit decomposition) costs no extra round.
    """
    return _clipped_rsqrt(rt, u_bits, None)


def _clipped_rsqrt(rt: Runtime, bits: Shared, u: Shared | None) -> Shared:
    f = rt.encoder.frac_bits
    o = suffix_or(rt, bits)
    lead = o ^ o.shift_right(1)
    positions = np.arange(f, 63, dtype=np.uint64)
    parts = [_bit_columns(lead, positions), _bit_columns(o, np.array([f], np.uint64))]
    every = np.arange(0, 63, dtype=np.uint64)
    if u is None:
        parts.append(_bit_columns(bits, every))
    inj = bit_injection(
        rt,
        Shared(
            np.concatenate([p.a for p in parts], axis=1),
            np.concatenate([p.b for p in parts], axis=1),
        ),
    )
    k = len(positions)
    onehot = inj[:, :k]
    at_least_one = inj[:, k]
    if u is None:
        powers = _ONE << every
        u_cols = inj[:, k + 1 :]
        u = Shared(u_cols.a @ powers, u_cols.b @ powers)
    c = _guess_constants(rt, positions)
    below = add_public(rt, -at_least_one, 1)  # [u < 1]
    y0 = Shared(onehot.a @ c, onehot.b @ c) + below.mul_public(c[0])
    one = rt.encoder.encode(1.0)
    one_minus_u = add_public(rt, -u, one)
    v = u + mul(rt, below, one_minus_u)
    return newton_rsqrt(rt, v, y0)
