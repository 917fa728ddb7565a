"""The group of fedsec's ECDH-PSI: X25519 on hashed u-coordinates.

ECDH-PSI (Meadows 1986; Huberman, Franklin and Hogg 1999) needs a group in
which exponentiation commutes, a hash onto the group, and the decisional
Diffie-Hellman assumption. fedsec uses X25519 (RFC 7748) through
``cryptography`` (pyca, OpenSSL's constant-time ladder; already a dependency).

*Why not a prime-order group.* Ristretto255 (RFC 9496) would be the textbook
choice, but PyNaCl 1.6.2 as shipped on PyPI is built without it, and its
prime-order edwards25519 subgroup (``crypto_core_ed25519_from_uniform`` twice
plus an addition, the random-oracle construction of RFC 9380, then
``crypto_scalarmult_ed25519_noclamp``) costs about 100 µs per multiplication
and 58 µs per hash on this machine, against 51 µs per X25519 multiplication
and 0.6 µs per SHA-256: 2.5x the ECDH floor the issue sets.

*The argument for X25519.* An id is hashed to a u-coordinate
``u = SHA-256("fedsec/psi/v1|" || session || id)`` (bit 255 is ignored by
X25519; the bias of reducing 255 bits mod p = 2^255 - 19 is 19 / 2^255). A
u-coordinate is the x-coordinate of a pair of points +-P on Curve25519 (order
8 l) or on its quadratic twist (order 4 l', l' a 253-bit prime: Curve25519
was chosen twist-secure). ``X25519(k, u)`` is the u-coordinate of
``clamp(k) P`` computed by the Montgomery ladder, which is well defined on
both curves and x-only, so ``X25519(a, X25519(b, u)) = X25519(b, X25519(a,
u))``: exponentiation commutes. ``clamp(k)`` is a multiple of 8, so the
small-order component of P is killed and the tag lies in the prime-order
subgroup of its curve; for a random-oracle u that component is uniform in the
subgroup, and ``u -> X25519(k, u)`` is the hashed-DDH PRF of ECDH-PSI on each
subgroup. A tag of the all-zero point (u of small order: 12 values of 2^255)
is refused. Scalars are 32 bytes from ``os.urandom`` (clamping leaves 2^251
of them). SecretFlow's ECDH-PSI on Curve25519 takes the same route.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)

from fedsec.errors import CryptoError, ProtocolError

POINT_BYTES = 32
KEY_BYTES = 32
_DOMAIN = b"fedsec/psi/v1|"
_MIN_PARALLEL = 4096  # below this many points a pool costs more than it saves
_CHUNKS_PER_WORKER = 4


def new_key() -> bytes:
    """A fresh secret exponent (32 bytes from ``os.urandom``)."""
    return os.urandom(KEY_BYTES)


def hash_ids(ids: Sequence[bytes], session: int) -> bytes:
    """Hash ids to u-coordinates (concatenated, 32 bytes each), bound to ``session``."""
    prefix = _DOMAIN + session.to_bytes(8, "little")
    sha = hashlib.sha256
    return b"".join(sha(prefix + i).digest() for i in ids)


def _mul_blob(key: bytes, points: bytes) -> bytes:
    sk = X25519PrivateKey.from_private_bytes(key)
    load = X25519PublicKey.from_public_bytes
    out = bytearray(len(points))
    try:
        for o in range(0, len(points), POINT_BYTES):
            out[o : o + POINT_BYTES] = sk.exchange(load(points[o : o + POINT_BYTES]))
    except ValueError:  # the all-zero output: a small-order u
        raise CryptoError("a point of small order", stage="psi") from None
    return bytes(out)


def _hash_mul_blob(key: bytes, ids: Sequence[bytes], session: int) -> bytes:
    return _mul_blob(key, hash_ids(ids, session))


MAX_POINTS = 1 << 26  # 64M ids per list: 2 GiB of points


def count_points(points: bytes, *, stage: str = "psi") -> int:
    """Number of points in a concatenation; refuses a ragged or oversized one."""
    if len(points) % POINT_BYTES or len(points) > MAX_POINTS * POINT_BYTES:
        raise ProtocolError("a point list of ragged or excessive length", stage=stage)
    return len(points) // POINT_BYTES


class Exponentiator:
    """Raise points to a secret exponent, on ``workers`` processes.

    Parameters
    ----------
    key
        The 32-byte secret exponent.
    workers
        Processes to use (1: in this process). The pool is started on first
        use with the ``spawn`` method (safe inside threaded servers) and
        kept until :meth:`close`.
    """

    def __init__(self, key: bytes, workers: int = 1) -> None:
        if len(key) != KEY_BYTES:
            raise CryptoError("a PSI key is 32 bytes", stage="psi")
        self._key = key
        self.workers = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None

    def _chunks(self, n: int) -> list[tuple[int, int]]:
        parts = self.workers * _CHUNKS_PER_WORKER
        step = -(-n // parts)
        return [(a, min(n, a + step)) for a in range(0, n, step)]

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=get_context("spawn")
            )
        return self._pool

    def hash_and_raise(self, ids: Sequence[bytes], session: int) -> bytes:
        """``X25519(key, H(id))`` for every id, in order."""
        n = len(ids)
        if self.workers == 1 or n < _MIN_PARALLEL:
            return _hash_mul_blob(self._key, ids, session)
        pool = self._executor()
        futures = [
            pool.submit(_hash_mul_blob, self._key, list(ids[a:b]), session)
            for a, b in self._chunks(n)
        ]
        return b"".join(f.result() for f in futures)

    def raise_points(self, points: bytes) -> bytes:
        """``X25519(key, p)`` for every point, in order."""
        n = count_points(points)
        if self.workers == 1 or n < _MIN_PARALLEL:
            return _mul_blob(self._key, points)
        pool = self._executor()
        futures = [
            pool.submit(_mul_blob, self._key, points[a * POINT_BYTES : b * POINT_BYTES])
            for a, b in self._chunks(n)
        ]
        return b"".join(f.result() for f in futures)

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
