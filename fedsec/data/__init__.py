"""Data sets, the federation schema, site checks, partitioners and loaders."""

from fedsec.data.datasets import Dataset, TaskKind, load_task
from fedsec.data.federated import (
    SiteData,
    server_test_set,
    simulated_site,
    simulated_table,
    site_split,
)
from fedsec.data.partition import dirichlet_partition, iid_partition
from fedsec.data.preprocess import Scaling, to_dataset
from fedsec.data.schema import Schema, load_schema, resolve_schema, shipped_schema
from fedsec.data.site import load_site_table
from fedsec.data.table import SiteTable

__all__ = [
    "Dataset",
    "Scaling",
    "Schema",
    "SiteData",
    "SiteTable",
    "TaskKind",
    "dirichlet_partition",
    "iid_partition",
    "load_schema",
    "load_site_table",
    "load_task",
    "resolve_schema",
    "server_test_set",
    "shipped_schema",
    "simulated_site",
    "simulated_table",
    "site_split",
    "to_dataset",
]
