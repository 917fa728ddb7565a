"""Partitioners that split a data set across simulated sites.

Both are deterministic for a given seed (numpy's generator is fine here: the
split is public experimental design, not a secret).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fedsec.errors import ConfigError

IndexList = list[npt.NDArray[np.int64]]


def iid_partition(num_samples: int, num_partitions: int, seed: int) -> IndexList:
    """Shuffle the indices and cut them into ``num_partitions`` near-equal parts."""
    _check(num_samples, num_partitions)
    order = np.random.default_rng(seed).permutation(num_samples)
    return [np.sort(part) for part in np.array_split(order, num_partitions)]


def dirichlet_partition(
    labels: npt.NDArray[np.int64],
    num_partitions: int,
    alpha: float,
    seed: int,
    min_size: int = 2,
    max_tries: int = 100,
) -> IndexList:
    """Label skew: each class is spread over the sites by a Dirichlet(α) draw.

    Small α gives each site few classes; large α approaches IID. Draws are
    repeated (with the same seeded generator) until every site holds at least
    ``min_size`` samples.
    """
    _check(len(labels), num_partitions)
    if alpha <= 0:
        raise ConfigError(f"dirichlet alpha must be positive, got {alpha}")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    for _ in range(max_tries):
        parts: list[list[int]] = [[] for _ in range(num_partitions)]
        for cls in classes:
            idx = rng.permutation(np.flatnonzero(labels == cls))
            shares = rng.dirichlet(np.full(num_partitions, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(np.int64)
            for site, chunk in enumerate(np.split(idx, cuts)):
                parts[site].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_size:
            return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
    raise ConfigError(
        f"could not give each of {num_partitions} sites {min_size} samples with "
        f"alpha={alpha}; raise alpha or lower the number of sites"
    )


def _check(num_samples: int, num_partitions: int) -> None:
    if num_partitions < 1:
        raise ConfigError(f"need at least one partition, got {num_partitions}")
    if num_samples < num_partitions:
        raise ConfigError(
            f"cannot split {num_samples} samples into {num_partitions} partitions"
        )
