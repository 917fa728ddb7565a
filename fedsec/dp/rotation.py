"""Randomised Walsh–Hadamard rotation with a public seed.

Kairouz, Liu and Steinke, "The Distributed Discrete Gaussian Mechanism for
Federated Learning with Secure Aggregation" (ICML 2021), Section 4, and
Agarwal, Kairouz and Liu (NeurIPS 2021) rotate each client's clipped update by
``U = H D / sqrt(d)``: ``D`` a diagonal of uniform random signs, ``H`` the
Walsh–Hadamard matrix of order ``d`` (a power of two). The rotation spreads the
vector's mass evenly over the coordinates, so that its infinity norm is about
``||x||_2 sqrt(log d / d)``; this keeps the modular-clipping and rounding error
small. ``U`` is orthogonal, so the server inverts it after summing.

The signs are *public*: every client and the server derive them from the same
32-byte seed (e.g. drawn once by the server and sent with the round's
configuration, or derived per round from a shared key). They carry no secret.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from fedsec.dp.source import CryptoRandom
from fedsec.errors import ConfigError

__all__ = ["fwht", "padded_dim", "rotate", "unrotate"]


def padded_dim(dim: int) -> int:
    """Return the smallest power of two ``>= dim``."""
    if dim < 1:
        raise ConfigError(f"the dimension must be positive, got {dim}")
    return 1 << (dim - 1).bit_length()


def fwht(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return the orthonormal Walsh–Hadamard transform ``H x / sqrt(d)``.

    Works along the last axis, whose length must be a power of two; the
    Python loop runs over the ``log2 d`` butterfly levels only.
    """
    d = x.shape[-1]
    if d != padded_dim(d):
        raise ConfigError(f"the length {d} is not a power of two")
    lead = x.shape[:-1]
    y = np.array(x, dtype=np.float64, copy=True).reshape(-1, d)
    h = 1
    while h < d:
        view = y.reshape(y.shape[0], -1, 2, h)
        a = view[:, :, 0, :].copy()
        b = view[:, :, 1, :]
        view[:, :, 0, :] += b
        np.subtract(a, b, out=view[:, :, 1, :])
        h *= 2
    y /= math.sqrt(d)
    return y.reshape(*lead, d)


def _signs(seed: bytes, dim: int) -> npt.NDArray[np.float64]:
    return CryptoRandom(seed).signs(dim).astype(np.float64)


def rotate(x: npt.ArrayLike, seed: bytes) -> npt.NDArray[np.float64]:
    """Pad ``x`` with zeros to a power of two and apply ``H D / sqrt(d)``.

    Parameters
    ----------
    x
        A vector, or a batch of vectors along the first axis.
    seed
        The public 32-byte rotation seed.

    Returns
    -------
    numpy.ndarray
        ``float64`` array whose last axis has length ``padded_dim(x.shape[-1])``.
    """
    arr = np.asarray(x, dtype=np.float64)
    d = padded_dim(arr.shape[-1])
    pad = [(0, 0)] * (arr.ndim - 1) + [(0, d - arr.shape[-1])]
    return fwht(np.pad(arr, pad) * _signs(seed, d))


def unrotate(y: npt.ArrayLike, seed: bytes, dim: int) -> npt.NDArray[np.float64]:
    """Invert :func:`rotate`: apply ``D H / sqrt(d)`` and drop the padding."""
    arr = np.asarray(y, dtype=np.float64)
    d = arr.shape[-1]
    if d != padded_dim(dim):
        raise ConfigError(f"a rotated vector of length {d} cannot hold {dim} values")
    return (fwht(arr) * _signs(seed, d))[..., :dim]
