"""What each party of a simulated federation holds."""

from __future__ import annotations

import numpy as np
import pytest

from fedsec.data import TaskKind, load_task, server_test_set, simulated_site
from fedsec.errors import ConfigError


@pytest.mark.parametrize(
    ("task", "kind", "outputs"),
    [
        ("breast_cancer", TaskKind.CLASSIFICATION, 2),
        ("digits", TaskKind.CLASSIFICATION, 10),
        ("diabetes", TaskKind.REGRESSION, 1),
    ],
)
def test_tasks_load_offline(task: str, kind: TaskKind, outputs: int) -> None:
    ds = load_task(task)
    assert ds.kind is kind
    assert ds.num_outputs == outputs
    assert ds.x.dtype == np.float32
    assert np.all(np.isfinite(ds.x))


def test_unknown_task() -> None:
    with pytest.raises(ConfigError, match="unknown task"):
        load_task("mnist")


def test_sites_and_test_split_partition_the_data_set() -> None:
    n = len(load_task("breast_cancer"))
    test = server_test_set("breast_cancer", 0.2, seed=1)
    sites = [simulated_site("breast_cancer", i, 10, seed=1) for i in range(10)]
    held = sum(len(s.train) + len(s.val) for s in sites)
    assert held + len(test) == n
    assert abs(len(test) - 0.2 * n) <= 2
    # the test split is stratified: its class balance follows the data set's
    full = load_task("breast_cancer")
    assert abs(np.mean(test.y) - np.mean(full.y)) < 0.02


def test_each_site_standardises_on_its_own_training_rows() -> None:
    site = simulated_site("breast_cancer", 3, 10, seed=1)
    np.testing.assert_allclose(site.train.x.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(site.train.x.std(axis=0), 1.0, atol=1e-3)
    # validation rows are scaled with the training statistics, not their own
    assert not np.allclose(site.val.x.mean(axis=0), 0.0, atol=1e-3)


def test_dirichlet_sites_and_regression_refusal() -> None:
    site = simulated_site("digits", 0, 5, partition="dirichlet", alpha=0.1, seed=0)
    assert len(np.unique(site.train.y)) < 10
    with pytest.raises(ConfigError, match="classification"):
        simulated_site("diabetes", 0, 5, partition="dirichlet")
    with pytest.raises(ConfigError, match="partition-id"):
        simulated_site("breast_cancer", 10, 10)
