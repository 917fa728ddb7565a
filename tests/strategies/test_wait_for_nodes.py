"""Every mode waits for the federation before its first round."""

from __future__ import annotations

import pytest

from fedsec.errors import AbortError
from strategies.backends import wait_for_nodes


class _JoiningNodes:
    """The node ids a ServerApp sees while sites register one per look."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.looks = 0

    def get_node_ids(self) -> list[int]:
        self.looks += 1
        return list(range(min(self.looks, self.total)))


def test_waits_until_enough_sites_have_joined() -> None:
    grid = _JoiningNodes(10)
    assert wait_for_nodes(grid, 10, timeout=30.0) == 10  # type: ignore[arg-type]
    assert grid.looks == 10


def test_too_few_sites_stop_the_run_naming_the_counts() -> None:
    with pytest.raises(AbortError, match="3 of the 4 sites needed are connected"):
        wait_for_nodes(_JoiningNodes(3), 4, timeout=0.3)  # type: ignore[arg-type]
