"""Check a site's table against the federation schema, column by column, by name.

Columns may come in any order; columns the schema does not name are ignored
(and reported by ``check-data``). Every problem is one line naming the
source (the file), the column and the problem, with the first offending row
(1-based data row, the header not counted):

- ``column 'age': missing from the table``
- ``column 'age': not numeric ('abc' in row 3)``
- ``column 'smoker': unknown level 'maybe' in row 5 (levels: never, current)``
- ``column 'age': 2 values outside the range [0, 120] (250 in row 17)``
- ``column 'age': all values missing`` (an empty column)
- ``column 'age': 4 missing values, and the schema refuses missing values``

:func:`find_problems` lists them all; :func:`check_frame` raises the first as
one :class:`~fedsec.errors.DataError` (with the count of the others), which a
site's handler turns into its one-line Flower error reply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from fedsec.data.datasets import TaskKind
from fedsec.data.schema import Feature, FeatureKind, Missing, Schema, label_text

_SHOWN_LEVELS = 8


@dataclass(frozen=True)
class SiteTable:
    """A site's rows, checked against the schema, in raw units.

    ``values[:, j]`` holds feature ``j`` of the schema: the number itself for
    a numeric feature, the level index for a binary or categorical one, NaN
    where the value is missing. ``y`` holds class indices (classification) or
    raw target values (regression, before the schema's scaling).
    """

    schema: Schema
    values: npt.NDArray[np.float64]
    y: npt.NDArray[np.int64] | npt.NDArray[np.float64]
    source: str = "table"
    ignored: tuple[str, ...] = ()
    dropped: int = 0

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def subset(self, idx: npt.NDArray[np.int64]) -> SiteTable:
        """The rows ``idx`` of this table."""
        return SiteTable(self.schema, self.values[idx], self.y[idx], self.source)

    @property
    def labels(self) -> npt.NDArray[np.int64] | None:
        """Class indices for stratified splits (``None`` for regression)."""
        if self.schema.kind is TaskKind.CLASSIFICATION:
            return np.asarray(self.y, dtype=np.int64)
        return None


@dataclass(frozen=True)
class _Column:
    values: npt.NDArray[np.float64]
    problems: list[str]


def find_problems(frame: pd.DataFrame, schema: Schema, source: str) -> list[str]:
    """Every problem of ``frame`` against ``schema``, one line each."""
    return _check(frame, schema, source)[1]


def check_frame(frame: pd.DataFrame, schema: Schema, source: str) -> SiteTable:
    """The checked table, or one :class:`DataError` line for the first problem."""
    from fedsec.errors import DataError

    table, problems = _check(frame, schema, source)
    if problems or table is None:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise DataError(problems[0] + more if problems else f"{source}: unusable")
    return table


def _check(
    frame: pd.DataFrame, schema: Schema, source: str
) -> tuple[SiteTable | None, list[str]]:
    frame = frame.rename(columns=lambda c: str(c).strip())
    problems: list[str] = []
    if frame.columns.duplicated().any():
        twice = sorted(set(frame.columns[frame.columns.duplicated()]))
        problems.append(f"{source}: column {twice[0]!r}: appears more than once")
    if len(frame) == 0:
        problems.append(f"{source}: the table has no data rows")
    columns: list[npt.NDArray[np.float64]] = []
    for feature in schema.features:
        col = _feature_column(frame, feature, source)
        problems += col.problems
        columns.append(col.values)
    target = _target_column(frame, schema, source)
    problems += target.problems
    if problems:
        return None, problems
    values = (
        np.stack(columns, axis=1) if columns else np.zeros((len(frame), 0))
    ).astype(np.float64)
    drop = np.zeros(len(frame), dtype=bool)
    for j, feature in enumerate(schema.features):
        if feature.missing is Missing.DROP:
            drop |= np.isnan(values[:, j])
    drop |= np.isnan(target.values)
    if drop.all():
        return None, [
            f"{source}: no rows left after dropping the rows with missing values "
            "(columns whose schema says missing: drop)"
        ]
    keep = ~drop
    y_raw = target.values[keep]
    y: npt.NDArray[np.int64] | npt.NDArray[np.float64] = (
        y_raw.astype(np.int64) if schema.kind is TaskKind.CLASSIFICATION else y_raw
    )
    ignored = tuple(str(c) for c in frame.columns if str(c) not in schema.columns)
    return (
        SiteTable(schema, values[keep], y, source, ignored, int(drop.sum())),
        [],
    )


def _feature_column(frame: pd.DataFrame, feature: Feature, source: str) -> _Column:
    where = f"{source}: column {feature.name!r}"
    if feature.name not in frame.columns:
        return _Column(np.zeros(0), [f"{where}: missing from the table"])
    series = frame[feature.name]
    if feature.numeric:
        col = _numeric(series, where, feature.low, feature.high)
    else:
        col = _levels(series, where, feature.categories, _level_word(feature))
    if col.problems:
        return col
    missing = int(np.isnan(col.values).sum())
    if len(series) and missing == len(series):
        return _Column(col.values, [f"{where}: all values missing"])
    if missing and feature.missing is Missing.REFUSE:
        return _Column(
            col.values,
            [
                f"{where}: {missing} missing value{'s' if missing > 1 else ''}, "
                "and the schema refuses missing values"
            ],
        )
    return col


def _target_column(frame: pd.DataFrame, schema: Schema, source: str) -> _Column:
    target = schema.target
    where = f"{source}: column {target.column!r}"
    if target.column not in frame.columns:
        return _Column(np.zeros(0), [f"{where}: missing from the table (the target)"])
    series = frame[target.column]
    if target.kind is TaskKind.CLASSIFICATION:
        col = _levels(series, where, target.classes, "class")
    else:
        col = _numeric(series, where, target.low, target.high)
    if col.problems:
        return col
    missing = int(np.isnan(col.values).sum())
    if len(series) and missing == len(series):
        return _Column(col.values, [f"{where}: all values missing (the target)"])
    if missing and target.missing is Missing.REFUSE:
        return _Column(
            col.values,
            [
                f"{where}: {missing} missing target value(s), "
                "and the schema refuses them"
            ],
        )
    return col


def _level_word(feature: Feature) -> str:
    return "binary value" if feature.kind is FeatureKind.BINARY else "level"


def _plural(word: str) -> str:
    return word + ("es" if word.endswith("s") else "s")


def _row(index: int) -> str:
    return f"row {index + 1}"


def _blank(series: pd.Series) -> npt.NDArray[np.bool_]:
    """Missing: NaN/None, or text that is only whitespace."""
    missing = series.isna().to_numpy()
    if series.dtype == object:
        text = series.astype(str).str.strip()
        missing = missing | (text == "").to_numpy()
    return np.asarray(missing, dtype=bool)


def _numeric(series: pd.Series, where: str, low: float, high: float) -> _Column:
    if pd.api.types.is_bool_dtype(series):
        return _Column(np.zeros(0), [f"{where}: not numeric (true/false values)"])
    blank = _blank(series)
    numbers = pd.to_numeric(series.where(~blank), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    bad = np.flatnonzero(np.isnan(numbers) & ~blank)
    if bad.size:
        example = str(series.iloc[int(bad[0])])[:40]
        return _Column(
            np.zeros(0), [f"{where}: not numeric ({example!r} in {_row(int(bad[0]))})"]
        )
    with np.errstate(invalid="ignore"):
        outside = np.flatnonzero(
            ~np.isnan(numbers) & ((numbers < low) | (numbers > high))
        )
    if outside.size:
        first = int(outside[0])
        count = f"{outside.size} values" if outside.size > 1 else "a value"
        return _Column(
            np.zeros(0),
            [
                f"{where}: {count} outside the range [{low:g}, {high:g}] "
                f"({numbers[first]:g} in {_row(first)})"
            ],
        )
    return _Column(numbers, [])


def _levels(
    series: pd.Series, where: str, levels: tuple[str, ...], word: str
) -> _Column:
    blank = _blank(series)
    index = {level: i for i, level in enumerate(levels)}
    raw = series.to_numpy(dtype=object)
    present = np.flatnonzero(~blank)
    codes = np.full(len(series), np.nan, dtype=np.float64)
    if present.size == 0:
        return _Column(codes, [])
    uniques, inverse = np.unique(
        np.asarray([_text_of(v) for v in raw[present]], dtype=object),
        return_inverse=True,
    )
    positions = np.array([index.get(str(u), -1) for u in uniques], dtype=np.int64)
    unknown = np.flatnonzero(positions[inverse] < 0)
    if unknown.size:
        first = int(present[unknown[0]])
        text = str(uniques[inverse[unknown[0]]])
        shown = ", ".join(levels[:_SHOWN_LEVELS])
        if len(levels) > _SHOWN_LEVELS:
            shown += ", ..."
        return _Column(
            np.zeros(0),
            [
                f"{where}: unknown {word} {text[:40]!r} in {_row(first)} "
                f"({_plural(word)}: {shown})"
            ],
        )
    codes[present] = positions[inverse]
    return _Column(codes, [])


def _text_of(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return label_text(int(value))
    if isinstance(value, np.integer | np.floating):
        return label_text(value.item())
    if isinstance(value, str | int | float):
        return label_text(value)
    return str(value).strip()
