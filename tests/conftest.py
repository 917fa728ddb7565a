"""Session-wide test settings: Flower stays quiet and inside the project."""

from __future__ import annotations

import pytest

from experiments.simulate import quiet_flower_env

quiet_flower_env()


@pytest.fixture
def task_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages take their run id from the task identity a Flower runtime sets.

    Tests that build ``Message`` objects outside a runtime (a ServerApp's
    requests, a site's replies) use this fixture.
    """
    from flwr.supercore.task_identity import TaskIdentity

    monkeypatch.setattr(TaskIdentity, "_run_id", 1)
    monkeypatch.setattr(TaskIdentity, "_node_id", 0)
    monkeypatch.setattr(TaskIdentity, "_task_id", 1)
