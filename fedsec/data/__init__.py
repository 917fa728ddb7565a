"""Data sets, partitioners and site-local loaders."""

from fedsec.data.datasets import Dataset, TaskKind, load_task
from fedsec.data.federated import SiteData, server_test_set, simulated_site, site_split
from fedsec.data.partition import dirichlet_partition, iid_partition
from fedsec.data.site import load_site_table

__all__ = [
    "Dataset",
    "SiteData",
    "TaskKind",
    "dirichlet_partition",
    "iid_partition",
    "load_site_table",
    "load_task",
    "server_test_set",
    "simulated_site",
    "site_split",
]
