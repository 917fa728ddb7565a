"""The federation's statistics, read from the exact sums of every site's integers.

For a numeric feature over ``[low, high]`` with ``N`` present values and the
fixed-point sums ``S1 = Σ q``, ``S2 = Σ q²`` (``q`` in units of
``w = (high - low) / 2^f``):

- mean ``= low + w · S1 / N`` and standard deviation
  ``= w · sqrt(N · S2 - S1²) / N`` (population, like ``numpy.std``), computed
  from exact integers; each is within ``w / 2`` of the pooled rows' own
  (every value is off by at most ``w / 2``, and both are 1-Lipschitz in the
  largest deviation);
- quantiles (quartiles and median) from the global histogram: linear
  interpolation inside the bin where the cumulative count crosses ``p · N``;
  the pooled rows' quantile lies in the same bin, so the error is at most
  one bin width.

With DP noise the counts are noisy integers: they are shown as released, and
means, deviations and quantiles use them clamped to be non-negative.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

from fedsec.analytics.layout import Layout, Stat
from fedsec.data.datasets import TaskKind
from fedsec.data.preprocess import Scaling
from fedsec.data.schema import Feature, FeatureKind

QUANTILES = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class ColumnSummary:
    """One column's global statistics (numeric fields are ``None`` when empty)."""

    name: str
    kind: str
    count: int
    missing: int
    mean: float | None = None
    std: float | None = None
    sum: float | None = None
    sum_sq: float | None = None
    quartiles: tuple[float, float, float] | None = None
    edges: tuple[float, ...] = ()
    histogram: tuple[int, ...] = ()
    levels: dict[str, int] = field(default_factory=dict)
    error_bound: float | None = None

    @property
    def median(self) -> float | None:
        """The median read from the histogram."""
        return None if self.quartiles is None else self.quartiles[1]


@dataclass(frozen=True)
class GlobalStatistics:
    """Everything an analytics round releases, plus how it was computed."""

    schema: str
    schema_digest: str
    sites: int
    rows: int
    dropped: int
    features: tuple[ColumnSummary, ...]
    target: ColumnSummary
    mode: str = "plain"
    frac_bits: int = 20
    noise_multiplier: float = 0.0
    epsilon: float | None = None
    delta: float | None = None

    def feature(self, name: str) -> ColumnSummary:
        """The summary of feature ``name``."""
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def scaling(self, layout: Layout) -> Scaling:
        """The federation's scaling (global mean, std, median) for training."""
        mean, std, median = [], [], []
        for feature, summary in zip(layout.schema.features, self.features, strict=True):
            mean.append(summary.mean if summary.mean is not None else 0.0)
            std.append(summary.std if summary.std is not None else 1.0)
            if feature.numeric:
                median.append(summary.median if summary.median is not None else 0.0)
            else:
                # binary: the share of ones decides the fill (>= 0.5: 1)
                median.append(_share_of_last(summary))
        return Scaling.from_global(layout.schema, mean, std, median)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def to_json(self) -> str:
        """Indented JSON text."""
        return json.dumps(self.to_dict(), indent=2) + "\n"


def _share_of_last(summary: ColumnSummary) -> float:
    counts = list(summary.levels.values())
    total = sum(max(c, 0) for c in counts)
    return max(counts[-1], 0) / total if counts and total else 0.0


def summarise(
    layout: Layout,
    sums: Sequence[int],
    *,
    sites: int,
    mode: str,
    noise_multiplier: float = 0.0,
    epsilon: float | None = None,
    delta: float | None = None,
) -> GlobalStatistics:
    """Read the statistics from the exact per-quantity sums (layout order)."""
    at = layout.offsets()
    schema = layout.schema
    features = tuple(_column(layout, sums, at, f) for f in schema.features)
    target = schema.target
    if target.kind is TaskKind.CLASSIFICATION:
        start = at[(target.column, Stat.CLASS)]
        counts = [int(x) for x in sums[start : start + len(target.classes)]]
        target_summary = ColumnSummary(
            target.column,
            "classification",
            count=sum(counts),
            missing=0,
            levels=dict(zip(target.classes, counts, strict=True)),
        )
    else:
        target_summary = _column(layout, sums, at, target.as_feature())
    return GlobalStatistics(
        schema=schema.name,
        schema_digest=schema.digest,
        sites=sites,
        rows=int(sums[at[("", Stat.ROWS)]]),
        dropped=int(sums[at[("", Stat.DROPPED)]]),
        features=features,
        target=target_summary,
        mode=mode,
        frac_bits=layout.frac_bits,
        noise_multiplier=noise_multiplier,
        epsilon=epsilon,
        delta=delta,
    )


def _column(
    layout: Layout,
    sums: Sequence[int],
    at: dict[tuple[str, Stat], int],
    feature: Feature,
) -> ColumnSummary:
    name = feature.name
    count = int(sums[at[(name, Stat.COUNT)]])
    missing = int(sums[at[(name, Stat.MISSING)]])
    if not feature.numeric:
        start = at[(name, Stat.LEVEL)]
        levels = [int(x) for x in sums[start : start + len(feature.categories)]]
        total = sum(max(c, 0) for c in levels)
        binary = feature.kind is FeatureKind.BINARY
        mean = max(levels[-1], 0) / total if binary and total else None
        return ColumnSummary(
            name,
            feature.kind.value,
            count,
            missing,
            mean=mean,
            levels=dict(zip(feature.categories, levels, strict=True)),
        )
    start = at[(name, Stat.BIN)]
    hist = tuple(int(x) for x in sums[start : start + feature.bins])
    edges = tuple(float(e) for e in feature.edges())
    width = (feature.high - feature.low) / layout.scale
    s1, s2 = int(sums[at[(name, Stat.SUM)]]), int(sums[at[(name, Stat.SUMSQ)]])
    n = max(count, 0)
    summary = ColumnSummary(
        name,
        "numeric",
        count,
        missing,
        sum=feature.low * count + width * s1,
        sum_sq=None,
        edges=edges,
        histogram=hist,
        error_bound=width / 2,
    )
    if n == 0:
        return summary
    mean = feature.low + width * float(Fraction(s1, n))
    var_units = Fraction(n * s2 - s1 * s1, n * n)
    std = width * math.sqrt(max(float(var_units), 0.0))
    # Σ v² = Σ (low + w q)² = N low² + 2 low w S1 + w² S2
    sum_sq = n * feature.low**2 + 2 * feature.low * width * s1 + width**2 * s2
    return ColumnSummary(
        name,
        "numeric",
        count,
        missing,
        mean=mean,
        std=std,
        sum=feature.low * n + width * s1,
        sum_sq=float(sum_sq),
        quartiles=quantiles(edges, hist),
        edges=edges,
        histogram=hist,
        error_bound=width / 2,
    )


def quantiles(
    edges: Sequence[float], histogram: Sequence[int]
) -> tuple[float, float, float] | None:
    """Quartiles by linear interpolation inside the histogram's bins."""
    counts = [max(c, 0) for c in histogram]
    total = sum(counts)
    if total == 0:
        return None
    out = []
    for p in QUANTILES:
        goal, seen = p * total, 0.0
        value = edges[-1]
        for i, c in enumerate(counts):
            if c and seen + c >= goal:
                value = edges[i] + (goal - seen) / c * (edges[i + 1] - edges[i])
                break
            seen += c
        out.append(float(value))
    return (out[0], out[1], out[2])
