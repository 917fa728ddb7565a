"""Arithmetic protocols on replicated shares: mul, dot, square, truncate, reveal.

Multiplication follows Araki et al. (CCS 2016, section 2.3): party ``i``
computes its part of the 3-out-of-3 sharing of the product from local cross
terms, ``z_i = x_i y_i + x_i y_{i+1} + x_{i+1} y_i``, re-randomises it with a
sharing of zero and sends one message to party ``i - 1``: one round, one
message of the output's size per party. A dot product sums the cross terms
before resharing, so its cost is that of its output, not of its inputs.

Truncation is ABY3's Pi_trunc1 (Mohassel and Rindal, CCS 2018, section 5.1.1),
applied directly to the 3-out-of-3 product: parties 0 and 1 turn it into a
2-out-of-2 sharing ``(A, B)`` between parties 0 and 2, each shifts its share
locally (SecureML's local truncation), and two words ``r, r'`` that parties 0
and 2 draw from their common key turn the result back into a replicated
sharing ``(r + r', tA - r, tB - r')``. Party 1 receives ``tA - r`` and
``tB - r'`` and party 0 receives ``z_1`` re-randomised by a zero sharing:
every received word is uniform. With ``|x| < 2^l`` the result is
``floor(x / 2^m)`` or that plus one (error at most one unit in the last place),
except with probability at most ``2^(l + 1 - 64)`` when it is wrong by about
``2^(64 - m)`` (``A`` lands within ``|x|`` of the wrap-around point).
Two rounds: party 1 -> 0 and 2 -> 1, then 0 -> 1; three messages in all.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedsec.mpc.ring import Ring, from_signed, to_signed
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.shares import PARTIES, Shared


def add_public(rt: Runtime, x: Shared, c: Ring | int) -> Shared:
    """``x + c`` for a public ring element ``c`` (party 0's component absorbs it)."""
    k = np.uint64(c) if isinstance(c, int) else c
    a = x.a + k if rt.index == 0 else x.a
    b = x.b + k if rt.index == PARTIES - 1 else x.b
    return Shared(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64))


def reshare(rt: Runtime, z: Ring) -> Shared:
    """Turn this party's additive share ``z_i`` into a replicated sharing.

    ``z_i`` is masked with a fresh zero sharing and sent to party ``i - 1``,
    which then holds ``(z_{i-1}, z_i)``. One round.
    """
    zi = z + rt.randomness.zero_share(z.shape)
    got = rt.channel.exchange({rt.prev: zi}, [rt.next])
    return Shared(zi, got[rt.next])


def local_product(x: Shared, y: Shared) -> Ring:
    """This party's additive share of ``x * y``, not yet re-randomised (local)."""
    return np.asarray(x.a * (y.a + y.b) + x.b * y.a, dtype=np.uint64)


def mul(rt: Runtime, x: Shared, y: Shared) -> Shared:
    """Elementwise product (no truncation): one round, one message per party."""
    return reshare(rt, local_product(x, y))


def square(rt: Runtime, x: Shared) -> Shared:
    """Elementwise square (no truncation)."""
    return reshare(rt, x.a * (x.a + x.b + x.b))


def dot_local(x: Shared, y: Shared) -> Ring:
    """This party's additive share of ``sum(x * y, axis=-1)`` (no messages).

    For matrices this is the batched inner product along the last axis.
    """
    t = np.einsum("...k,...k->...", x.a, y.a + y.b, dtype=np.uint64)
    u = np.einsum("...k,...k->...", x.b, y.a, dtype=np.uint64)
    return np.asarray(np.add(t, u, dtype=np.uint64), dtype=np.uint64)


def dot(rt: Runtime, x: Shared, y: Shared) -> Shared:
    """Inner product along the last axis (no truncation): one round."""
    return reshare(rt, dot_local(x, y))


def truncate_additive(rt: Runtime, z: Ring, bits: int) -> Shared:
    """Pi_trunc1 on an additive 3-out-of-3 sharing ``z``: returns ``[z / 2^bits]``."""
    with np.errstate(over="ignore"):
        return _truncate(rt, np.asarray(z, dtype=np.uint64), bits)


def _truncate(rt: Runtime, z: Ring, bits: int) -> Shared:
    zi = z + rt.randomness.zero_share(z.shape)
    m = np.int64(bits)
    if rt.index == 0:
        got = rt.channel.exchange({}, [1])
        ta = from_signed(to_signed(zi + got[1]) >> m)  # A = z_0 + z_1
        r, r2 = (
            rt.randomness.pair_random(2, z.shape),
            rt.randomness.pair_random(2, z.shape),
        )
        y1 = ta - r
        rt.channel.exchange({1: y1}, [])
        return Shared(r + r2, y1)
    if rt.index == 1:
        got = rt.channel.exchange({0: zi}, [2])
        y2 = got[2]
        y1 = rt.channel.exchange({}, [0])[0]
        return Shared(y1, y2)
    tb = from_signed(-(to_signed(-zi) >> m))  # B = z_2
    r, r2 = rt.randomness.pair_random(0, z.shape), rt.randomness.pair_random(0, z.shape)
    y2 = tb - r2
    rt.channel.exchange({1: y2}, [])
    return Shared(y2, r + r2)


def truncate(rt: Runtime, x: Shared, bits: int | None = None) -> Shared:
    """Divide a shared value by ``2^bits`` (default: the encoder's ``f``)."""
    m = rt.encoder.frac_bits if bits is None else bits
    return truncate_additive(rt, x.a, m)


def mul_fixed(rt: Runtime, x: Shared, y: Shared) -> Shared:
    """Fixed-point product: local cross terms then one truncation (two rounds)."""
    return truncate_additive(rt, local_product(x, y), rt.encoder.frac_bits)


def square_fixed(rt: Runtime, x: Shared) -> Shared:
    """Fixed-point square."""
    return truncate_additive(rt, x.a * (x.a + x.b + x.b), rt.encoder.frac_bits)


def dot_fixed(rt: Runtime, x: Shared, y: Shared) -> Shared:
    """Fixed-point inner product along the last axis: one truncation in total."""
    return truncate_additive(rt, dot_local(x, y), rt.encoder.frac_bits)


def reveal(rt: Runtime, x: Shared, to: Sequence[int] = (0, 1, 2)) -> Ring | None:
    """Open ``x`` to the parties in ``to``; the others get ``None``. One round.

    Party ``p`` misses ``x_{p+2}``, which party ``p + 2 = p - 1`` holds as its
    first component, so each party sends ``x_i`` to ``i + 1`` if that party is
    a receiver.
    """
    out = {rt.next: x.a} if rt.next in to else {}
    expect = [rt.prev] if rt.index in to else []
    got = rt.channel.exchange(out, expect)
    if rt.index not in to:
        return None
    with np.errstate(over="ignore"):  # 0-d shares are numpy scalars
        return np.asarray(x.a + x.b + got[rt.prev], dtype=np.uint64)


def reveal_xor(rt: Runtime, x: Shared) -> Ring:
    """Open a Boolean sharing to every party. One round."""
    got = rt.channel.exchange({rt.next: x.a}, [rt.prev])
    return np.asarray(x.a ^ x.b ^ got[rt.prev], dtype=np.uint64)
