"""Turn one table into what each party of a federation holds.

- The server keeps a held-out global test split (stratified for
  classification) of an embedded task and evaluates the global model on it.
- Each simulated site receives one partition of the remaining rows (IID or
  Dirichlet label skew) and splits it into local train and validation rows.
- A site scales its features either with statistics fitted on **its own
  training rows only**, exactly as a hospital does with its own data, or with
  the federation's securely computed global statistics
  (:class:`~fedsec.data.preprocess.Scaling`); nobody sees another party's
  own statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fedsec.data.datasets import Dataset
from fedsec.data.embedded import embedded_table
from fedsec.data.partition import dirichlet_partition, iid_partition
from fedsec.data.preprocess import Scaling, to_dataset
from fedsec.data.schema import Schema, resolve_schema
from fedsec.data.table import SiteTable
from fedsec.errors import ConfigError

VALIDATION_FRACTION = 0.15


@dataclass(frozen=True)
class SiteData:
    """One site's scaled training and validation rows."""

    train: Dataset
    val: Dataset


def standardise(
    fit_on: npt.NDArray[np.float32], *others: npt.NDArray[np.float32]
) -> list[npt.NDArray[np.float32]]:
    """Scale ``fit_on`` and ``others`` with the mean and std of ``fit_on``."""
    mean = fit_on.mean(axis=0)
    std = fit_on.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    return [((x - mean) / std).astype(np.float32) for x in (fit_on, *others)]


def split_indices(
    labels: npt.NDArray[np.int64] | None, size: int, fraction: float, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Indices (rest, held_out) with ``fraction`` held out, stratified by class."""
    rng = np.random.default_rng(seed)
    if labels is not None:
        held: list[npt.NDArray[np.int64]] = []
        for cls in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == cls))
            held.append(idx[: round(fraction * len(idx))])
        held_out = np.sort(np.concatenate(held))
    else:
        held_out = np.sort(rng.permutation(size)[: round(fraction * size)])
    rest = np.setdiff1d(np.arange(size), held_out)
    return rest, held_out


def _schema(task: str | Schema) -> Schema:
    return task if isinstance(task, Schema) else resolve_schema(task)


def global_split(
    task: str | Schema, test_fraction: float, seed: int
) -> tuple[SiteTable, SiteTable]:
    """The embedded task's rows as (sites' pool, server's held-out test rows)."""
    table = embedded_table(_schema(task))
    rest, held_out = split_indices(table.labels, len(table), test_fraction, seed)
    return table.subset(rest), table.subset(held_out)


def server_test_set(
    task: str | Schema,
    test_fraction: float,
    seed: int,
    scaling: Scaling | None = None,
) -> Dataset:
    """The held-out global test split, scaled by ``scaling`` or on its own rows."""
    _, test = global_split(task, test_fraction, seed)
    return to_dataset(test, scaling or Scaling.fit(test))


def split_table(table: SiteTable, seed: int) -> tuple[SiteTable, SiteTable]:
    """A site's rows as (train, validation), stratified by class."""
    if len(table) < 4:
        raise ConfigError(f"a site needs at least 4 rows, this one has {len(table)}")
    train_idx, val_idx = split_indices(
        table.labels, len(table), VALIDATION_FRACTION, seed
    )
    if len(val_idx) == 0:
        val_idx, train_idx = train_idx[:1], train_idx[1:]
    return table.subset(train_idx), table.subset(val_idx)


def site_split(table: SiteTable, seed: int, scaling: Scaling | None = None) -> SiteData:
    """Split a site's rows into train/validation and scale them.

    Without ``scaling`` the site fits its own on its training rows.
    """
    train, val = split_table(table, seed)
    scaling = scaling or Scaling.fit(train)
    return SiteData(train=to_dataset(train, scaling), val=to_dataset(val, scaling))


def simulated_table(
    task: str | Schema,
    partition_id: int,
    num_partitions: int,
    *,
    partition: str = "iid",
    alpha: float = 0.5,
    test_fraction: float = 0.2,
    seed: int = 42,
) -> SiteTable:
    """The raw rows a simulated site ``partition_id`` of ``num_partitions`` holds."""
    if not 0 <= partition_id < num_partitions:
        raise ConfigError(f"partition-id {partition_id} outside [0, {num_partitions})")
    pool, _ = global_split(task, test_fraction, seed)
    if partition == "iid":
        parts = iid_partition(len(pool), num_partitions, seed)
    elif partition == "dirichlet":
        labels = pool.labels
        if labels is None:
            raise ConfigError("dirichlet label skew needs a classification task")
        parts = dirichlet_partition(labels, num_partitions, alpha, seed)
    else:
        raise ConfigError(f"unknown partition {partition!r}; use iid or dirichlet")
    return pool.subset(parts[partition_id])


def simulated_site(
    task: str | Schema,
    partition_id: int,
    num_partitions: int,
    *,
    partition: str = "iid",
    alpha: float = 0.5,
    test_fraction: float = 0.2,
    seed: int = 42,
    scaling: Scaling | None = None,
) -> SiteData:
    """The data a simulated site ``partition_id`` of ``num_partitions`` holds."""
    table = simulated_table(
        task,
        partition_id,
        num_partitions,
        partition=partition,
        alpha=alpha,
        test_fraction=test_fraction,
        seed=seed,
    )
    return site_split(table, seed + partition_id, scaling)
