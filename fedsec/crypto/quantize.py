"""Quantisation of weighted float updates into the ring Z_{2^k}.

Secure aggregation sums integers (Bonawitz et al., CCS 2017, Section 3;
Bell et al., CCS 2020, Section 5 on quantisation): a client clips its update
to ``[-c, c]``, multiplies it by its weight ``w`` (``0 <= w <= w_max``,
typically the number of examples) and rounds ``w * x * s`` stochastically to an
integer, where the scale ``s`` leaves headroom for ``n`` summands:
``n * max|z| <= 2^(k-1) - 1``. The ring sum of ``n`` such integers, read as a
signed k-bit number, is therefore the exact integer sum, and dividing by ``s``
gives an unbiased estimate of the weighted sum ``Σ w_i x_i``; the weights are
summed separately (exactly), so the weighted average is ``sum / Σ w_i``.

The coins of the stochastic rounding come from a freshly seeded AES-CTR
keystream (``os.urandom`` seed), never from numpy's generators.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fedsec.crypto.prg import thread_generator
from fedsec.errors import ConfigError, DataError

MAX_BITS = 32


@dataclass(frozen=True)
class Quantizer:
    """Maps weighted float vectors to Z_{2^bits} and sums back to floats.

    Parameters
    ----------
    clip
        Clipping range ``c``: each coordinate is clipped to ``[-c, c]``.
    bits
        Ring size ``k`` (``2 <= k <= 32``); elements travel in ``k`` bits.
    max_weight
        Public upper bound on a client's weight.
    num_summands
        Maximum number of inputs in one sum (headroom).
    """

    clip: float
    bits: int
    max_weight: float
    num_summands: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.clip) and self.clip > 0):
            raise ConfigError("clip must be a positive finite number")
        if not 2 <= self.bits <= MAX_BITS:
            raise ConfigError(f"bits must be in [2, {MAX_BITS}]")
        if not (math.isfinite(self.max_weight) and self.max_weight > 0):
            raise ConfigError("max_weight must be a positive finite number")
        if self.num_summands < 1 or self.level_bound < 1:
            raise ConfigError("too many summands for the ring: raise bits")

    @property
    def level_bound(self) -> int:
        """Largest |integer| one client may contribute: ``(2^(k-1)-1) // n``."""
        return ((1 << (self.bits - 1)) - 1) // self.num_summands

    @property
    def scale(self) -> float:
        """Integers per unit of weighted value: ``level_bound / (c * w_max)``."""
        return self.level_bound / (self.clip * self.max_weight)

    @property
    def ring_mask(self) -> int:
        """``2^k - 1``: reduces a uint32 modulo 2^k."""
        return (1 << self.bits) - 1

    def quantize(
        self, update: npt.NDArray[np.float32], weight: float
    ) -> npt.NDArray[np.uint32]:
        """Quantise ``weight * clip(update)`` to ring elements (uint32, mod 2^k).

        Raises
        ------
        DataError
            If the update holds NaN or infinite values or the weight is out of
            ``[0, max_weight]``.
        """
        if not np.all(np.isfinite(update)):
            raise DataError("update contains NaN or infinite values")
        if not (math.isfinite(weight) and 0 <= weight <= self.max_weight):
            raise DataError("weight outside [0, max_weight]")
        # float64 keeps every level exact (up to 2^31 levels); the coins are
        # compared as integers: round up iff coin < frac · 2^32. Temporaries
        # are reused: a fresh array costs page faults on every message.
        y = np.empty(update.shape, dtype=np.float64)
        np.clip(update, -self.clip, self.clip, out=y)
        y *= weight * self.scale
        floor = np.floor(y)
        y -= floor  # fractional part in [0, 1)
        y *= 2.0**32
        # |floor| <= level_bound < 2^31: int32 holds it; its bits are the
        # two's-complement ring element
        out = floor.astype(np.int32).view(np.uint32)
        threshold = floor.view(np.uint32)[: y.size]  # floor is spent: reuse it
        np.copyto(threshold, y, casting="unsafe")
        coins = thread_generator().uint32(os.urandom(32), y.size)
        out += coins < threshold
        np.bitwise_and(out, np.uint32(self.ring_mask), out=out)
        return out

    def dequantize_sum(
        self, ring_sum: npt.NDArray[np.uint32]
    ) -> npt.NDArray[np.float64]:
        """Read a ring sum as signed k-bit integers and divide by the scale."""
        # shift the k-bit element to the top of a 32-bit word, read it as int32
        # and shift back arithmetically: the sign bit of the ring is extended
        shift = np.uint32(32 - self.bits)
        ring = np.asarray(ring_sum, dtype=np.uint32)
        signed = np.left_shift(ring, shift).view(np.int32)
        signed >>= shift
        return np.divide(signed, self.scale, dtype=np.float64)
