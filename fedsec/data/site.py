"""Site-local data for deployment: one CSV or Parquet file per hospital.

The file is named by the SuperNode's node-config key ``data-path`` and holds
numeric feature columns plus a ``target`` column. Every problem becomes one
:class:`~fedsec.errors.DataError` whose message names the file and the problem,
so an operator sees a single line instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from fedsec.data.datasets import Dataset, TaskKind
from fedsec.errors import DataError

TARGET_COLUMN = "target"
_READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file into a data frame, with one-line errors."""
    path = Path(path)
    fmt = _READERS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path}: unsupported file type {path.suffix!r} (use .csv or .parquet)"
        )
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    try:
        frame = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot be read as {fmt}: {first_line}") from None
    if frame.empty:
        raise DataError(f"{path}: file has no data rows")
    return frame


def load_site_table(
    path: str | Path, kind: TaskKind, num_outputs: int, num_features: int | None = None
) -> Dataset:
    """Load a site's table as a :class:`Dataset` for the federation's task.

    Parameters
    ----------
    path
        CSV or Parquet file with numeric feature columns and a ``target`` column.
    kind, num_outputs
        The federation's task: class labels must be integers in
        ``[0, num_outputs)``; regression targets any finite number.
    num_features
        If given, the number of feature columns every site must have.
    """
    frame = read_table(path)
    if TARGET_COLUMN not in frame.columns:
        raise DataError(f"{path}: no {TARGET_COLUMN!r} column")
    non_numeric = [
        str(col)
        for col in frame.columns
        if not pd.api.types.is_numeric_dtype(frame[col])
        or pd.api.types.is_bool_dtype(frame[col])
    ]
    if non_numeric:
        raise DataError(f"{path}: non-numeric column(s): {', '.join(non_numeric)}")
    features = frame.drop(columns=[TARGET_COLUMN])
    if features.shape[1] == 0:
        raise DataError(f"{path}: no feature columns besides {TARGET_COLUMN!r}")
    if num_features is not None and features.shape[1] != num_features:
        raise DataError(
            f"{path}: {features.shape[1]} feature columns, the federation's model "
            f"expects {num_features}"
        )
    x = features.to_numpy(dtype=np.float32)
    y_raw = frame[TARGET_COLUMN].to_numpy(dtype=np.float64)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y_raw))):
        raise DataError(f"{path}: missing or infinite values")
    return Dataset(
        x=x,
        y=_targets(path, y_raw, kind, num_outputs),
        kind=kind,
        num_outputs=num_outputs,
    )


def _targets(
    path: str | Path, y: npt.NDArray[np.float64], kind: TaskKind, num_outputs: int
) -> npt.NDArray[np.int64] | npt.NDArray[np.float32]:
    if kind is TaskKind.REGRESSION:
        return y.astype(np.float32)
    labels = y.astype(np.int64)
    if np.any(labels != y) or labels.min() < 0 or labels.max() >= num_outputs:
        raise DataError(
            f"{path}: {TARGET_COLUMN!r} must hold class labels 0..{num_outputs - 1}"
        )
    return labels
