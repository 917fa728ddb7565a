"""The embedded tasks as tables with the columns their schema names.

A schema with ``dataset: <task>`` describes an embedded scikit-learn data set:
its features are that data set's columns, in order. Simulated sites take
their rows from this table, and the server its held-out test rows; both go
through the same checks as a hospital's file (:mod:`fedsec.data.table`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from sklearn import datasets as skd

from fedsec.data.schema import Schema
from fedsec.data.table import SiteTable, check_frame
from fedsec.errors import SchemaError

_LOADERS = {
    "breast_cancer": skd.load_breast_cancer,
    "digits": skd.load_digits,
    "diabetes": skd.load_diabetes,
}


def embedded_frame(schema: Schema) -> pd.DataFrame:
    """The raw rows of ``schema.dataset``, columns named by the schema."""
    loader = _LOADERS.get(schema.dataset)
    if loader is None:
        raise SchemaError(
            f"schema {schema.name!r}: dataset {schema.dataset!r} is not embedded; "
            f"choose one of {', '.join(_LOADERS)} or give each site a data file"
        )
    x, y = loader(return_X_y=True)
    if x.shape[1] != len(schema.features):
        raise SchemaError(
            f"schema {schema.name!r}: dataset {schema.dataset!r} has {x.shape[1]} "
            f"columns, the schema names {len(schema.features)} features"
        )
    frame = pd.DataFrame(np.asarray(x), columns=[f.name for f in schema.features])
    frame[schema.target.column] = np.asarray(y)
    return frame


@lru_cache(maxsize=8)
def _embedded_table(schema_json: str) -> SiteTable:
    schema = Schema.from_json(schema_json)
    return check_frame(embedded_frame(schema), schema, f"embedded {schema.dataset}")


def embedded_table(schema: Schema) -> SiteTable:
    """The embedded data set checked against ``schema`` (cached)."""
    return _embedded_table(schema.to_json())
