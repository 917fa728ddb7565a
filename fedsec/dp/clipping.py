"""L2 clipping of flat update vectors (the sensitivity bound of every DP mode)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from fedsec.errors import ConfigError, DataError

__all__ = ["clip_l2", "clip_rows_l2"]


def _check_bound(clip_norm: float) -> None:
    if not math.isfinite(clip_norm) or clip_norm <= 0:
        raise ConfigError(f"the clipping norm must be positive, got {clip_norm}")


def clip_l2(x: npt.ArrayLike, clip_norm: float) -> npt.NDArray[np.float64]:
    """Return ``x * min(1, clip_norm / ||x||_2)`` as a new float64 vector."""
    _check_bound(clip_norm)
    arr = np.array(x, dtype=np.float64, copy=True).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise DataError("an update contains NaN or infinite values")
    norm = float(np.linalg.norm(arr))
    if norm > clip_norm:
        arr *= clip_norm / norm
    return arr


def clip_rows_l2(x: npt.ArrayLike, clip_norm: float) -> npt.NDArray[np.float64]:
    """Clip every row of a 2-D array to L2 norm ``clip_norm`` (vectorised)."""
    _check_bound(clip_norm)
    arr = np.array(x, dtype=np.float64, copy=True)
    if arr.ndim != 2:
        raise DataError(f"expected a 2-D array of updates, got {arr.ndim} dims")
    if not np.all(np.isfinite(arr)):
        raise DataError("an update contains NaN or infinite values")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    arr *= np.minimum(1.0, clip_norm / np.maximum(norms, np.finfo(np.float64).tiny))
    return arr
