"""Exact integer sums in the secure-aggregation ring Z_{2^k}, digit by digit.

Secure aggregation sums vectors modulo ``2^k`` (``k = secagg-bits`` <= 32),
too small for a sum of squares at 20 fractional bits. A site therefore
writes each of its integers ``v`` in base ``2^L`` with
``L = k - ceil(log2 n)`` for at most ``n`` summands:

    v = d_0 + d_1 · 2^L + ... + d_{K-1} · 2^{L(K-1)},

lower digits in ``[0, 2^L)`` and the top digit signed (``v >> L(K-1)``, so
that DP noise may make ``v`` negative), with ``K`` the fewest digits for
which ``|v| < 2^{LK-1}`` holds for every value the quantity can take. The
ring sums every digit position separately; ``n`` lower digits sum to less
than ``n · 2^L <= 2^k`` and ``n`` top digits to less than ``2^{k-1}`` in
magnitude, so no position wraps and the server recovers
``Σ v = Σ_j (Σ d_j) · 2^{Lj}`` exactly, in Python integers.

What the server learns besides each sum: the per-position digit sums, i.e.
for a quantity of ``K`` digits also ``K - 1`` carry counts, each in
``[0, n)``; like the sums, they are functions of the inputs of the same
(at least t) sites together, never of one site's input alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fedsec.errors import ConfigError, DataError

MIN_DIGIT_BITS = 4


@dataclass(frozen=True)
class DigitLayout:
    """Digits per quantity for ``summands`` inputs in Z_{2^bits}."""

    bits: int
    summands: int
    digit_bits: int
    counts: tuple[int, ...]

    @classmethod
    def of(cls, magnitudes: Sequence[int], bits: int, summands: int) -> DigitLayout:
        """Digits for quantities whose values satisfy ``|v| <= magnitudes[i]``."""
        if summands < 1:
            raise ConfigError("a secure sum has at least one summand")
        digit_bits = bits - math.ceil(math.log2(summands))
        if digit_bits < MIN_DIGIT_BITS:
            raise ConfigError(
                f"secagg-bits={bits} leaves {digit_bits} bits per digit for "
                f"{summands} sites; raise secagg-bits (32 is the most)"
            )
        counts = tuple(_digits(int(m), digit_bits) for m in magnitudes)
        return cls(bits, summands, digit_bits, counts)

    @property
    def dim(self) -> int:
        """Length of the ring vector."""
        return sum(self.counts)

    def encode(self, values: npt.NDArray[np.int64]) -> npt.NDArray[np.uint32]:
        """One site's integers as digits in Z_{2^bits} (a ring vector of ``dim``)."""
        if values.shape != (len(self.counts),):
            raise DataError(
                f"statistics vector has {values.size} values, "
                f"expected {len(self.counts)}"
            )
        counts = np.asarray(self.counts)
        limits = [1 << (self.digit_bits * k - 1) for k in self.counts]
        if any(abs(int(v)) >= m for v, m in zip(values.tolist(), limits, strict=True)):
            raise DataError(
                "a statistic exceeds its public bound (analytics-max-rows?)"
            )
        out = np.zeros(self.dim, dtype=np.int64)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        low_mask = np.int64((1 << self.digit_bits) - 1)
        for j in range(int(counts.max())):
            has = counts > j
            top = counts == j + 1
            shifted = values >> np.int64(self.digit_bits * j)
            digit = np.where(top, shifted, shifted & low_mask)
            out[starts[has] + j] = digit[has]
        ring_mask = np.int64((1 << self.bits) - 1)
        return (out & ring_mask).astype(np.uint32)

    def decode(self, ring_sum: npt.NDArray[np.unsignedinteger]) -> list[int]:
        """The exact integer sums from the ring sum of every site's digits."""
        if ring_sum.shape != (self.dim,):
            raise DataError(f"ring sum has {ring_sum.size} values, expected {self.dim}")
        half, modulus = 1 << (self.bits - 1), 1 << self.bits
        digits = [int(x) for x in ring_sum]
        out, pos = [], 0
        for count in self.counts:
            total = 0
            for j in range(count):
                d = digits[pos + j]
                if j == count - 1 and d >= half:
                    d -= modulus
                total += d << (self.digit_bits * j)
            out.append(total)
            pos += count
        return out


def _digits(magnitude: int, digit_bits: int) -> int:
    """Fewest ``K`` with ``magnitude < 2^{L K - 1}``."""
    need = magnitude.bit_length() + 1
    return max(1, math.ceil(need / digit_bits))
