"""What a site contributes to the federation's statistics: one integer per quantity.

Every statistic is a sum over rows of a non-negative integer, so the sum over
sites is exact:

- ``rows`` and ``dropped`` (rows the schema's ``missing: drop`` left out);
- per numeric feature: ``count`` and ``missing``, ``sum`` and ``sumsq`` of
  the fixed-point value ``q = round((v - low) / (high - low) · 2^f)`` (``f`` =
  ``analytics-frac-bits``; the schema's range maps onto ``[0, 2^f]``), and one
  ``bin`` count per histogram bin;
- per binary or categorical feature: ``count``, ``missing`` and one ``level``
  count per level;
- the target: one ``class`` count per class, or the numeric quantities of a
  regression target over its range.

Each quantity has a public bound on one site's value (from
``analytics-max-rows`` ``R``: counts ``<= R``, sums ``<= R · 2^f``, sums of
squares ``<= R · 2^2f``) and a sensitivity (how much one row moves it: 1,
``2^f`` or ``2^2f``), which size the secure sum (:mod:`fedsec.analytics.digits`)
and its optional noise (:mod:`fedsec.analytics.noise`). Server and sites
derive the same layout from the schema and the run config alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from fedsec.data.datasets import TaskKind
from fedsec.data.schema import Feature, Schema
from fedsec.errors import ConfigError

INT_BITS = 62  # a site's value of any quantity fits a signed 64-bit integer


class Stat(StrEnum):
    """What a quantity counts or sums."""

    ROWS = "rows"
    DROPPED = "dropped"
    COUNT = "count"
    MISSING = "missing"
    SUM = "sum"
    SUMSQ = "sumsq"
    BIN = "bin"
    LEVEL = "level"
    CLASS = "class"


@dataclass(frozen=True)
class Quantity:
    """One integer a site contributes: a column's statistic, its bound, sensitivity."""

    column: str
    stat: Stat
    index: int
    bound: int
    sensitivity: int


@dataclass(frozen=True)
class Layout:
    """The ordered quantities of a schema's statistics.

    ``touched`` is the most quantities one row can change (for the noise
    calibration): ``rows`` or ``dropped``, then per numeric column ``count``,
    ``sum``, ``sumsq`` and one bin (or only ``missing``), per categorical
    column ``count`` and one level, and one class.
    """

    schema: Schema
    frac_bits: int
    max_rows: int
    quantities: tuple[Quantity, ...]
    touched: int

    @classmethod
    def of(cls, schema: Schema, frac_bits: int, max_rows: int) -> Layout:
        """The layout of ``schema`` at ``frac_bits`` fixed point, ``max_rows`` bound."""
        if not 1 <= frac_bits <= 30 or max_rows < 1:
            raise ConfigError("analytics layout: frac_bits in [1, 30], max_rows >= 1")
        if 2 * frac_bits + max_rows.bit_length() > INT_BITS:
            raise ConfigError(
                "analytics layout: a sum of squares overflows 62 bits; lower "
                "analytics-frac-bits or analytics-max-rows"
            )
        r, one = max_rows, 1 << frac_bits
        out = [
            Quantity("", Stat.ROWS, 0, r, 1),
            Quantity("", Stat.DROPPED, 0, r, 1),
        ]
        touched = 1
        for feature in schema.features:
            out += _feature(feature, r, one)
            touched += 4 if feature.numeric else 2
        target = schema.target
        if target.kind is TaskKind.CLASSIFICATION:
            out += [
                Quantity(target.column, Stat.CLASS, i, r, 1)
                for i in range(len(target.classes))
            ]
            touched += 1
        else:
            out += _feature(target.as_feature(), r, one)
            touched += 4
        return cls(schema, frac_bits, max_rows, tuple(out), touched)

    def __len__(self) -> int:
        return len(self.quantities)

    @property
    def scale(self) -> int:
        """``2^f``: the fixed-point value of a feature's ``high``."""
        return 1 << self.frac_bits

    def offsets(self) -> dict[tuple[str, Stat], int]:
        """Position of the first quantity of each (column, statistic)."""
        out: dict[tuple[str, Stat], int] = {}
        for i, q in enumerate(self.quantities):
            out.setdefault((q.column, q.stat), i)
        return out


def _feature(feature: Feature, rows: int, one: int) -> list[Quantity]:
    name = feature.name
    out = [
        Quantity(name, Stat.COUNT, 0, rows, 1),
        Quantity(name, Stat.MISSING, 0, rows, 1),
    ]
    if feature.numeric:
        out += [
            Quantity(name, Stat.SUM, 0, rows * one, one),
            Quantity(name, Stat.SUMSQ, 0, rows * one * one, one * one),
        ]
        out += [Quantity(name, Stat.BIN, i, rows, 1) for i in range(feature.bins)]
    else:
        out += [
            Quantity(name, Stat.LEVEL, i, rows, 1)
            for i in range(len(feature.categories))
        ]
    return out
