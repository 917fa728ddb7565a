"""Graphs, configuration and the client's byte serialisation."""

from __future__ import annotations

import math

import pytest

from fedsec.errors import ConfigError
from fedsec.secagg.client import SecAggClient
from fedsec.secagg.config import GraphKind, SecAggConfig, Variant, default_degree
from fedsec.secagg.errors import MessageFormatError
from fedsec.secagg.graph import graph_seed, neighbours
from fedsec.secagg.stages import Stage
from tests.secagg.util import DIM, federation, make_updates


def _connected(graph: dict[int, tuple[int, ...]]) -> bool:
    start = next(iter(graph))
    seen, todo = {start}, [start]
    while todo:
        for v in graph[todo.pop()]:
            if v not in seen:
                seen.add(v)
                todo.append(v)
    return len(seen) == len(graph)


@pytest.mark.parametrize(("n", "k"), [(10, 4), (51, 6), (100, 14), (257, 18)])
def test_sparse_graph_is_k_regular_symmetric_connected(n: int, k: int) -> None:
    nodes = [7 * i + 3 for i in range(n)]
    graph = neighbours(nodes, k, graph_seed(b"seed", 1, nodes))
    assert set(graph) == set(nodes)
    for u, nbrs in graph.items():
        assert len(nbrs) == k
        assert u not in nbrs
        assert all(u in graph[v] for v in nbrs)
    assert _connected(graph)


def test_sparse_graph_is_deterministic_from_the_public_seed() -> None:
    nodes = list(range(100, 160))
    a = neighbours(nodes, 8, graph_seed(b"pub", 1, nodes))
    assert a == neighbours(list(reversed(nodes)), 8, graph_seed(b"pub", 1, nodes))
    assert a != neighbours(nodes, 8, graph_seed(b"pub", 2, nodes))
    assert a != neighbours(nodes, 8, graph_seed(b"other", 1, nodes))


def test_complete_graph_and_errors() -> None:
    graph = neighbours([1, 2, 3], 5, b"s")
    assert graph == {1: (2, 3), 2: (1, 3), 3: (1, 2)}
    with pytest.raises(ConfigError):
        neighbours(list(range(10)), 3, b"s")
    with pytest.raises(ConfigError):
        neighbours([1, 1, 2], 2, b"s")


def test_config_thresholds_and_validation() -> None:
    complete = SecAggConfig(threshold=0.5)
    assert complete.threshold_for(10) == 5
    sparse = SecAggConfig(graph=GraphKind.SPARSE, threshold=0.5)
    assert (
        sparse.degree_for(100) == default_degree(100) == 2 * math.ceil(math.log2(100))
    )
    assert sparse.threshold_for(100) == math.ceil(0.5 * (default_degree(100) + 1))
    assert sparse.degree_for(5) == 4  # capped to complete
    for bad in (
        {"threshold": 0.0},
        {"threshold": 1.5},
        {"variant": Variant.ACTIVE, "threshold": 0.5},
        {"bits": 1},
        {"bits": 33},
        {"clip": -1.0},
        {"rounds_per_key_set": 0},
        {"degree": 3},
        {"max_weight": 0},
        {"max_weight": 2.5},
    ):
        with pytest.raises(ConfigError):
            SecAggConfig(**bad)


def test_client_state_round_trips_through_bytes_mid_protocol() -> None:
    config = SecAggConfig(variant=Variant.ACTIVE, threshold=0.6, max_weight=4)
    fed = federation(config, 5, wire=True)  # every step goes through bytes
    fed.setup()
    updates, weights = make_updates(list(fed.node_ids))
    fed.round(1, updates, weights)
    for client in fed.clients.values():
        data = client.to_bytes()
        again = SecAggClient.from_bytes(data)
        assert again.s == client.s
        assert again.to_bytes() == data
        assert again.stage is Stage.UNMASK
        assert again.bytes_sent["masked_input"] > DIM * config.bits // 8


@pytest.mark.parametrize("data", [b"", b"{}", b'{"v": 2, "state": {}}', b"\xff"])
def test_malformed_client_state_is_refused(data: bytes) -> None:
    with pytest.raises(MessageFormatError):
        SecAggClient.from_bytes(data)
