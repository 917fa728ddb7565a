"""Attack 4: the server grinds the sparse graph's seed.

With a seed that followed from the key-set id and the node list, both the
server's to choose, about 100 tries put 3 colluding sites around a victim of
degree 4 (t = 3): enough to recover it without any unmask request. The
seed now also hashes a nonce from every contributing site, committed to
while advertising and revealed only once the contributors are fixed
(:mod:`fedsec.secagg.graph`). The tests play the grinding server, colluders
that change their nonce after seeing the honest ones, and a server that
picks whose nonces count after the reveals.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from fedsec.errors import MaliciousServerError
from fedsec.secagg import keyschedule
from fedsec.secagg.config import GraphKind, SecAggConfig
from fedsec.secagg.graph import graph_seed, neighbours
from fedsec.secagg.local import LocalFederation
from fedsec.secagg.messages import ShareKeysRequest
from fedsec.secagg.stages import Stage

NODES = [500 + 11 * i for i in range(20)]
VICTIM, COLLUDERS = NODES[0], set(NODES[1:4])
CONFIG = SecAggConfig(graph=GraphKind.SPARSE, degree=4, threshold=0.6, max_weight=1)


def _surrounded(graph: dict[int, tuple[int, ...]]) -> bool:
    return set(graph[VICTIM]) >= COLLUDERS


def _ground_key_set() -> int:
    """What the attack did: try key-set ids until the public seed suits it."""
    for key_set in itertools.count(1):
        seed = graph_seed(CONFIG.graph_seed, key_set, NODES)  # no site nonces
        if _surrounded(neighbours(NODES, 4, seed)):
            return key_set
        assert key_set < 100_000
    raise AssertionError


@pytest.fixture
def deterministic_nonces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reproducible 'random' secrets, so the test never depends on luck."""
    counter = itertools.count()

    def fake() -> bytes:
        return next(counter).to_bytes(32, "big")

    monkeypatch.setattr(keyschedule, "random_secret", fake)


def _setup_to_share_keys(fed: LocalFederation, key_set: int) -> dict:
    """Run advertise and the seed reveal; return the share-keys requests."""
    fed.server._last_key_set = key_set - 1  # the grinding server picks the id
    out = fed.server.begin_setup(fed.node_ids)
    for _ in range(2):  # advertise, then reveal
        fed._exchange(out, {}, None, None)
        out = fed.server.advance()
    assert next(iter(out.values())).STAGE is Stage.SHARE_KEYS
    return out


@pytest.mark.usefixtures("deterministic_nonces")
def test_a_ground_key_set_id_no_longer_fixes_the_graph() -> None:
    key_set = _ground_key_set()  # the old attack: cheap, offline
    fed = LocalFederation(CONFIG, NODES, wire=False)
    requests = _setup_to_share_keys(fed, key_set)
    graph = fed.server._ks.graph  # type: ignore[union-attr]
    assert not _surrounded(graph)  # the sites' nonces decided, not the id
    fed.clients[VICTIM].share_keys(requests[VICTIM])
    assert fed.clients[VICTIM].s.neighbours == graph[VICTIM]


def test_colluders_cannot_change_their_nonce_after_seeing_the_others() -> None:
    fed = LocalFederation(CONFIG, NODES, wire=False)
    requests = _setup_to_share_keys(fed, 1)
    honest = next(u for u in NODES if u not in COLLUDERS)
    req: ShareKeysRequest = requests[honest]
    # the last revealers pick new nonces that would suit the server
    nonces = list(req.nonces)
    for i, u in enumerate(req.contributors):
        if u in COLLUDERS:
            nonces[i] = bytes(32)
    forged = dataclasses.replace(req, nonces=tuple(nonces))
    with pytest.raises(MaliciousServerError, match="do not match the commitments"):
        fed.clients[honest].share_keys(forged)


def test_the_server_cannot_pick_whose_nonces_count_after_the_reveals() -> None:
    fed = LocalFederation(CONFIG, NODES, wire=False)
    requests = _setup_to_share_keys(fed, 1)
    honest = NODES[10]
    req: ShareKeysRequest = requests[honest]
    keep = [i for i, u in enumerate(req.contributors) if u != NODES[5]]
    fewer = dataclasses.replace(
        req,
        contributors=tuple(req.contributors[i] for i in keep),
        nonces=tuple(req.nonces[i] for i in keep),
    )
    with pytest.raises(MaliciousServerError, match="do not match the commitments"):
        fed.clients[honest].share_keys(fewer)
    # the honest request goes through, and the site derives the server's graph
    fed.clients[honest].share_keys(req)
    assert fed.clients[honest].s.neighbours == fed.server._ks.graph[honest]  # type: ignore[union-attr]


def test_a_site_that_withholds_its_nonce_discards_the_key_set() -> None:
    from fedsec.errors import AbortError

    fed = LocalFederation(CONFIG, NODES, wire=False)
    with pytest.raises(AbortError, match="did not reveal"):
        fed.setup(drops={Stage.SEED_REVEAL: {NODES[7]}})


def test_keys_shared_before_the_reveal_are_refused() -> None:
    fed = LocalFederation(CONFIG, NODES, wire=False)
    fed.server._last_key_set = 0
    out = fed.server.begin_setup(NODES)
    fed._exchange(out, {}, None, None)
    fed.server.advance()  # the server skips the reveal and invents a graph
    me = NODES[0]
    s = fed.clients[me].s
    req = ShareKeysRequest(
        s.key_set,
        (me,),
        (s.own_advert[0],),
        (s.own_advert[1],),
        (b"x" * 32,),
        (b"",),
    )
    with pytest.raises(MaliciousServerError, match="before the graph nonces"):
        fed.clients[me].share_keys(req)
