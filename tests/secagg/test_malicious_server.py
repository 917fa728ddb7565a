"""A malicious server plays each attack; the honest client refuses it.

Every refusal is a ``MaliciousServerError`` (``ServerReplayError`` is one) and
leaves the client's state as it was: no share revealed, no stage entered.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fedsec.crypto.kdf import X25519KeyPair
from fedsec.errors import DataError, MaliciousServerError
from fedsec.secagg.config import SecAggConfig, Variant
from fedsec.secagg.errors import ServerReplayError
from fedsec.secagg.keyschedule import KEY_KIND, SEED_KIND
from fedsec.secagg.local import LocalFederation
from fedsec.secagg.messages import ShareKeysRequest, UnmaskRequest
from fedsec.secagg.peers import PeerState
from fedsec.secagg.stages import Stage
from tests.secagg.util import DIM, federation, make_updates

SEMI = SecAggConfig(threshold=0.5, max_weight=4, rounds_per_key_set=3)
ACTIVE = SecAggConfig(
    variant=Variant.ACTIVE, threshold=0.6, max_weight=4, rounds_per_key_set=3
)


def _masked_round(fed: LocalFederation, rnd: int) -> dict:
    """Run the masked-input stage by hand; return the server's next requests."""
    updates, weights = make_updates(list(fed.node_ids), seed=rnd)
    requests = fed.server.begin_round(rnd, DIM)
    for u, req in requests.items():
        fed.server.handle(u, fed.clients[u].masked_input(req, updates[u], weights[u]))
    return fed.server.advance()


def _revealed(fed: LocalFederation, node: int) -> dict[int, dict[int, int]]:
    return {v: dict(p.revealed) for v, p in fed.clients[node].s.peers.items()}


def _refused(fed: LocalFederation, node: int, call, *args) -> None:
    """The call raises MaliciousServerError and changes nothing in the client."""
    before, revealed = fed.clients[node].to_bytes(), _revealed(fed, node)
    with pytest.raises(MaliciousServerError):
        call(*args)
    assert _revealed(fed, node) == revealed  # no new share revealed
    assert fed.clients[node].to_bytes() == before  # state untouched


@pytest.fixture
def semi() -> tuple[LocalFederation, dict[int, UnmaskRequest]]:
    fed = federation(SEMI, 6)
    fed.setup()
    return fed, _masked_round(fed, 1)


def test_node_listed_as_survivor_and_dropout(semi) -> None:
    fed, requests = semi
    me, peer = fed.node_ids[0], fed.node_ids[1]
    bad = dataclasses.replace(requests[me], dropped=(peer,))
    _refused(fed, me, fed.clients[me].unmask, bad)


def test_both_shares_of_one_peer_in_one_round(semi) -> None:
    fed, requests = semi
    me, peer = fed.node_ids[0], fed.node_ids[1]
    fed.clients[me].unmask(requests[me])  # honest: reveals peer's seed share
    assert fed.clients[me].s.peers[peer].revealed == {0: SEED_KIND}
    survivors = tuple(u for u in requests[me].survivors if u != peer)
    again = dataclasses.replace(requests[me], survivors=survivors, dropped=(peer,))
    with pytest.raises(ServerReplayError):
        fed.clients[me].unmask(again)
    assert fed.clients[me].s.peers[peer].revealed == {0: SEED_KIND}


def test_per_peer_state_never_reveals_both_kinds() -> None:
    state = PeerState(b"c" * 32, b"m" * 32)
    state.reveal(0, SEED_KIND, 7)
    state.reveal(0, SEED_KIND, 7)  # the same share again is harmless
    with pytest.raises(MaliciousServerError):
        state.reveal(0, KEY_KIND, 7)
    state.reveal(1, KEY_KIND, 7)  # another slot holds independent secrets
    assert state.revealed == {0: SEED_KIND, 1: KEY_KIND}


def test_survivor_set_below_threshold(semi) -> None:
    fed, requests = semi
    me = fed.node_ids[0]
    t = SEMI.threshold_for(6)
    survivors = tuple(fed.node_ids[: t - 1])
    dropped = tuple(fed.node_ids[t - 1 :])
    bad = dataclasses.replace(requests[me], survivors=survivors, dropped=dropped)
    _refused(fed, me, fed.clients[me].unmask, bad)


@pytest.mark.parametrize("field", ["survivors", "dropped"])
def test_unknown_or_self_ids(semi, field: str) -> None:
    fed, requests = semi
    me = fed.node_ids[0]
    req = requests[me]
    if field == "survivors":  # a stranger among the survivors
        bad = dataclasses.replace(req, survivors=tuple(sorted((*req.survivors, 1))))
    else:  # this client itself listed as dropped
        rest = tuple(u for u in req.survivors if u != me)
        bad = dataclasses.replace(req, survivors=rest, dropped=(me,))
    _refused(fed, me, fed.clients[me].unmask, bad)


def test_replayed_messages_of_earlier_rounds() -> None:
    fed = federation(SEMI, 5)
    fed.setup()
    updates, weights = make_updates(list(fed.node_ids))
    me = fed.node_ids[0]
    first = fed.server.begin_round(1, DIM)
    for u, req in first.items():
        fed.server.handle(u, fed.clients[u].masked_input(req, updates[u], weights[u]))
    old_unmask = fed.server.advance()
    for u, req in old_unmask.items():
        fed.server.handle(u, fed.clients[u].unmask(req))
    fed.server.advance()
    second = _masked_round(fed, 2)
    _refused(fed, me, fed.clients[me].masked_input, first[me], updates[me], 1)
    _refused(fed, me, fed.clients[me].unmask, old_unmask[me])
    fed.clients[me].unmask(second[me])
    _refused(fed, me, fed.clients[me].unmask, second[me])  # same round twice
    old_setup = fed.server.begin_setup(fed.node_ids)  # key set 2 ...
    fed.clients[me].advertise_keys(old_setup[me])
    stale = dataclasses.replace(old_setup[me], key_set=1)  # ... then key set 1
    _refused(fed, me, fed.clients[me].advertise_keys, stale)


def test_participant_outside_the_key_set() -> None:
    fed = federation(SEMI, 5)
    fed.setup()
    me = fed.node_ids[0]
    req = fed.server.begin_round(1, DIM)[me]
    bad = dataclasses.replace(req, participants=tuple(sorted((*req.participants, 3))))
    updates, _ = make_updates(list(fed.node_ids))
    _refused(fed, me, fed.clients[me].masked_input, bad, updates[me], 1)


def _share_requests(config: SecAggConfig) -> tuple[LocalFederation, dict]:
    fed = federation(config, 5)
    adverts = fed.server.begin_setup(fed.node_ids)
    for u, req in adverts.items():
        fed.server.handle(u, fed.clients[u].advertise_keys(req))
    return fed, fed.server.advance()


def _swap_key(req: ShareKeysRequest, index: int) -> ShareKeysRequest:
    keys = list(req.cipher_pks)
    keys[index] = X25519KeyPair.generate().public  # the server's own key
    return dataclasses.replace(req, cipher_pks=tuple(keys))


def test_active_variant_detects_a_swapped_public_key() -> None:
    fed, requests = _share_requests(ACTIVE)
    me = fed.node_ids[0]
    victim = requests[me].nodes.index(fed.node_ids[1])
    _refused(fed, me, fed.clients[me].share_keys, _swap_key(requests[me], victim))


def test_semi_honest_variant_refuses_its_own_key_swapped() -> None:
    fed, requests = _share_requests(SEMI)
    me = fed.node_ids[0]
    own = requests[me].nodes.index(me)
    _refused(fed, me, fed.clients[me].share_keys, _swap_key(requests[me], own))
    # A swapped *peer* key is outside the semi-honest threat model: accepted.
    peer = requests[me].nodes.index(fed.node_ids[1])
    fed.clients[me].share_keys(_swap_key(requests[me], peer))


def test_small_order_public_key_is_refused() -> None:
    fed, requests = _share_requests(SEMI)
    me = fed.node_ids[0]
    keys = list(requests[me].cipher_pks)
    keys[requests[me].nodes.index(fed.node_ids[2])] = bytes(32)  # order-1 point
    bad = dataclasses.replace(requests[me], cipher_pks=tuple(keys))
    _refused(fed, me, fed.clients[me].share_keys, bad)


def test_active_variant_refuses_inconsistent_survivor_views() -> None:
    """The server tells one client that a peer dropped, the others that it lived."""
    fed = federation(ACTIVE, 6)
    fed.setup()
    consistency = _masked_round(fed, 1)
    me, peer = fed.node_ids[0], fed.node_ids[1]
    honest_sigs = {
        u: fed.clients[u].consistency_check(req).signature
        for u, req in consistency.items()
        if u != me
    }
    lie = tuple(u for u in consistency[me].survivors if u != peer)
    fed.clients[me].consistency_check(
        dataclasses.replace(consistency[me], survivors=lie)
    )
    signers = tuple(sorted(honest_sigs))
    bad = UnmaskRequest(
        consistency[me].key_set,
        1,
        0,
        lie,
        (peer,),
        signers,
        tuple(honest_sigs[u] for u in signers),
    )
    _refused(fed, me, fed.clients[me].unmask, bad)


def test_active_variant_needs_t_valid_signatures() -> None:
    fed = federation(ACTIVE, 6)
    fed.setup()
    consistency = _masked_round(fed, 1)
    sigs = {
        u: fed.clients[u].consistency_check(r).signature for u, r in consistency.items()
    }
    me = fed.node_ids[0]
    survivors = consistency[me].survivors
    few = tuple(sorted(sigs))[: ACTIVE.threshold_for(6) - 1]
    bad = UnmaskRequest(
        consistency[me].key_set, 1, 0, survivors, (), few, tuple(sigs[u] for u in few)
    )
    _refused(fed, me, fed.clients[me].unmask, bad)
    everyone = tuple(sorted(sigs))
    forged = tuple(sigs[everyone[0]] for _ in everyone)  # one signature for all
    bad = UnmaskRequest(consistency[me].key_set, 1, 0, survivors, (), everyone, forged)
    _refused(fed, me, fed.clients[me].unmask, bad)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_update_is_refused_before_masking(bad: float) -> None:
    fed = federation(SEMI, 5)
    fed.setup()
    me = fed.node_ids[0]
    req = fed.server.begin_round(1, DIM)[me]
    update = np.zeros(DIM, dtype=np.float32)
    update[3] = bad
    before = fed.clients[me].to_bytes()
    with pytest.raises(DataError):
        fed.clients[me].masked_input(req, update, 1)
    assert fed.clients[me].stage is Stage.SHARE_KEYS
    assert fed.clients[me].to_bytes() == before


def test_active_client_needs_registered_verify_keys() -> None:
    fed, requests = _share_requests(ACTIVE)
    me = fed.node_ids[0]
    registry = dict(fed.clients[me].s.verify_keys)
    missing = fed.node_ids[1]
    fed.clients[me].set_verify_keys({u: k for u, k in registry.items() if u != missing})
    _refused(fed, me, fed.clients[me].share_keys, requests[me])  # no key for a peer
    fed.clients[me].set_verify_keys(registry)
    reply = fed.clients[me].share_keys(requests[me])
    assert len(reply.recipients) == len(fed.node_ids) - 1
