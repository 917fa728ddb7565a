"""The ring Z_2^64 and its fixed-point encoding.

Values live in numpy ``uint64`` arrays and wrap around modulo 2^64 for free.
A real number ``r`` is encoded as the two's-complement integer
``round(r * 2^f)`` with ``f`` fractional bits, as in SecureML (Mohassel and
Zhang, S&P 2017) and ABY3 (Mohassel and Rindal, CCS 2018); a product of two
encodings carries ``2f`` fractional bits until it is truncated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fedsec.errors import ConfigError

RING_BITS = 64
Ring = npt.NDArray[np.uint64]
"""An array of ring elements (natural wrap-around modulo 2^64)."""

U64 = np.uint64


def to_signed(x: Ring) -> npt.NDArray[np.int64]:
    """View ring elements as two's-complement signed integers (no copy)."""
    return x.view(np.int64)


def from_signed(x: npt.NDArray[np.int64]) -> Ring:
    """View signed integers as ring elements (no copy)."""
    return x.view(np.uint64)


def ring_from_bytes(
    data: bytes | bytearray | memoryview, shape: tuple[int, ...]
) -> Ring:
    """Interpret little-endian bytes as ring elements of ``shape`` (no copy)."""
    return np.frombuffer(data, dtype="<u8").reshape(shape)


@dataclass(frozen=True)
class FixedPoint:
    """Fixed-point encoder with ``frac_bits`` fractional bits.

    Parameters
    ----------
    frac_bits
        Number of fractional bits ``f``; the resolution is ``2^-f``. Products
        of two encodings have ``2f`` fractional bits, so the magnitude of any
        product must stay below ``2^(63 - 2f)``.
    """

    frac_bits: int = 16

    def __post_init__(self) -> None:
        if not 0 <= self.frac_bits <= 28:
            raise ConfigError(f"frac_bits must be in [0, 28], got {self.frac_bits}")

    @property
    def scale(self) -> float:
        """The factor ``2^f``."""
        return float(2**self.frac_bits)

    def encode(self, x: npt.ArrayLike, frac_bits: int | None = None) -> Ring:
        """Encode reals as ring elements with ``frac_bits`` (default ``f``) bits.

        Raises
        ------
        ConfigError
            If a value is not finite or does not fit in a signed 64-bit integer.
        """
        f = self.frac_bits if frac_bits is None else frac_bits
        arr = np.asarray(x, dtype=np.float64) * float(2**f)
        if not np.all(np.isfinite(arr)) or (
            arr.size and np.max(np.abs(arr)) >= 2.0**62
        ):
            raise ConfigError("value out of the fixed-point range", stage="encode")
        return np.rint(arr).astype(np.int64).view(np.uint64)

    def decode(self, x: Ring, frac_bits: int | None = None) -> npt.NDArray[np.float64]:
        """Decode ring elements with ``frac_bits`` (default ``f``) bits to reals."""
        f = self.frac_bits if frac_bits is None else frac_bits
        return to_signed(np.asarray(x, dtype=np.uint64)).astype(np.float64) / float(
            2**f
        )
