"""Clipping scales and clamped weights of all clients, in one pass of rounds.

The clip-and-sum program needs, per client ``j``, ``scale_j = min(1,
u_j^(-1/2))`` (:mod:`fedsec.mpc.rsqrt`) and ``w_j`` clamped to ``[0,
W_max]``, then ``a_j = w_j scale_j``. Both start from one bit decomposition
and are independent, so their rounds are batched: the clamp's Boolean work
rides in the suffix OR of the scale, its bit injection in the scale's, and
its one multiplication in the round that forms the scale's guess. The clamp
costs no round of its own (it cost four when run after the scale).

The clamp: with ``neg = [w < 0]`` and ``over = [W_max - w < 0]`` (the sign
bits of the decomposition), the weight is ``0`` if ``neg``, ``W_max`` if
``over`` and not ``neg``, else ``w``. Both bits are set for a ``w`` just above
``-2^63`` (``W_max - w`` wraps), so ``over`` is first made exclusive,
``over' = over AND NOT neg``: the suffix OR of the word with ``NOT over`` at
bit 1 and ``neg`` at bit 2 has ``NOT over OR neg = NOT over'`` at bit 1.
Then ``w' = (1 - neg - over') w + over' W_max``: one product.
"""

from __future__ import annotations

import numpy as np

from fedsec.mpc.arithmetic import add_public, local_product, mul, mul_fixed, reshare
from fedsec.mpc.boolean import bit_injection, xor_public
from fedsec.mpc.rsqrt import Normaliser, guess_columns, newton_mantissa, suffix_or
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.shares import Shared

_ONE = np.uint64(1)


def scales_and_weights(
    rt: Runtime,
    u_bits: Shared,
    w: Shared,
    w_bits: Shared,
    cap_bits: Shared,
    max_weight: int,
) -> tuple[Shared, Shared]:
    """The clamped weights and ``a = weight * scale`` (at ``f`` bits), per client.

    Parameters
    ----------
    u_bits
        XOR-shared bits of ``u = ||x||^2 / C^2 >= 0`` at ``f`` fractional bits.
    w
        Arithmetic shares of the claimed weights.
    w_bits, cap_bits
        XOR-shared bits of ``w`` and of ``W_max - w``.
    max_weight
        ``W_max``.

    Rounds: 6 (suffix OR) + 2 (injection) + 1 (mantissa, guess, weight) +
    8 (Newton) + 2 (``scale = r y``) + 1 (``a = weight * scale``).
    """
    n = u_bits.shape[0]
    f = rt.encoder.frac_bits
    neg = w_bits.shift_right(63)
    not_over = xor_public(rt, cap_bits.shift_right(63), 1)
    flags = not_over.shift_left(1) ^ neg.shift_left(2)
    o = suffix_or(rt, _rows(u_bits, flags))
    over_only = xor_public(rt, o[n:].shift_right(1).and_public(1), 1)
    cols = guess_columns(u_bits, o[:n], f)
    inj = bit_injection(
        rt,
        Shared(
            np.column_stack([cols.a, neg.a, over_only.a]),
            np.column_stack([cols.b, neg.b, over_only.b]),
        ),
    )
    k = cols.shape[1]
    norm = Normaliser.clipped(rt, inj[:, :k])
    neg_a, over_a = inj[:, k], inj[:, k + 1]
    keep = add_public(rt, -(neg_a + over_a), 1)
    terms = reshare(rt, np.concatenate([norm.local_terms(rt), local_product(keep, w)]))
    weight = terms[2 * n :] + over_a.mul_public(max_weight)
    y = newton_mantissa(rt, terms[:n], terms[n : 2 * n])
    # scale = r y is below 1.3: its truncation fails with probability < 2^-29;
    # the weight then multiplies it exactly (an integer)
    scale = mul_fixed(rt, norm.scale(rt), y)
    return weight, mul(rt, weight, scale)


def _rows(x: Shared, y: Shared) -> Shared:
    return Shared(np.concatenate([x.a, y.a]), np.concatenate([x.b, y.b]))
