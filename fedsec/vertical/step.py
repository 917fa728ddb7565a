"""The gradient step without a probabilistic truncation of a large value.

A mini-batch gradient ``G = X_B^T e`` is an additive share at ``3f``
fractional bits (features at ``f``, residuals at ``2f``) whose magnitude is
the batch size times the largest feature: ABY3's probabilistic truncation of
such a value fails (is off by about ``2^(64-m)``) with probability
``2^(l+1-64)`` for ``|G| < 2^l``, about ``2^-10`` at ``3f = 42``, and one
failure throws the model away. So the large value is truncated *exactly*:

1. reshare ``G`` and decompose it into bits (ABY3 A2B, 9 rounds);
2. rebuild ``g = floor(G / 2^(2f))`` at ``f`` bits from its bits ``2f .. 63``
   by bit injection with the exact integer weights ``2^(k-2f)`` (bit 63
   negative: two's complement), 2 rounds, no error beyond the floor;
3. ``eta g`` for the public step ``eta = lr / |B|``: a public fixed-point
   constant times a share, then one probabilistic truncation of a *small*
   value (``|eta g| <= lr max|x|``, a few units): failure probability
   ``2^(2f + 3 - 64)`` per coordinate, ``2^-33`` at ``f = 14``.
"""

from __future__ import annotations

import numpy as np

from fedsec.mpc.arithmetic import reshare, truncate_additive
from fedsec.mpc.boolean import a2b, bit_injection
from fedsec.mpc.ring import Ring
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.shares import Shared

_ONE = np.uint64(1)


def exact_floor(rt: Runtime, additive: Ring, bits: int) -> Shared:
    """``floor(x / 2^bits)`` of an additive 3-out-of-3 share ``x`` (1-D), exactly.

    Valid for any ``|x| < 2^63``. 11 rounds.
    """
    x = reshare(rt, np.asarray(additive, dtype=np.uint64))
    xb = a2b(rt, x)
    positions = np.arange(bits, 64, dtype=np.uint64)
    cols = Shared(
        (xb.a[:, None] >> positions[None, :]) & _ONE,
        (xb.b[:, None] >> positions[None, :]) & _ONE,
    )
    inj = bit_injection(rt, cols)
    # exact integer weights 2^(k - bits); the sign bit counts -2^(63 - bits)
    weights = np.array(
        [1 << (k - bits) for k in range(bits, 63)] + [2**64 - (1 << (63 - bits))],
        dtype=np.uint64,
    )
    with np.errstate(over="ignore"):
        return Shared(
            np.asarray(inj.a @ weights, np.uint64),
            np.asarray(inj.b @ weights, np.uint64),
        )


def scaled_step(rt: Runtime, gradient: Ring, step: float) -> Shared:
    """``step * G`` at ``f`` bits for ``G`` an additive share at ``3f`` bits."""
    f = rt.encoder.frac_bits
    g = exact_floor(rt, gradient, 2 * f)
    c = rt.encoder.encode(step)
    with np.errstate(over="ignore"):
        # x_i summed over the parties is x: c x_i is an additive share of c x
        return truncate_additive(rt, np.asarray(g.a * c, dtype=np.uint64), f)
