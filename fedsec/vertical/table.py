"""A data holder's table: the federation schema's checks, and alignment.

Every holder keeps a table with a record-id column (``id``), the feature
columns the federation's schema assigns to it, and, at the label holder, the
``target`` column. :func:`check_table` applies the schema per holder (column
names exactly as agreed, numeric types, no missing or infinite values,
unique non-empty ids) and turns every problem into one
:class:`~fedsec.errors.DataError` naming the holder and the problem (never a
record). :meth:`HolderTable.aligned` puts the rows in the common order the
PSI produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from fedsec.data.site import TARGET_COLUMN, read_table
from fedsec.errors import DataError
from fedsec.psi.protocol import check_ids

ID_COLUMN = "id"


@dataclass(frozen=True)
class HolderTable:
    """One holder's checked rows.

    Attributes
    ----------
    ids
        Record ids, one per row.
    x
        ``rows x columns`` features (float64).
    columns
        The feature column names, in the schema's order.
    y
        The labels, at the label holder only.
    """

    ids: tuple[str, ...]
    x: npt.NDArray[np.float64]
    columns: tuple[str, ...]
    y: npt.NDArray[np.float64] | None = None

    def aligned(self, rows: npt.NDArray[np.int64]) -> HolderTable:
        """The rows ``rows`` (indices into this table), in that order."""
        return HolderTable(
            tuple(self.ids[int(r)] for r in rows),
            self.x[rows],
            self.columns,
            None if self.y is None else self.y[rows],
        )


def check_table(
    frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    labels: bool,
    holder: int | None = None,
    source: str = "table",
) -> HolderTable:
    """Apply the schema: ``id``, exactly ``columns`` (and ``target`` if ``labels``).

    Raises
    ------
    DataError
        One line naming the holder and the first problem found.
    """

    def fail(what: str) -> DataError:
        return DataError(f"{source}: {what}", stage="schema", node_id=holder)

    want = [ID_COLUMN, *columns, *([TARGET_COLUMN] if labels else [])]
    got = [str(c) for c in frame.columns]
    if sorted(got) != sorted(want):
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        raise fail(f"columns differ from the schema (missing {missing}, extra {extra})")
    if frame.empty:
        raise fail("no rows")
    numeric = [c for c in want if c != ID_COLUMN]
    bad = [
        c
        for c in numeric
        if not pd.api.types.is_numeric_dtype(frame[c])
        or pd.api.types.is_bool_dtype(frame[c])
    ]
    if bad:
        raise fail(f"non-numeric column(s): {', '.join(bad)}")
    values = frame[numeric].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise fail("missing or infinite values")
    if frame[ID_COLUMN].isna().any():
        raise fail("missing record ids")
    ids = [str(v) for v in frame[ID_COLUMN]]
    check_ids(ids, node_id=holder)
    x = frame[list(columns)].to_numpy(dtype=np.float64)
    y = frame[TARGET_COLUMN].to_numpy(dtype=np.float64) if labels else None
    return HolderTable(tuple(ids), x, tuple(columns), y)


def load_holder_table(
    path: str | Path, columns: Sequence[str], *, labels: bool, holder: int | None = None
) -> HolderTable:
    """Read a holder's CSV or Parquet file and apply the schema."""
    return check_table(
        read_table(path), columns, labels=labels, holder=holder, source=str(path)
    )
