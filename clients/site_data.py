"""Which rows a site trains on.

- In deployment a SuperNode is started with ``--node-config
  'data-path="/site/data.csv"'``: the site reads its own file (CSV or Parquet
  with a ``target`` column) and nothing else.
- In simulation the node config holds ``partition-id`` and
  ``num-partitions``: the site takes its partition of the embedded task.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from fedsec.config import DataConfig
from fedsec.data import SiteData, load_site_table, load_task, simulated_site, site_split
from fedsec.errors import ConfigError


@lru_cache(maxsize=4)
def _site_from_file(path: str, task: str, seed: int) -> SiteData:
    reference = load_task(task)
    table = load_site_table(
        path, reference.kind, reference.num_outputs, num_features=reference.num_features
    )
    return site_split(table, seed)


def load_site(node_config: Mapping[str, Any], data: DataConfig) -> SiteData:
    """The site's data for the federation's task, from its node config."""
    if "data-path" in node_config:
        return _site_from_file(str(node_config["data-path"]), data.task, data.seed)
    try:
        partition_id = int(node_config["partition-id"])
        num_partitions = int(node_config["num-partitions"])
    except KeyError:
        raise ConfigError(
            "node config has neither 'data-path' (deployment) nor "
            "'partition-id'/'num-partitions' (simulation)"
        ) from None
    return simulated_site(
        data.task,
        partition_id,
        num_partitions,
        partition=data.partition,
        alpha=data.dirichlet_alpha,
        test_fraction=data.test_fraction,
        seed=data.seed,
    )
