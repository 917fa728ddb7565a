"""Goodness-of-fit helpers for the sampler tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats


def chi2_pvalue(
    samples: npt.NDArray[np.int64],
    support: npt.NDArray[np.int64],
    pmf: npt.NDArray[np.float64],
    min_expected: float = 5.0,
) -> float:
    """χ² p-value of integer samples against a pmf tabulated on ``support``.

    The bins are the support points whose expected count is at least
    ``min_expected``; everything below (above) them, including samples outside
    ``support``, is merged into the first (last) bin.
    """
    n = samples.size
    expected = n * pmf / pmf.sum()
    keep = np.flatnonzero(expected >= min_expected)
    first, last = keep[0], keep[-1]
    inner = support[first : last + 1]
    counts = np.bincount(
        np.clip(samples, inner[0], inner[-1]) - inner[0], minlength=inner.size
    ).astype(float)
    exp = expected[first : last + 1].copy()
    exp[0] += expected[:first].sum()
    exp[-1] += expected[last + 1 :].sum()
    exp *= counts.sum() / exp.sum()
    return float(stats.chisquare(counts, exp).pvalue)
