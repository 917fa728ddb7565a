"""How a cost grows with the number of sites: the exponent of a power law.

``y ≈ c · n^b`` is fitted by least squares on ``log y = log c + b log n``;
``b ≈ 0`` is constant per site, ``b ≈ 1`` linear (every site talks to every
other), a small ``b`` between them the logarithmic growth of a sparse graph
over the measured range.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PowerLaw:
    """``y ≈ coefficient · n^exponent`` over ``n_min ≤ n ≤ n_max``."""

    exponent: float
    coefficient: float
    r2: float
    n_min: float
    n_max: float
    points: int

    def at(self, n: float) -> float:
        """The fitted value at ``n``."""
        return self.coefficient * n**self.exponent


def power_law(ns: Sequence[float], ys: Sequence[float]) -> PowerLaw | None:
    """Fit ``y = c · n^b`` to the points with ``n, y > 0``; None below two sizes."""
    kept = [
        (float(n), float(y))
        for n, y in zip(ns, ys, strict=True)
        if n > 0 and y is not None and y > 0
    ]
    pts = [(math.log(n), math.log(y)) for n, y in kept]
    if len({x for x, _ in pts}) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    sxy = sum((x - mx) * (y - my) for x, y in pts)
    b = sxy / sxx
    a = my - b * mx
    ss_res = sum((y - a - b * x) ** 2 for x, y in pts)
    ss_tot = sum((y - my) ** 2 for _, y in pts)
    return PowerLaw(
        exponent=b,
        coefficient=math.exp(a),
        # a constant series (to rounding) is fitted exactly
        r2=1.0 - ss_res / ss_tot if ss_tot > 1e-12 * len(pts) else 1.0,
        n_min=min(n for n, _ in kept),
        n_max=max(n for n, _ in kept),
        points=len(pts),
    )
