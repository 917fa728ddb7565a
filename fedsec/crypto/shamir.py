"""Shamir secret sharing over a prime field, vectorised with numpy.

Follows Shamir, "How to share a secret" (CACM 1979), as used by Bonawitz et al.,
"Practical Secure Aggregation for Privacy-Preserving Machine Learning"
(CCS 2017) to share the self-mask seed and the mask secret key of each client.

A byte string is cut into 3-byte chunks, each an element of GF(p) with
``p = 2**31 - 1``; every chunk gets an independent random polynomial of degree
``t - 1``, so any ``t - 1`` shares are independent of the secret (information
theoretically) chunk by chunk, hence for the whole string. All chunks and all
share holders are evaluated at once (Horner's rule over the ``t`` coefficients,
int64 arithmetic, products below ``2**62``). Evaluation points are public small
integers ``x >= 1`` (the holder's rank), never a node id.

The field-level functions take the prime explicitly so that tests can run them
exhaustively over a tiny field.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from fedsec.errors import CryptoError

PRIME = 2**31 - 1
"""The Mersenne prime 2^31 - 1: products of two elements fit in int64."""

CHUNK_BYTES = 3
"""Bytes of secret per field element (2^24 < PRIME)."""

IntArray = npt.NDArray[np.int64]


def num_chunks(secret_len: int) -> int:
    """Return the number of field elements that carry ``secret_len`` bytes."""
    return -(-secret_len // CHUNK_BYTES)


def random_field_elements(shape: tuple[int, ...], prime: int = PRIME) -> IntArray:
    """Draw uniform elements of GF(prime) from the OS CSPRNG.

    A 64-bit word reduced modulo a prime below 2^31 has a bias below 2^-32.
    """
    count = int(np.prod(shape))
    words = np.frombuffer(os.urandom(8 * count), dtype=np.uint64)
    return (words % np.uint64(prime)).astype(np.int64).reshape(shape)


def share_field(
    values: IntArray,
    xs: Sequence[int],
    threshold: int,
    *,
    prime: int = PRIME,
    coefficients: IntArray | None = None,
) -> IntArray:
    """Share field elements ``values`` (shape ``(m,)``) among holders at ``xs``.

    Parameters
    ----------
    values
        The secrets, one per chunk, each in ``[0, prime)``.
    xs
        Distinct non-zero evaluation points, one per holder.
    threshold
        Number of shares needed to reconstruct (polynomial degree + 1).
    prime
        The field modulus.
    coefficients
        The ``threshold - 1`` higher coefficients, shape ``(threshold - 1, m)``;
        drawn from the CSPRNG when omitted (tests pass them to enumerate).

    Returns
    -------
    numpy.ndarray
        Shares, shape ``(len(xs), m)``: row ``i`` belongs to the holder at ``xs[i]``.
    """
    _check_points(xs, prime)
    if not 1 <= threshold <= len(xs):
        raise CryptoError(f"threshold {threshold} outside [1, {len(xs)}]")
    m = values.shape[0]
    if coefficients is None:
        coefficients = random_field_elements((threshold - 1, m), prime)
    if coefficients.shape != (threshold - 1, m):
        raise CryptoError("coefficient array has the wrong shape")
    x = np.asarray(xs, dtype=np.int64)[:, None]
    acc = np.zeros((len(xs), m), dtype=np.int64)
    for coefficient in coefficients[::-1]:  # Horner over the threshold, not data
        acc += coefficient
        acc *= x
        acc %= prime
    acc += values
    acc %= prime
    return acc


def lagrange_at_zero(xs: Sequence[int], prime: int = PRIME) -> IntArray:
    """Return the Lagrange coefficients that interpolate at 0 from ``xs``."""
    _check_points(xs, prime)
    out = []
    for i, xi in enumerate(xs):
        num, den = 1, 1
        for j, xj in enumerate(xs):
            if i != j:
                num = num * xj % prime
                den = den * (xj - xi) % prime
        out.append(num * pow(den, -1, prime) % prime)
    return np.asarray(out, dtype=np.int64)


def reconstruct_field(
    xs: Sequence[int],
    shares: IntArray,
    *,
    prime: int = PRIME,
    coefficients: IntArray | None = None,
) -> IntArray:
    """Interpolate the secrets at 0 from ``len(xs)`` share rows (shape ``(t, m)``).

    ``coefficients`` may carry precomputed :func:`lagrange_at_zero` values.
    """
    if shares.ndim != 2 or shares.shape[0] != len(xs):
        raise CryptoError("share array does not match the evaluation points")
    if np.any(shares < 0) or np.any(shares >= prime):
        raise CryptoError("share value outside the field")
    lam = lagrange_at_zero(xs, prime) if coefficients is None else coefficients
    terms = (lam[:, None] * shares) % prime  # < 2^31 each, sum fits in int64
    return np.asarray(terms.sum(axis=0) % prime, dtype=np.int64)


def bytes_to_field(secret: bytes) -> IntArray:
    """Cut ``secret`` into big-endian 3-byte chunks (zero-padded)."""
    pad = (-len(secret)) % CHUNK_BYTES
    raw = np.frombuffer(secret + bytes(pad), dtype=np.uint8).astype(np.int64)
    raw = raw.reshape(-1, CHUNK_BYTES)
    return np.asarray((raw[:, 0] << 16) | (raw[:, 1] << 8) | raw[:, 2])


def field_to_bytes(values: IntArray, length: int) -> bytes:
    """Inverse of :func:`bytes_to_field`; raises if a chunk is out of range."""
    if np.any(values < 0) or np.any(values >= 1 << (8 * CHUNK_BYTES)):
        raise CryptoError("reconstructed chunk out of range: inconsistent shares")
    raw = np.stack([(values >> 16) & 0xFF, (values >> 8) & 0xFF, values & 0xFF], 1)
    data = raw.astype(np.uint8).tobytes()
    if len(data) < length or any(data[length:]):
        raise CryptoError("reconstructed padding is not zero: inconsistent shares")
    return data[:length]


def share_bytes(secret: bytes, xs: Sequence[int], threshold: int) -> IntArray:
    """Share a byte string t-of-n; returns shares of shape ``(len(xs), chunks)``."""
    return share_field(bytes_to_field(secret), xs, threshold)


def reconstruct_bytes(xs: Sequence[int], shares: IntArray, length: int) -> bytes:
    """Reconstruct a ``length``-byte secret from share rows at ``xs``."""
    return field_to_bytes(reconstruct_field(xs, shares), length)


def _check_points(xs: Sequence[int], prime: int) -> None:
    if len(set(xs)) != len(xs) or any(not 0 < x < prime for x in xs):
        raise CryptoError("evaluation points must be distinct and in [1, prime)")
