"""The embedded tasks: real medical/tabular data sets that ship with scikit-learn.

Nothing is downloaded: ``load_breast_cancer``, ``load_digits`` and
``load_diabetes`` read files inside the scikit-learn package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np
import numpy.typing as npt
from sklearn import datasets as skd

from fedsec.errors import ConfigError


class TaskKind(Enum):
    """What the model's output head predicts."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"


@dataclass(frozen=True)
class Dataset:
    """Features, targets and what kind of task they form."""

    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.float32] | npt.NDArray[np.int64]
    kind: TaskKind
    num_outputs: int

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_features(self) -> int:
        """Number of input columns."""
        return int(self.x.shape[1])


def _classification(loader: Callable[..., tuple[np.ndarray, np.ndarray]]) -> Dataset:
    x, y = loader(return_X_y=True)
    num_classes = int(np.max(y)) + 1
    return Dataset(
        x=np.asarray(x, dtype=np.float32),
        y=np.asarray(y, dtype=np.int64),
        kind=TaskKind.CLASSIFICATION,
        num_outputs=num_classes,
    )


def _regression(loader: Callable[..., tuple[np.ndarray, np.ndarray]]) -> Dataset:
    x, y = loader(return_X_y=True)
    y = np.asarray(y, dtype=np.float32)
    # Standardise the target with constants of the public data set description
    # so that MSE values are comparable across sites and runs.
    return Dataset(
        x=np.asarray(x, dtype=np.float32),
        y=((y - 152.0) / 77.0).astype(np.float32),
        kind=TaskKind.REGRESSION,
        num_outputs=1,
    )


_LOADERS: dict[str, Callable[[], Dataset]] = {
    "breast_cancer": lambda: _classification(skd.load_breast_cancer),
    "digits": lambda: _classification(skd.load_digits),
    "diabetes": lambda: _regression(skd.load_diabetes),
}


def load_task(name: str) -> Dataset:
    """Load one embedded task by name (``breast_cancer``, ``digits``, ``diabetes``)."""
    try:
        loader = _LOADERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown task {name!r}; choose one of {', '.join(_LOADERS)}"
        ) from None
    return loader()
