"""End-to-end protocol runs against a plaintext reference, with dropouts."""

from __future__ import annotations

import numpy as np
import pytest

from fedsec.errors import AbortError, DataError
from fedsec.secagg.config import GraphKind, SecAggConfig, Variant
from fedsec.secagg.stages import Stage
from tests.secagg.util import (
    federation,
    make_updates,
    plaintext_ring_sum,
    record_quantized,
)

SEMI = SecAggConfig(threshold=0.5, bits=20, max_weight=4, rounds_per_key_set=2)
ACTIVE = SecAggConfig(
    variant=Variant.ACTIVE, threshold=0.6, bits=20, max_weight=4, rounds_per_key_set=2
)
SETUP_STAGES = (Stage.ADVERTISE_KEYS, Stage.SHARE_KEYS)


def _drop_counts(n: int, t: int) -> list[int]:
    return sorted({0, 1, (n - t) // 2, n - t}) if n > 5 else list(range(n - t + 1))


def _cases() -> list:
    cases = []
    for config in (SEMI, ACTIVE):
        stages = [Stage.ADVERTISE_KEYS, Stage.SHARE_KEYS, Stage.MASKED_INPUT]
        stages += [Stage.CONSISTENCY_CHECK] if config.active else []
        stages += [Stage.UNMASK]
        for n in (5, 20):
            t = config.threshold_for(n)
            for stage in stages:
                cases += [
                    pytest.param(
                        config,
                        n,
                        stage,
                        f,
                        id=f"{config.variant.value}-n{n}-{stage.value}-drop{f}",
                    )
                    for f in _drop_counts(n, t)
                ]
    return cases


@pytest.mark.parametrize(
    ("config", "n", "stage", "drops"),
    _cases(),
)
def test_dropouts_give_the_exact_ring_sum(
    monkeypatch: pytest.MonkeyPatch,
    config: SecAggConfig,
    n: int,
    stage: Stage,
    drops: int,
) -> None:
    fed = federation(config, n)
    rng = np.random.default_rng(n * 100 + drops)
    dropped = set(rng.choice(fed.node_ids, size=drops, replace=False).tolist())
    if stage in SETUP_STAGES:
        fed.setup({stage: dropped})
    else:
        fed.setup()
    updates, weights = make_updates(list(fed.node_ids), seed=drops)
    with record_quantized(monkeypatch) as seen:
        res = fed.round(1, updates, weights, {stage: dropped})
    included = [u for u in fed.node_ids if stage is Stage.UNMASK or u not in dropped]
    if stage is Stage.CONSISTENCY_CHECK:
        included = list(fed.node_ids)  # their masked inputs were in already
    assert res.survivors == tuple(included)
    assert np.array_equal(
        res.ring_sum, plaintext_ring_sum(seen, updates, res.survivors, config.bits)
    )
    assert res.total_weight == sum(weights[u] for u in included)
    reference = sum(
        weights[u] * np.clip(updates[u], -1, 1).astype(np.float64) for u in included
    )
    step = config.clip * config.max_weight / ((1 << (config.bits - 1)) // n)
    assert np.all(np.abs(res.weighted_sum - reference) <= len(included) * step)


def _revealed(fed) -> dict[tuple[int, int], int]:
    """(peer, kind) -> number of holders that revealed that share in slot 0."""
    counts: dict[tuple[int, int], int] = {}
    for client in fed.clients.values():
        for peer, state in client.s.peers.items():
            for kind in state.revealed.values():
                counts[(peer, kind)] = counts.get((peer, kind), 0) + 1
    return counts


@pytest.mark.parametrize(
    ("config", "stage"),
    [
        pytest.param(config, stage, id=f"{config.variant.value}-{stage.value}")
        for config in (SEMI, ACTIVE)
        for stage in (
            Stage.ADVERTISE_KEYS,
            Stage.SHARE_KEYS,
            Stage.MASKED_INPUT,
            Stage.CONSISTENCY_CHECK,
            Stage.UNMASK,
        )
        if config.active or stage is not Stage.CONSISTENCY_CHECK
    ],
)
def test_too_many_dropouts_abort_cleanly(config: SecAggConfig, stage: Stage) -> None:
    n = 8
    t = config.threshold_for(n)
    fed = federation(config, n)
    dropped = set(fed.node_ids[: n - t + 1])
    updates, weights = make_updates(list(fed.node_ids))
    if stage in SETUP_STAGES:
        with pytest.raises(AbortError) as info:
            fed.setup({stage: dropped})
    else:
        fed.setup()
        with pytest.raises(AbortError) as info:
            fed.round(1, updates, weights, {stage: dropped})
    assert info.value.stage == stage.value
    revealed = _revealed(fed)
    if stage is Stage.UNMASK:
        assert all(count < t for count in revealed.values())  # nothing reconstructible
    else:
        assert revealed == {}  # no share left any client
    if stage in SETUP_STAGES:
        assert fed.server.needs_setup()


@pytest.mark.parametrize("graph", [GraphKind.COMPLETE, GraphKind.SPARSE])
def test_key_set_serves_several_rounds_and_returning_clients(
    monkeypatch: pytest.MonkeyPatch, graph: GraphKind
) -> None:
    config = SecAggConfig(
        graph=graph, degree=6, threshold=0.5, rounds_per_key_set=3, max_weight=4
    )
    fed = federation(config, 16)
    fed.setup()
    gone = fed.node_ids[3]
    for rnd in range(3):
        assert not fed.server.needs_setup()
        updates, weights = make_updates(list(fed.node_ids), seed=rnd)
        drops = {Stage.MASKED_INPUT: {gone}} if rnd == 0 else {}
        with record_quantized(monkeypatch) as seen:
            res = fed.round(10 + rnd, updates, weights, drops)
        assert (gone in res.survivors) == (rnd > 0)  # back in the same key set
        assert np.array_equal(
            res.ring_sum, plaintext_ring_sum(seen, updates, res.survivors, config.bits)
        )
    assert fed.server.needs_setup()  # three slots used up
    # per slot, no peer ever had both its seed and key shares revealed
    for client in fed.clients.values():
        for state in client.s.peers.values():
            assert set(state.revealed) <= {0, 1, 2}


def test_sparse_graph_of_100_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    config = SecAggConfig(graph=GraphKind.SPARSE, threshold=0.5, max_weight=4)
    fed = federation(config, 100, wire=False)
    fed.setup()
    updates, weights = make_updates(list(fed.node_ids))
    drops = {Stage.MASKED_INPUT: set(fed.node_ids[::10])}
    with record_quantized(monkeypatch) as seen:
        res = fed.round(1, updates, weights, drops)
    assert len(res.survivors) == 90
    assert np.array_equal(
        res.ring_sum, plaintext_ring_sum(seen, updates, res.survivors, config.bits)
    )
    share_bytes = fed.clients[fed.node_ids[0]].bytes_sent["share_keys"]
    assert share_bytes < 20 * 700  # O(log n) neighbours, not n


def test_failed_round_burns_only_its_slot() -> None:
    fed = federation(SEMI, 6)
    fed.setup()
    updates, weights = make_updates(list(fed.node_ids))
    with pytest.raises(AbortError):
        fed.round(1, updates, weights, {Stage.MASKED_INPUT: set(fed.node_ids[:4])})
    assert not fed.server.needs_setup()
    res = fed.round(2, updates, weights)
    assert res.survivors == tuple(fed.node_ids)


def test_ring_inputs_are_summed_exactly_without_requantisation() -> None:
    """Pre-encoded Z_{2^k} vectors (distributed DP) come back as their ring sum."""
    config = SecAggConfig(bits=16, threshold=0.5, max_weight=4)
    fed = federation(config, 6)
    fed.setup()
    rng = np.random.default_rng(3)
    ring = {u: rng.integers(0, 1 << 16, 40, dtype=np.uint64) for u in fed.node_ids}
    dropped = fed.node_ids[2]
    requests = fed.server.begin_round(1, 40)
    for u, req in requests.items():
        if u != dropped:
            reply = fed.clients[u].masked_ring_input(req, ring[u], 1)
            fed.server.handle(u, reply)
    for u, req in fed.server.advance().items():
        fed.server.handle(u, fed.clients[u].unmask(req))
    assert fed.server.advance() == {}
    res = fed.server.result()
    expected = sum(ring[u] for u in fed.node_ids if u != dropped) % (1 << 16)
    assert np.array_equal(res.ring_sum, expected.astype(np.uint32))
    assert res.total_weight == 5


@pytest.mark.parametrize(
    ("values", "weight"),
    [
        (np.full(40, 1 << 16, dtype=np.uint64), 1),  # too many bits
        (np.zeros(40, dtype=np.int64), 1),  # signed
        (np.zeros(39, dtype=np.uint32), 1),  # wrong length
        (np.zeros(40, dtype=np.uint32), -1),  # negative weight
        (np.zeros(40, dtype=np.uint32), 1.5),  # fractional weight
    ],
)
def test_bad_ring_inputs_are_refused(values: np.ndarray, weight: object) -> None:
    fed = federation(SecAggConfig(bits=16, threshold=0.5, max_weight=4), 5)
    fed.setup()
    me = fed.node_ids[0]
    req = fed.server.begin_round(1, 40)[me]
    with pytest.raises(DataError):
        fed.clients[me].masked_ring_input(req, values, weight)
    assert fed.clients[me].stage is Stage.SHARE_KEYS


def _unmask_requests(fed) -> list[set[int]]:
    """Record the recipients of every unmask exchange of the federation."""
    asked: list[set[int]] = []
    original = fed.server._ask_unmask

    def spy(nodes):
        asked.append(set(nodes))
        return original(nodes)

    fed.server._ask_unmask = spy
    return asked


def test_unmasking_asks_t_plus_spare_survivors_in_arrival_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fedsec.secagg.server import UNMASK_SPARE

    n = 20
    config = SecAggConfig(graph=GraphKind.COMPLETE, bits=20, max_weight=4)
    t = config.threshold_for(n)
    fed = federation(config, n)
    fed.setup()
    asked = _unmask_requests(fed)
    updates, weights = make_updates(list(fed.node_ids))
    with record_quantized(monkeypatch) as seen:
        res = fed.round(1, updates, weights)
    want = t + int(np.ceil(UNMASK_SPARE * t))
    assert want < n
    # one exchange, to the first `want` clients whose masked input arrived
    # (LocalFederation delivers in node order)
    assert asked == [set(fed.node_ids[:want])]
    assert fed.server.metrics.replies["unmask"] == want
    assert res.survivors == tuple(fed.node_ids)
    assert np.array_equal(
        res.ring_sum, plaintext_ring_sum(seen, updates, res.survivors, config.bits)
    )
    unasked = [fed.clients[u] for u in fed.node_ids[want:]]
    assert all(c.stage is Stage.MASKED_INPUT for c in unasked)


def test_dropouts_during_unmasking_beyond_the_spare_ask_more_survivors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fedsec.secagg.server import UNMASK_SPARE

    n = 20
    config = SecAggConfig(graph=GraphKind.COMPLETE, bits=20, max_weight=4)
    t = config.threshold_for(n)
    fed = federation(config, n)
    fed.setup()
    asked = _unmask_requests(fed)
    # spare + 2 of the first asked vanish: two more holders are needed
    updates, weights = make_updates(list(fed.node_ids))
    spare = int(np.ceil(UNMASK_SPARE * t))
    silent = set(fed.node_ids[: spare + 2])
    with record_quantized(monkeypatch) as seen:
        res = fed.round(1, updates, weights, {Stage.UNMASK: silent})
    assert len(asked) == 2
    assert asked[1].isdisjoint(asked[0])
    assert len(asked[1]) == 2  # exactly what was missing, no more
    assert fed.server.metrics.dropouts["unmask"] == len(silent)
    assert fed.server.metrics.not_awaited["unmask"] == 0
    assert fed.server.metrics.replies["unmask"] == t
    assert res.survivors == tuple(fed.node_ids)  # masked inputs were all in
    assert np.array_equal(
        res.ring_sum, plaintext_ring_sum(seen, updates, res.survivors, config.bits)
    )
    # no secret got both kinds of shares; each survivor's seed got exactly t
    revealed = _revealed(fed)
    assert all(kind_count == t for kind_count in revealed.values())


def test_mask_expansion_in_worker_processes_gives_the_same_sum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fedsec.secagg import unmasking

    if unmasking._WORKERS == 0:
        pytest.skip("one core: no worker processes")
    monkeypatch.setattr(unmasking, "PARALLEL_MIN_ELEMENTS", 0)
    submitted: list[int] = []
    real_pool = unmasking._pool

    def counting_pool():
        pool = real_pool()
        assert pool is not None

        class Counting:
            def submit(self, fn, jobs, count):
                submitted.append(len(jobs))
                return pool.submit(fn, jobs, count)

        return Counting()

    monkeypatch.setattr(unmasking, "_pool", counting_pool)
    n = 12
    config = SecAggConfig(graph=GraphKind.COMPLETE, bits=20, max_weight=4)
    fed = federation(config, n)
    fed.setup()
    dropped = set(fed.node_ids[:3])
    updates, weights = make_updates(list(fed.node_ids))
    with record_quantized(monkeypatch) as seen:
        res = fed.round(1, updates, weights, {Stage.MASKED_INPUT: dropped})
    # 9 self masks + 3 × 9 pairwise masks, split with the worker processes
    assert sum(submitted) > 0
    assert sum(submitted) < 9 + 27
    assert res.total_weight == sum(weights[u] for u in res.survivors)
    assert np.array_equal(
        res.ring_sum, plaintext_ring_sum(seen, updates, res.survivors, config.bits)
    )


def test_unmasking_is_complete_once_every_secret_has_t_shares() -> None:
    from fedsec.secagg.local import LocalFederation
    from fedsec.secagg.messages import UnmaskRequest

    n = 10
    config = SecAggConfig(graph=GraphKind.COMPLETE, bits=20, max_weight=4)
    t = config.threshold_for(n)
    fed: LocalFederation = federation(config, n)
    fed.setup()
    updates, weights = make_updates(list(fed.node_ids))
    server = fed.server
    out = server.begin_round(1, len(next(iter(updates.values()))))
    for node, req in out.items():
        server.handle(node, fed._client_step(node, req, updates, weights))
        assert not server.stage_complete()  # masked input takes every reply
    out = server.advance()
    assert all(isinstance(r, UnmaskRequest) for r in out.values())
    assert len(out) > t
    for i, (node, req) in enumerate(out.items()):
        assert server.stage_complete() is (i >= t)
        if server.stage_complete():
            break  # what the transport does: the spares are not awaited
        server.handle(node, fed._client_step(node, req, None, None))
    assert server.advance() == {}
    assert server.result().survivors == tuple(fed.node_ids)
    # the spares that were not awaited are not dropouts
    assert server.metrics.replies["unmask"] == t
    assert server.metrics.dropouts["unmask"] == 0
    assert server.metrics.not_awaited["unmask"] == len(out) - t
