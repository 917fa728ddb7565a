"""Which rows a site holds, checked against the federation's schema.

- In deployment a SuperNode is started with ``--node-config
  'data-path="/site/data.csv"'``: the site reads its own file (CSV or Parquet
  with the schema's columns, any order) and nothing else.
- In simulation the node config holds ``partition-id`` and
  ``num-partitions``: the site takes its partition of the schema's embedded
  data set, unless the harness gave it a ``data-path`` (its own file).

The schema comes with every request (canonical JSON under ``schema`` in the
config record). A site that pins its own copy with node config
``data-schema="/site/schema.yaml"`` uses that copy and refuses a request
whose schema differs, so the server cannot make it read other columns.
Scaling: a request that carries the federation's statistics
(``scaling-*``, :class:`~fedsec.data.preprocess.Scaling`) is scaled with
them, otherwise the site fits its own on its training rows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from flwr.app import Context

from clients.site_config import node_config
from fedsec.config import ClientSettings, DataConfig
from fedsec.data import (
    Scaling,
    Schema,
    SiteData,
    SiteTable,
    load_schema,
    load_site_table,
    resolve_schema,
    simulated_table,
    site_split,
)
from fedsec.errors import ConfigError
from fedsec.flower.analytics import SCHEMA_KEY

PIN_KEY = "data-schema"


def request_schema(
    config: Mapping[str, Any], node_config: Mapping[str, Any], data: DataConfig
) -> Schema:
    """The schema to read the site's table with: the request's, or the site's pin.

    A request without a schema (older servers, tests) falls back to the run
    config's ``task-schema`` / ``task``.
    """
    text = config.get(SCHEMA_KEY)
    asked = (
        Schema.from_json(str(text), "the request's schema")
        if text
        else resolve_schema(data.task, data.task_schema)
    )
    pinned = str(node_config.get(PIN_KEY, ""))
    if not pinned:
        return asked
    own = _pinned(pinned, _mtime(pinned))
    if own.digest != asked.digest:
        raise ConfigError(
            f"node config {PIN_KEY}={pinned} refuses the request's schema "
            f"{asked.name!r}: it differs from the site's pinned copy"
        )
    return own


def site_table(
    node_config: Mapping[str, Any], data: DataConfig, schema: Schema
) -> SiteTable:
    """All of the site's rows, checked against ``schema`` (one-line errors)."""
    if "data-path" in node_config:
        path = str(node_config["data-path"])
        return _table_from_file(path, _mtime(path), schema.to_json())
    try:
        partition_id = int(node_config["partition-id"])
        num_partitions = int(node_config["num-partitions"])
    except KeyError:
        raise ConfigError(
            "node config has neither 'data-path' (deployment) nor "
            "'partition-id'/'num-partitions' (simulation)"
        ) from None
    return simulated_table(
        schema,
        partition_id,
        num_partitions,
        partition=data.partition,
        alpha=data.dirichlet_alpha,
        test_fraction=data.test_fraction,
        seed=data.seed,
    )


def load_site(
    node_config: Mapping[str, Any],
    data: DataConfig,
    schema: Schema | None = None,
    scaling: Scaling | None = None,
) -> SiteData:
    """The site's scaled train/validation rows for the federation's task."""
    schema = schema or resolve_schema(data.task, data.task_schema)
    where = tuple(
        (k, str(node_config[k]))
        for k in ("data-path", "partition-id", "num-partitions")
        if k in node_config
    )
    path = str(node_config.get("data-path", ""))
    return _site_data(
        where, _mtime(path) if path else 0.0, data, schema.to_json(), scaling
    )


def request_site(
    config: Mapping[str, Any], context: Context, settings: ClientSettings
) -> SiteData:
    """The site's data for a request: its schema, and its scaling if it has one."""
    node = node_config(context)
    schema = request_schema(config, node, settings.data)
    return load_site(node, settings.data, schema, Scaling.from_config(config, schema))


@lru_cache(maxsize=8)
def _site_data(
    where: tuple[tuple[str, str], ...],
    mtime: float,
    data: DataConfig,
    schema_json: str,
    scaling: Scaling | None,
) -> SiteData:
    node_config = dict(where)
    table = site_table(node_config, data, Schema.from_json(schema_json))
    seed = data.seed
    if "data-path" not in node_config:
        seed += int(node_config["partition-id"])
    return site_split(table, seed, scaling)


@lru_cache(maxsize=8)
def _table_from_file(path: str, mtime: float, schema_json: str) -> SiteTable:
    return load_site_table(path, Schema.from_json(schema_json))


@lru_cache(maxsize=4)
def _pinned(path: str, mtime: float) -> Schema:
    return load_schema(path)


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return -1.0
