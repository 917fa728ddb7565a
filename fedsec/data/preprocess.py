"""Turn a checked table into model inputs: impute, standardise, one-hot.

The statistics that scale the features come from one of two places:

- ``site``: each site fits them on its own training rows (what every site
  did before the federation's statistics existed; a site whose population
  differs ends up on a different scale from the others);
- ``global``: the federation's securely computed statistics
  (:mod:`fedsec.analytics`): mean and standard deviation of every numeric
  feature over every site's rows, and the median read from the global
  histogram. No site's own statistics are revealed for this.

A missing numeric value is replaced by the median, then standardised; a
missing binary value by the more frequent value; a missing categorical value
becomes an all-zero one-hot. Binary features stay 0/1, categorical ones are
one-hot encoded over the schema's levels, in schema order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fedsec.data.datasets import Dataset, TaskKind
from fedsec.data.schema import FeatureKind, Schema
from fedsec.data.table import SiteTable
from fedsec.errors import ConfigError

MIN_STD = 1e-8
# keys of the scaling in a request's config record
SCALING_KEYS = ("scaling-mean", "scaling-std", "scaling-fill")


@dataclass(frozen=True)
class Scaling:
    """Per feature (schema order): centre, scale and the value that fills a gap.

    Entries of categorical features are unused (0, 1, NaN).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    fill: tuple[float, ...]

    def __post_init__(self) -> None:
        if not len(self.mean) == len(self.std) == len(self.fill):
            raise ConfigError("scaling: mean, std and fill differ in length")
        if not all(np.isfinite(self.mean)) or not all(
            np.isfinite(s) and s > 0 for s in self.std
        ):
            raise ConfigError("scaling: means must be finite and stds positive")

    @classmethod
    def fit(cls, table: SiteTable) -> Scaling:
        """A site's own scaling: mean, std and median of its (training) rows."""
        mean, std, fill = [], [], []
        for j, feature in enumerate(table.schema.features):
            column = table.values[:, j]
            present = column[~np.isnan(column)]
            if feature.kind is FeatureKind.CATEGORICAL or present.size == 0:
                mean.append(0.0)
                std.append(1.0)
                fill.append(float("nan") if present.size == 0 else 0.0)
                continue
            median = float(np.median(present))
            if feature.kind is FeatureKind.BINARY:
                mean.append(0.0)
                std.append(1.0)
                fill.append(float(median >= 0.5))
                continue
            spread = float(present.std())
            mean.append(float(present.mean()))
            std.append(spread if spread > MIN_STD else 1.0)
            fill.append(median)
        return cls(tuple(mean), tuple(std), tuple(fill))

    @classmethod
    def from_global(
        cls,
        schema: Schema,
        mean: Sequence[float],
        std: Sequence[float],
        median: Sequence[float],
    ) -> Scaling:
        """The federation's scaling from global means, stds and medians."""
        out_mean, out_std, out_fill = [], [], []
        for feature, m, s, med in zip(schema.features, mean, std, median, strict=True):
            if feature.kind is FeatureKind.NUMERIC:
                out_mean.append(float(m))
                out_std.append(float(s) if s > MIN_STD else 1.0)
                out_fill.append(float(med))
            else:
                out_mean.append(0.0)
                out_std.append(1.0)
                out_fill.append(
                    float(med >= 0.5) if feature.kind is FeatureKind.BINARY else 0.0
                )
        return cls(tuple(out_mean), tuple(out_std), tuple(out_fill))

    def to_config(self) -> dict[str, list[float]]:
        """Lists of floats for a Flower ConfigRecord."""
        return dict(
            zip(
                SCALING_KEYS,
                (list(self.mean), list(self.std), list(self.fill)),
                strict=True,
            )
        )

    @classmethod
    def from_config(
        cls, config: Mapping[str, object], schema: Schema
    ) -> Scaling | None:
        """The scaling a request carries, or ``None`` (the site fits its own)."""
        if not all(k in config for k in SCALING_KEYS):
            return None
        lists = []
        for key in SCALING_KEYS:
            value = config[key]
            if not isinstance(value, list | tuple) or len(value) != len(
                schema.features
            ):
                raise ConfigError(
                    f"{key} must list one number per schema feature "
                    f"({len(schema.features)})"
                )
            lists.append(tuple(float(v) for v in value))
        return cls(*lists)


def encode_features(table: SiteTable, scaling: Scaling) -> npt.NDArray[np.float32]:
    """The model input matrix (rows × ``schema.input_dim``)."""
    schema = table.schema
    rows = len(table)
    out = np.zeros((rows, schema.input_dim), dtype=np.float32)
    col = 0
    for j, feature in enumerate(schema.features):
        values = table.values[:, j]
        if feature.kind is FeatureKind.CATEGORICAL:
            present = ~np.isnan(values)
            idx = values[present].astype(np.int64)
            out[np.flatnonzero(present), col + idx] = 1.0
            col += feature.width
            continue
        filled = np.where(np.isnan(values), scaling.fill[j], values)
        if feature.kind is FeatureKind.NUMERIC:
            filled = (filled - scaling.mean[j]) / scaling.std[j]
        out[:, col] = np.nan_to_num(filled, nan=0.0)
        col += 1
    return out


def encode_targets(table: SiteTable) -> npt.NDArray[np.int64] | npt.NDArray[np.float32]:
    """Class indices, or the regression target scaled by the schema."""
    target = table.schema.target
    if target.kind is TaskKind.CLASSIFICATION:
        return np.asarray(table.y, dtype=np.int64)
    return ((np.asarray(table.y) - target.center) / target.scale).astype(np.float32)


def to_dataset(table: SiteTable, scaling: Scaling) -> Dataset:
    """The model's view of ``table``: encoded inputs and targets."""
    return Dataset(
        x=encode_features(table, scaling),
        y=encode_targets(table),
        kind=table.schema.kind,
        num_outputs=table.schema.num_outputs,
    )
