"""Graphs, configuration and the client's byte serialisation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedsec.errors import ConfigError
from fedsec.secagg.client import SecAggClient
from fedsec.secagg.config import (
    AUTO_SPARSE_FROM,
    GraphKind,
    SecAggConfig,
    Variant,
    default_degree,
)
from fedsec.secagg.errors import MessageFormatError
from fedsec.secagg.graph import graph_seed, neighbours
from fedsec.secagg.stages import Stage
from tests.secagg.util import (
    DIM,
    federation,
    make_updates,
    plaintext_ring_sum,
    record_quantized,
)


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
    complete = SecAggConfig(graph=GraphKind.COMPLETE, threshold=0.5)
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


def test_auto_is_the_default_graph() -> None:
    assert SecAggConfig().graph is GraphKind.AUTO
    assert AUTO_SPARSE_FROM == 32


@pytest.mark.parametrize(
    ("n", "graph", "degree"),
    [
        (2, GraphKind.COMPLETE, 1),
        (5, GraphKind.COMPLETE, 4),
        (31, GraphKind.COMPLETE, 30),
        (32, GraphKind.SPARSE, 2 * 5),
        (33, GraphKind.SPARSE, 2 * 6),
        (40, GraphKind.SPARSE, 2 * 6),
        (64, GraphKind.SPARSE, 2 * 6),
        (100, GraphKind.SPARSE, 2 * 7),
        (1000, GraphKind.SPARSE, 2 * 10),
    ],
)
def test_auto_graph_is_complete_below_32_and_sparse_from_32(
    n: int, graph: GraphKind, degree: int
) -> None:
    auto = SecAggConfig(graph=GraphKind.AUTO, threshold=0.5)
    assert auto.graph_for(n) is graph
    assert auto.degree_for(n) == degree
    assert auto.threshold_for(n) == math.ceil(0.5 * (degree + 1))
    # the resolved graph gives the same numbers as choosing it explicitly
    explicit = SecAggConfig(graph=graph, threshold=0.5)
    assert explicit.degree_for(n) == degree
    assert explicit.threshold_for(n) == auto.threshold_for(n)


@pytest.mark.parametrize("n", [2, 5, 31, 32, 40, 100])
def test_explicit_graphs_ignore_the_auto_boundary(n: int) -> None:
    complete = SecAggConfig(graph=GraphKind.COMPLETE)
    sparse = SecAggConfig(graph=GraphKind.SPARSE)
    assert complete.graph_for(n) is GraphKind.COMPLETE
    assert complete.degree_for(n) == n - 1
    assert sparse.graph_for(n) is GraphKind.SPARSE
    assert sparse.degree_for(n) == min(default_degree(n), n - 1)


def test_auto_uses_an_explicit_degree_only_where_it_picks_sparse() -> None:
    auto = SecAggConfig(degree=6)
    assert auto.degree_for(31) == 30
    assert auto.degree_for(32) == 6
    assert auto.degree_for(200) == 6


def _check_auto_round(monkeypatch: pytest.MonkeyPatch, n: int, dropped: int) -> None:
    config = SecAggConfig(threshold=0.5, bits=20, max_weight=4)
    assert config.graph is GraphKind.AUTO
    fed = federation(config, n, wire=n < AUTO_SPARSE_FROM)
    fed.setup()
    degree = config.degree_for(n)
    for client in fed.clients.values():
        assert len(client.s.neighbours) == degree
        assert client.s.threshold == config.threshold_for(n)
    updates, weights = make_updates(list(fed.node_ids))
    drops = {Stage.MASKED_INPUT: set(fed.node_ids[:dropped])}
    with record_quantized(monkeypatch) as seen:
        res = fed.round(1, updates, weights, drops)
    assert len(res.survivors) == n - dropped
    assert np.array_equal(
        res.ring_sum, plaintext_ring_sum(seen, updates, res.survivors, config.bits)
    )


def test_auto_at_5_clients_runs_complete_and_sums_exactly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert SecAggConfig().graph_for(5) is GraphKind.COMPLETE
    _check_auto_round(monkeypatch, 5, dropped=1)


def test_auto_at_40_clients_runs_sparse_and_sums_exactly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert SecAggConfig().graph_for(40) is GraphKind.SPARSE
    _check_auto_round(monkeypatch, 40, dropped=2)


def test_client_state_round_trips_through_bytes_mid_protocol() -> None:
    config = SecAggConfig(variant=Variant.ACTIVE, threshold=0.6, max_weight=4)
    fed = federation(config, 5, wire=True)  # every step goes through bytes
    fed.setup()
    updates, weights = make_updates(list(fed.node_ids))
    fed.round(1, updates, weights)
    stages = []
    for client in fed.clients.values():
        data = client.to_bytes()
        again = SecAggClient.from_bytes(data)
        assert again.s == client.s
        assert again.s.config.graph is GraphKind.AUTO  # the default survives
        assert again.to_bytes() == data
        stages.append(again.stage)
        assert again.bytes_sent["masked_input"] > DIM * config.bits // 8
    # only the clients asked for shares reach the unmask stage; the others
    # stay after their consistency signature
    assert set(stages) <= {Stage.UNMASK, Stage.CONSISTENCY_CHECK}
    assert stages.count(Stage.UNMASK) >= fed.server.config.threshold_for(5)


@pytest.mark.parametrize("data", [b"", b"{}", b'{"v": 2, "state": {}}', b"\xff"])
def test_malformed_client_state_is_refused(data: bytes) -> None:
    with pytest.raises(MessageFormatError):
        SecAggClient.from_bytes(data)
