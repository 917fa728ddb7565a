"""Turn one data set into what each party of a federation holds.

- The server keeps a held-out global test split (stratified for
  classification) and evaluates the global model on it.
- Each simulated site receives one partition of the remaining rows (IID or
  Dirichlet label skew) and splits it into local train and validation rows.
- Every holder standardises its features with statistics fitted on **its own
  training rows only**, exactly as a hospital does with its own data in
  deployment; nobody sees another party's statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from fedsec.data.datasets import Dataset, TaskKind, load_task
from fedsec.data.partition import dirichlet_partition, iid_partition
from fedsec.errors import ConfigError

VALIDATION_FRACTION = 0.15


@dataclass(frozen=True)
class SiteData:
    """One site's standardised training and validation rows."""

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


def _subset(ds: Dataset, idx: npt.NDArray[np.int64]) -> Dataset:
    return Dataset(x=ds.x[idx], y=ds.y[idx], kind=ds.kind, num_outputs=ds.num_outputs)


def _split(
    ds: Dataset, fraction: float, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Indices (rest, held_out) with ``fraction`` held out, stratified by class."""
    rng = np.random.default_rng(seed)
    if ds.kind is TaskKind.CLASSIFICATION:
        labels = np.asarray(ds.y)
        held: list[npt.NDArray[np.int64]] = []
        for cls in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == cls))
            held.append(idx[: round(fraction * len(idx))])
        held_out = np.sort(np.concatenate(held))
    else:
        held_out = np.sort(rng.permutation(len(ds))[: round(fraction * len(ds))])
    rest = np.setdiff1d(np.arange(len(ds)), held_out)
    return rest, held_out


@lru_cache(maxsize=8)
def _global_split(
    task: str, test_fraction: float, seed: int
) -> tuple[Dataset, Dataset]:
    ds = load_task(task)
    rest, held_out = _split(ds, test_fraction, seed)
    return _subset(ds, rest), _subset(ds, held_out)


def server_test_set(task: str, test_fraction: float, seed: int) -> Dataset:
    """The held-out global test split, standardised on its own rows."""
    _, test = _global_split(task, test_fraction, seed)
    (x,) = standardise(test.x)
    return Dataset(x=x, y=test.y, kind=test.kind, num_outputs=test.num_outputs)


def site_split(ds: Dataset, seed: int) -> SiteData:
    """Split a site's rows into train/validation and standardise on train."""
    if len(ds) < 4:
        raise ConfigError(f"a site needs at least 4 rows, this one has {len(ds)}")
    train_idx, val_idx = _split(ds, VALIDATION_FRACTION, seed)
    if len(val_idx) == 0:
        val_idx, train_idx = train_idx[:1], train_idx[1:]
    train, val = _subset(ds, train_idx), _subset(ds, val_idx)
    x_train, x_val = standardise(train.x, val.x)
    return SiteData(
        train=Dataset(x_train, train.y, train.kind, train.num_outputs),
        val=Dataset(x_val, val.y, val.kind, val.num_outputs),
    )


def simulated_site(
    task: str,
    partition_id: int,
    num_partitions: int,
    *,
    partition: str = "iid",
    alpha: float = 0.5,
    test_fraction: float = 0.2,
    seed: int = 42,
) -> SiteData:
    """The data a simulated site ``partition_id`` of ``num_partitions`` holds."""
    if not 0 <= partition_id < num_partitions:
        raise ConfigError(f"partition-id {partition_id} outside [0, {num_partitions})")
    pool, _ = _global_split(task, test_fraction, seed)
    if partition == "iid":
        parts = iid_partition(len(pool), num_partitions, seed)
    elif partition == "dirichlet":
        if pool.kind is not TaskKind.CLASSIFICATION:
            raise ConfigError("dirichlet label skew needs a classification task")
        parts = dirichlet_partition(
            np.asarray(pool.y, dtype=np.int64), num_partitions, alpha, seed
        )
    else:
        raise ConfigError(f"unknown partition {partition!r}; use iid or dirichlet")
    return site_split(_subset(pool, parts[partition_id]), seed + partition_id)
