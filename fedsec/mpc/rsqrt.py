"""Reciprocal square root of shared fixed-point scalars: normalise, then Newton.

The position ``p`` of the leading one bit of ``x`` is found securely: bit
decomposition (ABY3 A2B), a suffix OR over the bits (six rounds of ANDs) and
the one-hot difference of neighbouring prefix bits. With ``e = p - f``,
``x = 2^e m`` and the mantissa ``m`` lies in ``[1, 2)``. One bit injection
(two rounds) turns the one-hot position and the bits of ``x`` into
arithmetic 0/1 shares; from them, locally (:class:`Normaliser`):

* ``m = sum_p [lead = p] sum_b x_b 2^(b - p + f)``, a bilinear form of the
  injected bits (the mantissa at ``f`` bits, rounded down);
* the initial guess ``y0 = alpha - beta m``, the minimax line for
  ``m^(-1/2)`` on ``[1, 2)`` (within 2.23 %), as the same form with the
  coefficients ``beta 2^(b - p + f)`` rounded (at most ``f / 2`` units in
  the last place more);
* ``r = 2^(-e/2)``, a public table of the one-hot position.

``m`` and ``y0`` are 3-out-of-3 products, reshared in one round. Two Newton
steps on the mantissa (:func:`newton_mantissa`), ``y <- (3 y - (m y) y^2) /
2``, each two truncations (``m y`` and ``y^2`` together, then the step),
square the relative error and multiply it by 1.5: 2.23 % becomes 7.4e-4 and
then 8.3e-7, below the resolution ``2^-16``. Every value they truncate stays
within ``[0, 5]`` in reals whatever ``x`` is, so a truncation fails (an
error of about ``2^(64 - 2f)``) with probability below ``2^-29`` per value
(:mod:`fedsec.mpc.arithmetic`); Newton on ``x`` itself would truncate
``x y``, which grows as ``x^(1/2)``. Finally ``x^(-1/2) = r y``, one
fixed-point product. Nothing is opened: every party sees only re-randomised
messages.

Rounds: 8 (A2B) + 6 (OR) + 2 (injection) + 1 (``m``, ``y0``) + 2 x 4
(Newton) + 2 (``r y``) = 27 for :func:`rsqrt` and :func:`clipped_rsqrt`;
the clip-and-sum has the bits already and batches its weight clamp into
these rounds (:mod:`fedsec.mpc.scales`). Vectors of scalars are batched, so
the round count does not grow with their number. The absolute error of the
result is a few ``2^-f``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fedsec.mpc.arithmetic import (
    add_public,
    dot_local,
    local_product,
    mul_fixed,
    reshare,
    truncate_additive,
)
from fedsec.mpc.boolean import a2b, and_, bit_injection
from fedsec.mpc.ring import Ring
from fedsec.mpc.runtime import Runtime
from fedsec.mpc.shares import Shared

MANTISSA_STEPS = 2
"""Newton steps on the mantissa after the linear guess (2.23 % -> 8.3e-7)."""
LINEAR_GUESS = (1.26411422, 0.2863736)
"""``(alpha, beta)``: ``alpha - beta m`` is within 2.23 % of ``m^(-1/2)`` on [1, 2]."""
_BITS = 63  # bits 0..62 of a non-negative word
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


def _columns(parts: list[Shared]) -> Shared:
    return Shared(
        np.concatenate([p.a for p in parts], axis=1),
        np.concatenate([p.b for p in parts], axis=1),
    )


def guess_columns(bits: Shared, o: Shared, f: int) -> Shared:
    """The XOR-shared bits a clipped normalisation injects, ``(n, 2 (63 - f) + 64)``.

    The leading one's position in ``f..62`` (one-hot, from the suffix OR
    ``o``), ``[u >= 1]`` (bit ``f`` of ``o``) and the bits 0..62 of ``u``;
    :meth:`Normaliser.clipped` reads this layout.
    """
    lead = o ^ o.shift_right(1)
    return _columns(
        [
            _bit_columns(lead, np.arange(f, _BITS, dtype=np.uint64)),
            _bit_columns(o, np.array([f], np.uint64)),
            _bit_columns(bits, np.arange(0, _BITS, dtype=np.uint64)),
        ]
    )


class Normaliser:
    """``x = 2^e m`` from injected bits: the mantissa, the guess and ``2^(-e/2)``.

    Parameters
    ----------
    onehot
        Arithmetic 0/1 shares ``[lead = p]`` for each of ``positions``, ``(n, k)``.
    bits
        Arithmetic 0/1 shares of bits 0..62 of ``x``, ``(n, 63)``.
    positions
        The bit positions ``onehot`` covers.
    f
        Fractional bits.
    below
        ``[x < 1]`` for the clipped variant (``v = max(x, 1)``: mantissa 1,
        guess 1 and scale 1 there), or ``None``.
    """

    def __init__(
        self,
        onehot: Shared,
        bits: Shared,
        positions: npt.ArrayLike,
        f: int,
        below: Shared | None = None,
    ) -> None:
        self.onehot = onehot
        self.bits = bits
        self.positions = np.asarray(positions, dtype=np.int64)
        self.f = f
        self.below = below

    @classmethod
    def clipped(cls, rt: Runtime, injected: Shared) -> Normaliser:
        """For ``v = max(u, 1)`` from the injected :func:`guess_columns`."""
        f = rt.encoder.frac_bits
        k = _BITS - f
        at_least_one = injected[:, k]
        return cls(
            injected[:, :k],
            injected[:, k + 1 :],
            np.arange(f, _BITS),
            f,
            below=add_public(rt, -at_least_one, 1),
        )

    def _form(self, coefficient: float) -> Ring:
        """``(k, 63)`` integers ``round(c 2^(b - p + f))`` for ``b <= p``, else 0."""
        b = np.arange(_BITS)[None, :]
        p = self.positions[:, None]
        exps = (b - p + self.f).astype(np.float64)
        table = np.rint(coefficient * 2.0**exps) * (b <= p)
        return table.astype(np.int64).view(np.uint64)

    def _bilinear(self, coefficient: float) -> Ring:
        """This party's additive share of ``sum_p onehot_p sum_b c 2^(b-p+f) x_b``."""
        t = self._form(coefficient).T
        weighted = Shared(self.bits.a @ t, self.bits.b @ t)
        return dot_local(self.onehot, weighted)

    def _plus_below(self, rt: Runtime, value: Ring) -> Ring:
        """Add this party's component of ``[x < 1] * 1.0`` (clipped variant)."""
        if self.below is None:
            return value
        return value + self.below.a * rt.encoder.encode(1.0)

    def local_terms(self, rt: Runtime) -> Ring:
        """This party's additive shares of ``[m, y0]`` (``2n`` words, ``f`` bits),
        to reshare in one round."""
        alpha, beta = LINEAR_GUESS
        m = self._plus_below(rt, self._bilinear(1.0))
        above = self.onehot.sum(axis=1)  # [x >= 1] (clipped) or [x > 0]
        y0 = above.a * rt.encoder.encode(alpha) - self._bilinear(beta)
        return np.concatenate([m, self._plus_below(rt, y0)])

    def scale(self, rt: Runtime) -> Shared:
        """``r = 2^(-e/2)`` at ``f`` bits (local): 1 for the clipped ``x < 1``."""
        exps = (self.positions - self.f).astype(np.float64)
        table = rt.encoder.encode(2.0 ** (-exps / 2))
        r = Shared(self.onehot.a @ table, self.onehot.b @ table)
        if self.below is not None:
            r = r + self.below.mul_public(rt.encoder.encode(1.0))
        return r


def newton_mantissa(
    rt: Runtime, m: Shared, y: Shared, steps: int = MANTISSA_STEPS
) -> Shared:
    """Refine ``y ~ m^(-1/2)`` for ``m`` in ``[1, 2)``: four rounds per step."""
    f = rt.encoder.frac_bits
    n = m.shape[0]
    three = np.uint64(3 << f)
    for _ in range(steps):
        pq = truncate_additive(
            rt, np.concatenate([local_product(m, y), local_product(y, y)]), f
        )
        step = y.a * three - local_product(pq[:n], pq[n:])  # (3 y - m y^3) at 2f
        y = truncate_additive(rt, step, f + 1)
    return y


def normalised_rsqrt(rt: Runtime, norm: Normaliser) -> Shared:
    """``x^(-1/2)`` from a :class:`Normaliser`: 1 + 8 + 2 rounds."""
    n = norm.onehot.shape[0]
    terms = reshare(rt, norm.local_terms(rt))
    y = newton_mantissa(rt, terms[:n], terms[n:])
    return mul_fixed(rt, norm.scale(rt), y)


def rsqrt(rt: Runtime, x: Shared) -> Shared:
    """``x^(-1/2)`` for 1-D shared fixed-point ``x`` with ``2^-f <= x < 2^(62-f)``."""
    bits = a2b(rt, x)
    o = suffix_or(rt, bits)
    lead = o ^ o.shift_right(1)
    positions = np.arange(0, _BITS, dtype=np.uint64)
    inj = bit_injection(
        rt, _columns([_bit_columns(lead, positions), _bit_columns(bits, positions)])
    )
    f = rt.encoder.frac_bits
    return normalised_rsqrt(
        rt, Normaliser(inj[:, :_BITS], inj[:, _BITS:], np.arange(_BITS), f)
    )


def clipped_rsqrt(rt: Runtime, u: Shared) -> Shared:
    """``min(1, u^(-1/2))`` for 1-D shared fixed-point ``u``; 0 where ``u < 0``.

    Computes ``v = max(u, 1)^(-1/2)``: ``[u >= 1]`` is read off the suffix OR
    at position ``f``. A negative ``u`` (a wrapped norm) has its leading one
    at bit 63, outside the table, so ``r`` and the result are exactly zero:
    such an input is dropped, not amplified.
    """
    bits = a2b(rt, u)
    f = rt.encoder.frac_bits
    inj = bit_injection(rt, guess_columns(bits, suffix_or(rt, bits), f))
    return normalised_rsqrt(rt, Normaliser.clipped(rt, inj))
