"""Cryptographic randomness for differential-privacy noise.

Every random draw in :mod:`fedsec.dp` comes from a :class:`CryptoRandom`: a
ChaCha20 keystream (RFC 8439, via ``cryptography``) keyed with 32 bytes from
``os.urandom``. Uniforms, bits and signs are obtained from that keystream with
vectorised numpy arithmetic; neither numpy's generators nor Python's ``random``
module are ever used, because their output is predictable from a few samples
and a predictable noise draw can be subtracted from a released value, which
voids the privacy guarantee.

A seeded instance (an explicit 32-byte seed) gives reproducible draws for
tests and for *public* randomness shared by all parties, such as the random
rotation of :mod:`fedsec.dp.rotation`. Noise must always come from an
unseeded instance.
"""

from __future__ import annotations

import os

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from fedsec.errors import ConfigError

SEED_BYTES = 32
_NONCE = bytes(16)  # fixed: every seed keys exactly one stream
_TWO_POW_MINUS_53 = 2.0**-53

__all__ = ["SEED_BYTES", "CryptoRandom"]


class CryptoRandom:
    """A stream of cryptographically strong random numbers.

    Parameters
    ----------
    seed
        32 bytes keying the ChaCha20 stream. ``None`` (the default) draws a
        fresh key from ``os.urandom``; pass a seed only for reproducible tests
        or for public randomness that all parties must share.

    Notes
    -----
    The stream is ChaCha20 with a zero nonce and a 128-bit block counter
    starting at zero, so a seed yields at most 2^64 bytes before the counter
    wraps — far beyond any use here. Instances are not thread-safe.
    """

    __slots__ = ("_encryptor", "seeded")

    def __init__(self, seed: bytes | None = None) -> None:
        if seed is None:
            key = os.urandom(SEED_BYTES)
            self.seeded = False
        else:
            if not isinstance(seed, bytes | bytearray) or len(seed) != SEED_BYTES:
                raise ConfigError(f"a CryptoRandom seed must be {SEED_BYTES} bytes")
            key = bytes(seed)
            self.seeded = True
        cipher = Cipher(algorithms.ChaCha20(key, _NONCE), mode=None)
        self._encryptor = cipher.encryptor()

    def random_bytes(self, n: int) -> bytes:
        """Return the next ``n`` bytes of the keystream."""
        if n < 0:
            raise ConfigError("a byte count cannot be negative")
        return self._encryptor.update(bytes(n))

    def uint64(self, size: int) -> npt.NDArray[np.uint64]:
        """Return ``size`` independent uniform 64-bit unsigned integers."""
        return np.frombuffer(self.random_bytes(8 * size), dtype="<u8").astype(
            np.uint64, copy=True
        )

    def uniform(self, size: int) -> npt.NDArray[np.float64]:
        """Return ``size`` uniforms on ``[0, 1)`` with 53 random bits each."""
        return (self.uint64(size) >> np.uint64(11)).astype(
            np.float64
        ) * _TWO_POW_MINUS_53

    def uniform_open(self, size: int) -> npt.NDArray[np.float64]:
        """Return ``size`` uniforms on ``(0, 1]`` (safe to take the logarithm)."""
        return ((self.uint64(size) >> np.uint64(11)).astype(np.float64) + 1.0) * (
            _TWO_POW_MINUS_53
        )

    def signs(self, size: int) -> npt.NDArray[np.int8]:
        """Return ``size`` independent uniform signs in ``{-1, +1}``."""
        raw = np.frombuffer(self.random_bytes((size + 7) // 8), dtype=np.uint8)
        bits = np.unpackbits(raw, count=size)
        return (2 * bits.astype(np.int8) - 1).astype(np.int8)
