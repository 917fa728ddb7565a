"""Vertical partitions of a task: the same people, different columns per holder.

For simulations, tests and benchmarks: the task's training split (the test
split is :func:`~fedsec.data.federated.server_test_set`'s rows) is
standardised, its columns divided among ``holders`` holders in contiguous
groups, the labels given to ``label_holder``, and every record given an id.
Regression targets are standardised on the training rows (the fixed-point
training needs them of order one). Each holder misses a few of the records
(``missing``) and holds a few records nobody else has (``extra``), so the PSI
has something to do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fedsec.data.datasets import Dataset, TaskKind
from fedsec.data.federated import global_split
from fedsec.data.preprocess import Scaling, to_dataset
from fedsec.data.site import TARGET_COLUMN
from fedsec.errors import ConfigError


def column_groups(num_features: int, holders: int) -> list[list[str]]:
    """The schema: holder ``h``'s feature column names."""
    if not 2 <= holders <= num_features:
        raise ConfigError(f"need 2..{num_features} holders, got {holders}")
    cols = np.array_split(np.arange(num_features), holders)
    return [[f"f{j:03d}" for j in c] for c in cols]


def vertical_tables(
    task: str,
    holders: int,
    *,
    label_holder: int = 0,
    test_fraction: float = 0.2,
    seed: int = 42,
    missing: float = 0.02,
    extra: float = 0.02,
) -> list[pd.DataFrame]:
    """One frame per holder: ``id``, its columns, and ``target`` at the label holder."""
    train, test = _split(task, test_fraction, seed)
    x = train.x
    y, _ = _targets(train, test)
    n = len(train)
    groups = column_groups(x.shape[1], holders)
    rng = np.random.default_rng(seed + 1)  # public synthetic layout, not a secret
    frames = []
    start = 0
    for h, names in enumerate(groups):
        cols = x[:, start : start + len(names)]
        start += len(names)
        keep = rng.random(n) >= missing
        ids = [f"rec-{i:07d}" for i in np.flatnonzero(keep)]
        frame = pd.DataFrame(cols[keep], columns=names)
        frame.insert(0, "id", ids)
        if h == label_holder:
            frame[TARGET_COLUMN] = y[keep]
        k = int(extra * n)
        if k:
            more = pd.DataFrame(rng.normal(size=(k, len(names))), columns=names)
            more.insert(0, "id", [f"only-{h}-{i:06d}" for i in range(k)])
            if h == label_holder:
                more[TARGET_COLUMN] = 0.0
            frame = pd.concat([frame, more], ignore_index=True)
        frames.append(frame.sample(frac=1.0, random_state=seed + h))
    return frames


def vertical_test_set(
    task: str, test_fraction: float = 0.2, seed: int = 42
) -> tuple[np.ndarray, np.ndarray]:
    """The joined held-out rows, standardised like the holders' columns.

    The evaluation set of a simulated vertical federation (the server's, as
    :func:`~fedsec.data.federated.server_test_set` is in horizontal runs).
    """
    train, test = _split(task, test_fraction, seed)
    return np.asarray(test.x, np.float64), _targets(train, test)[1]


def _split(task: str, test_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """The task's (training, held-out) rows, both scaled on the training rows."""
    pool, held_out = global_split(task, test_fraction, seed)
    scaling = Scaling.fit(pool)
    return to_dataset(pool, scaling), to_dataset(held_out, scaling)


def _targets(train: Dataset, test: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Class labels as they are; regression targets standardised on train."""
    y, yt = np.asarray(train.y, np.float64), np.asarray(test.y, np.float64)
    if train.kind is TaskKind.REGRESSION:
        mean, std = y.mean(), y.std() or 1.0
        return (y - mean) / std, (yt - mean) / std
    return y, yt
