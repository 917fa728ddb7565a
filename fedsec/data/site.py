"""Site-local data for deployment: one CSV or Parquet file per hospital.

The file is named by the SuperNode's node-config key ``data-path`` and holds
the columns the federation's schema names (any order; others are ignored).
Every problem becomes one :class:`~fedsec.errors.DataError` whose message
names the file, the column and the problem (:mod:`fedsec.data.table`), so an
operator sees a single line instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fedsec.data.schema import Schema
from fedsec.data.table import SiteTable, check_frame, find_problems
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


def load_site_table(path: str | Path, schema: Schema) -> SiteTable:
    """Read a site's file and check it against ``schema`` (one-line errors)."""
    return check_frame(read_table(path), schema, str(path))


def site_file_problems(path: str | Path, schema: Schema) -> list[str]:
    """Every problem of a site's file against ``schema`` (empty: usable)."""
    try:
        frame = read_table(path)
    except DataError as exc:
        return [str(exc)]
    return find_problems(frame, schema, str(path))
