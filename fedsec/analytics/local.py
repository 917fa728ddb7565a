"""A site's own integer statistics: computed at the site, sent only masked.

:func:`site_quantities` turns a checked table into the integers of
:class:`~fedsec.analytics.layout.Layout`, in layout order. The fixed-point
value of a numeric ``v`` in ``[low, high]`` is
``q = round((v - low) / (high - low) · 2^f)`` in ``[0, 2^f]``; ``sum`` adds
``q`` and ``sumsq`` adds ``q²`` exactly (at most ``R · 2^2f < 2^62``), so the
federation's mean and variance are those of the rounded values, each value
off by at most ``(high - low) · 2^-(f+1)``. A value in bin ``i`` satisfies
``edges[i] <= v < edges[i+1]`` (the last bin includes ``high``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fedsec.analytics.layout import Layout
from fedsec.data.datasets import TaskKind
from fedsec.data.schema import Feature
from fedsec.data.table import SiteTable
from fedsec.errors import DataError


def site_quantities(table: SiteTable, layout: Layout) -> npt.NDArray[np.int64]:
    """The site's integer of every quantity of ``layout``."""
    schema = layout.schema
    if table.schema.digest != schema.digest:
        raise DataError(f"{table.source}: checked against another schema")
    rows = len(table)
    if rows > layout.max_rows or table.dropped > layout.max_rows:
        raise DataError(
            f"{table.source}: {rows} rows, more than analytics-max-rows="
            f"{layout.max_rows} (the public bound that sizes the secure sum)"
        )
    parts: list[npt.NDArray[np.int64]] = [np.array([rows, table.dropped])]
    for j, feature in enumerate(schema.features):
        parts.append(_column(table.values[:, j], feature, layout.frac_bits))
    target = schema.target
    if target.kind is TaskKind.CLASSIFICATION:
        labels = np.asarray(table.y, dtype=np.int64)
        parts.append(np.bincount(labels, minlength=len(target.classes)))
    else:
        y = np.asarray(table.y, dtype=np.float64)
        parts.append(_column(y, target.as_feature(), layout.frac_bits))
    out = np.concatenate(parts).astype(np.int64)
    if out.size != len(layout):
        raise DataError("statistics do not match the layout")  # a bug, not data
    return out


def fixed_point(
    values: npt.NDArray[np.float64], feature: Feature, frac_bits: int
) -> npt.NDArray[np.int64]:
    """``round((v - low) / (high - low) · 2^f)`` of present values."""
    unit = (values - feature.low) / (feature.high - feature.low)
    return np.rint(unit * float(1 << frac_bits)).astype(np.int64)


def bin_index(
    values: npt.NDArray[np.float64], feature: Feature
) -> npt.NDArray[np.int64]:
    """The histogram bin of each present value (``high`` in the last bin)."""
    edges = feature.edges()
    idx = np.searchsorted(edges, values, side="right") - 1
    return np.clip(idx, 0, feature.bins - 1).astype(np.int64)


def _column(
    values: npt.NDArray[np.float64], feature: Feature, frac_bits: int
) -> npt.NDArray[np.int64]:
    present = values[~np.isnan(values)]
    head = [present.size, values.size - present.size]
    if feature.numeric:
        q = fixed_point(present, feature, frac_bits)
        bins = np.bincount(bin_index(present, feature), minlength=feature.bins)
        return np.concatenate(
            (np.array([*head, int(q.sum()), int((q * q).sum())]), bins)
        ).astype(np.int64)
    levels = np.bincount(present.astype(np.int64), minlength=len(feature.categories))
    return np.concatenate((np.array(head), levels)).astype(np.int64)


def pooled_quantities(tables: list[SiteTable], layout: Layout) -> list[int]:
    """The exact sum of every site's quantities (a reference for tests)."""
    total = [0] * len(layout)
    for table in tables:
        for i, v in enumerate(site_quantities(table, layout).tolist()):
            total[i] += int(v)
    return total
