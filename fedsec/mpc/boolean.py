"""Boolean sharing, bit decomposition, comparison and bit injection.

ABY3 (Mohassel and Rindal, CCS 2018, sections 5.3 and 5.4):

* AND of XOR-replicated words is the multiplication of Araki et al. with
  ``&`` and ``^``: one round, 64 AND gates per word at once.
* *A2B*: the three additive components ``x_0, x_1, x_2`` of an arithmetic
  sharing are each known to two parties, so each is trivially a Boolean
  sharing; a carry-save adder (one round) reduces three summands to two and a
  Kogge-Stone parallel-prefix adder (log2(64) = 6 rounds plus one) adds them.
  Eight rounds, about 14 word-ANDs per value. We use it on scalars only.
* *Comparison* ``x < 0`` is the most significant bit of the decomposition,
  valid whenever ``|x| < 2^63`` (any value that did not wrap).
* *Bit injection* (B2A of one bit): ``b = b_0 ^ b_1 ^ b_2`` with each
  ``b_k`` known to two parties; ``u ^ v = u + v - 2uv`` applied twice gives an
  arithmetic sharing of ``b`` in two rounds.
"""

from __future__ import annotations

import numpy as np

from fedsec.mpc.arithmetic import mul
from fedsec.mpc.ring import Ring
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.shares import PARTIES, Shared, public_component

_ONE = np.uint64(1)


def and_local(x: Shared, y: Shared) -> Ring:
    """This party's XOR share of ``x & y`` before re-randomisation."""
    return np.asarray((x.a & y.a) ^ (x.a & y.b) ^ (x.b & y.a), dtype=np.uint64)


def reshare_xor(rt: Runtime, z: Ring) -> Shared:
    """XOR analogue of :func:`fedsec.mpc.arithmetic.reshare`. One round."""
    zi = z ^ rt.randomness.zero_share_xor(z.shape)
    got = rt.channel.exchange({rt.prev: zi}, [rt.next])
    return Shared(zi, got[rt.next])


def and_(rt: Runtime, x: Shared, y: Shared) -> Shared:
    """Bitwise AND of two Boolean sharings: one round."""
    return reshare_xor(rt, and_local(x, y))


def and_many(rt: Runtime, pairs: list[tuple[Shared, Shared]]) -> list[Shared]:
    """Several independent ANDs of 1-D sharings batched into one round."""
    sizes = [p[0].shape[0] for p in pairs]
    z = reshare_xor(rt, np.concatenate([and_local(x, y) for x, y in pairs]))
    out: list[Shared] = []
    pos = 0
    for n in sizes:
        out.append(z[pos : pos + n])
        pos += n
    return out


def or_(rt: Runtime, x: Shared, y: Shared) -> Shared:
    """Bitwise OR: ``x ^ y ^ (x & y)``. One round."""
    return x ^ y ^ and_(rt, x, y)


def a2b(rt: Runtime, x: Shared) -> Shared:
    """Bit decomposition of a 1-D arithmetic sharing into 64-bit XOR sharings.

    Eight rounds. The result holds, bit for bit, the two's-complement word.
    """
    comps = [
        public_component(rt.index, _component(rt, x, k), k) for k in range(PARTIES)
    ]
    a, b, c = comps
    # Carry-save adder: sum bits and the majority, shifted, as the carries.
    s = a ^ b ^ c
    carry = (and_(rt, a ^ c, b ^ c) ^ c).shift_left(1)
    # Kogge-Stone prefix adder on s + carry.
    p0 = s ^ carry
    g = and_(rt, s, carry)
    p = p0
    for k in (1, 2, 4, 8, 16, 32):
        if k < 32:
            pg, pp = and_many(rt, [(p, g.shift_left(k)), (p, p.shift_left(k))])
            g, p = g ^ pg, pp
        else:
            g = g ^ and_(rt, p, g.shift_left(k))
    return p0 ^ g.shift_left(1)


def _component(rt: Runtime, x: Shared, k: int) -> Ring:
    """The additive component ``x_k`` if this party holds it, else zeros."""
    if k == rt.index:
        return x.a
    if k == (rt.index + 1) % PARTIES:
        return x.b
    return np.zeros_like(x.a)


def msb(rt: Runtime, x: Shared) -> Shared:
    """XOR sharing of the sign bit (0 or 1 in the lowest bit of each word)."""
    return a2b(rt, x).shift_right(63)


def bit_injection(rt: Runtime, bits: Shared) -> Shared:
    """Arithmetic sharing of XOR-shared bits (each word 0 or 1). Two rounds."""
    b0, b1, b2 = (
        public_component(rt.index, _component(rt, bits, k) & _ONE, k)
        for k in range(PARTIES)
    )
    c = b0 + b1 - mul(rt, b0, b1).mul_public(2)
    return c + b2 - mul(rt, c, b2).mul_public(2)


def ltz(rt: Runtime, x: Shared) -> Shared:
    """Arithmetic sharing of ``[x < 0]`` for ``|x| < 2^63``. Ten rounds."""
    return bit_injection(rt, msb(rt, x))


def select(rt: Runtime, bit: Shared, if_one: Shared, if_zero: Shared) -> Shared:
    """``if_zero + bit * (if_one - if_zero)`` for an arithmetic 0/1 ``bit``. One round.

    No truncation: ``bit`` is an integer.
    """
    return if_zero + mul(rt, bit, if_one - if_zero)


def xor_public(rt: Runtime, x: Shared, c: Ring | int) -> Shared:
    """``x ^ c`` for a public word ``c`` (component 0 absorbs it; local)."""
    k = np.uint64(c) if isinstance(c, int) else c
    a = x.a ^ k if rt.index == 0 else x.a
    b = x.b ^ k if rt.index == PARTIES - 1 else x.b
    return Shared(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64))
