"""Attack 3: split views in the active variant on a sparse graph.

The server colours the sites into groups and tells group k "only G_k and the
victim survived". Every group signs its own survivor set, so with the old
check (at least t signatures anywhere in the set, t relative to the
neighbourhood) each group's check passed; the groups then revealed the
victim's self-mask seed (its neighbours all saw it survive) and its
neighbours' mask keys (each neighbour "dropped" in the other groups' views),
and the server unmasked the victim alone.

The check now asks *whose* signatures: a site unmasks only with t
signatures on its survivor set from its own closed neighbourhood, and the
policy makes 2t exceed the neighbourhood's size. Then no neighbour w of the
victim can both unmask (t signatures from N[w] on a set containing w) and
have its mask key revealed (t other members of N[w] on sets without w):
``docs/threat-model.md`` has the argument. Here a search over groupings
finds, for every victim, ones that pass the old check and none that passes
the new one; and the attack is replayed against real clients.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Mapping, Sequence

import pytest

from fedsec.errors import MaliciousServerError
from fedsec.secagg.config import GraphKind, SecAggConfig, Variant, default_degree
from fedsec.secagg.graph import _shuffle, neighbours
from fedsec.secagg.local import LocalFederation
from fedsec.secagg.messages import ConsistencyRequest, UnmaskRequest
from tests.secagg.util import DIM, make_updates

Graph = Mapping[int, tuple[int, ...]]


def _closed(graph: Graph, u: int) -> set[int]:
    return {u, *graph[u]}


def attack_passes(
    graph: Graph, t: int, victim: int, group: Mapping[int, int], *, rule: str
) -> bool:
    """Does the grouping let the server recover the victim alone?

    ``group`` maps every node but the victim to its group; the victim signs
    the view of group ``group[victim]`` (also in the mapping). ``rule`` is
    ``"anywhere"`` (the old check) or ``"neighbourhood"`` (the new one).
    """
    groups: dict[int, set[int]] = {}
    for u, g in group.items():
        if u != victim:
            groups.setdefault(g, set()).add(u)
    views = {g: members | {victim} for g, members in groups.items()}
    signers = {
        g: members | ({victim} if group[victim] == g else set())
        for g, members in groups.items()
    }

    def unmasks(u: int) -> bool:
        g = group[u]
        if g not in views or len(views[g]) < t:
            return False
        if rule == "anywhere":
            return len(signers[g]) >= t
        return len(signers[g] & _closed(graph, u)) >= t

    def view(u: int) -> set[int]:
        return views.get(group[u], set())

    seed_holders = [u for u in _closed(graph, victim) if unmasks(u)]
    if len(seed_holders) < t:
        return False
    for w in graph[victim]:  # every pairwise mask of the victim must go
        key_holders = [u for u in _closed(graph, w) if unmasks(u) and w not in view(u)]
        if len(key_holders) < t:
            return False
    return True


def _groupings(
    graph: Graph, cycle: Sequence[int], victim: int, rng: random.Random
) -> list[dict[int, int]]:
    """Candidate groupings: stripes along the cycle, greedy and random colourings."""
    n = len(cycle)
    pos = {u: i for i, u in enumerate(cycle)}
    out: list[dict[int, int]] = []
    for k in range(2, 9):
        for width in (1, 2):
            stripes = {u: (pos[u] // width) % k for u in cycle}
            out += [{**stripes, victim: g} for g in range(k)]
    for k in range(2, 7):  # greedy colourings in random orders
        for _ in range(6):
            order = list(cycle)
            rng.shuffle(order)
            colour: dict[int, int] = {}
            for u in order:
                used = {colour[v] for v in graph[u] if v in colour}
                free = [c for c in range(k) if c not in used]
                colour[u] = free[0] if free else rng.randrange(k)
            out.append(colour)
    for _ in range(40):
        k = rng.randrange(2, 7)
        out.append({u: rng.randrange(k) for u in cycle})
    assert all(len(g) == n for g in out)
    return out


def _sparse_graph(n: int, degree: int, seed: int) -> tuple[Graph, list[int]]:
    nodes = [1000 + 7 * i for i in range(n)]
    key = seed.to_bytes(32, "big")
    return neighbours(nodes, degree, key), _shuffle(sorted(nodes), key)


CASES = [  # (n, degree, threshold, the old check fell): the attack's cases
    (20, 4, 0.6, True),
    (20, default_degree(20), 0.6, False),
    (32, default_degree(32), 0.6, True),
    (32, default_degree(32), 2 / 3, True),
    (100, default_degree(100), 2 / 3, True),
    (100, default_degree(100), 0.8, True),
]


@pytest.mark.parametrize(("n", "degree", "threshold", "old_fell"), CASES)
def test_no_grouping_splits_the_views_under_the_neighbourhood_check(
    n: int, degree: int, threshold: float, old_fell: bool
) -> None:
    config = SecAggConfig(
        variant=Variant.ACTIVE, graph=GraphKind.SPARSE, degree=degree,
        threshold=threshold,
    )  # fmt: skip
    t = config.threshold_for(n)
    assert 2 * t > degree + 1  # what the site policy demands of the active variant
    graph, cycle = _sparse_graph(n, config.degree_for(n), seed=n)
    rng = random.Random(n)  # test search order, nothing secret
    old_passes = 0
    victims = cycle if n <= 32 else cycle[:: n // 20]
    for victim in victims:
        for grouping in _groupings(graph, cycle, victim, rng):
            assert not attack_passes(graph, t, victim, grouping, rule="neighbourhood")
            old_passes += attack_passes(graph, t, victim, grouping, rule="anywhere")
    if old_fell:
        assert old_passes > 0  # the search is strong enough to find the attack


def test_small_graphs_exhaustively() -> None:
    """Every grouping into up to three groups, every victim, n = 9, degree 4."""
    config = SecAggConfig(
        variant=Variant.ACTIVE, graph=GraphKind.SPARSE, degree=4, threshold=0.6
    )
    graph, cycle = _sparse_graph(9, 4, seed=3)
    t = config.threshold_for(9)
    found_old = 0
    for victim in cycle:
        others = [u for u in cycle if u != victim]
        for labels in itertools.product(range(3), repeat=len(others)):
            base = dict(zip(others, labels, strict=True))
            for g in range(3):
                grouping = {**base, victim: g}
                assert not attack_passes(
                    graph, t, victim, grouping, rule="neighbourhood"
                )
                found_old += attack_passes(graph, t, victim, grouping, rule="anywhere")
    assert found_old > 0


def test_the_split_view_attack_against_real_clients() -> None:
    """n = 20, degree 4, t = 3: the server splits the survivors' views."""
    config = SecAggConfig(
        variant=Variant.ACTIVE, graph=GraphKind.SPARSE, degree=4, threshold=0.6,
        max_weight=4, rounds_per_key_set=2,
    )  # fmt: skip
    fed = LocalFederation(config, [10_000 + 37 * i for i in range(20)], wire=False)
    fed.setup()
    k = fed.server._ks
    assert k is not None
    graph, t = k.graph, k.threshold
    # the malicious server searches the real graph for a grouping that passed
    rng = random.Random(0)
    cycle = sorted(graph)
    found = [
        (victim, grouping)
        for victim in cycle
        for grouping in _groupings(graph, cycle, victim, rng)
        if attack_passes(graph, t, victim, grouping, rule="anywhere")
    ]
    assert found, "the old check would have let the attack through"
    victim, grouping = found[0]
    # round 1: every site masks its input honestly
    updates, weights = make_updates(list(fed.node_ids))
    for u, req in fed.server.begin_round(1, DIM).items():
        fed.server.handle(u, fed.clients[u].masked_input(req, updates[u], weights[u]))
    base = next(iter(fed.server.advance().values()))  # an honest consistency request
    assert isinstance(base, ConsistencyRequest)
    views = {}
    for g in set(grouping.values()):
        views[g] = tuple(sorted({u for u, h in grouping.items() if h == g} | {victim}))
    sigs: dict[int, dict[int, bytes]] = {g: {} for g in views}
    for u, g in grouping.items():  # each site signs the view it is shown
        if u == victim and g != grouping[victim]:
            continue
        req = dataclasses.replace(base, survivors=views[g])
        sigs[g][u] = fed.clients[u].consistency_check(req).signature
    seed_shares: dict[int, int] = {}  # peer -> self-seed shares revealed
    key_shares: dict[int, int] = {}  # peer -> mask-key shares revealed
    refusals: list[str] = []
    for u, g in grouping.items():
        signers = tuple(sorted(sigs[g]))
        dropped = tuple(sorted(set(fed.node_ids) - set(views[g])))
        req = UnmaskRequest(
            base.key_set, base.round, base.slot, views[g], dropped, signers,
            tuple(sigs[g][s] for s in signers),
        )  # fmt: skip
        try:
            reply = fed.clients[u].unmask(req)
        except MaliciousServerError as exc:
            refusals.append(str(exc))
            continue
        for v in reply.seed_peers:
            seed_shares[v] = seed_shares.get(v, 0) + 1
        for v in reply.key_peers:
            key_shares[v] = key_shares.get(v, 0) + 1
    assert refusals
    assert all("neighbourhood" in r for r in refusals)
    # the recovery: the victim's seed and every neighbour's mask key need t
    # shares each; the server never gets them all
    recovered = seed_shares.get(victim, 0) >= t and all(
        key_shares.get(w, 0) >= t for w in graph[victim]
    )
    assert not recovered
