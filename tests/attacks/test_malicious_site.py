"""Attack 7: one malicious site stalls or corrupts the federation.

* Garbage share ciphertexts from one site made every honest site refuse every
  round of the key set, with an error blaming the server, and nothing
  excluded the sender. Now an honest site names the sender in a share
  complaint (with the key that proves it, in the active variant also the
  sender's signature over the garbage), the server checks the proof and
  leaves the sender out of every later key set; a false accuser is left out
  instead.
* A crafted seed share shifted the sum silently (a recovered total weight of
  2·10^9 for 12 sites was accepted). Now a total weight above survivors ×
  ``max_weight`` aborts the round with ``ImplausibleSumError``.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from fedsec.crypto import shamir, signatures
from fedsec.errors import MaliciousServerError
from fedsec.secagg import keyschedule as ks
from fedsec.secagg.config import SecAggConfig, Variant
from fedsec.secagg.errors import ImplausibleSumError
from fedsec.secagg.local import LocalFederation
from fedsec.secagg.messages import (
    MaskedInput,
    ShareComplaint,
    ShareKeys,
    UnmaskResponse,
)
from fedsec.secagg.stages import Stage
from tests.secagg.util import DIM, make_updates

NODES = [300 + 13 * i for i in range(6)]
BAD = NODES[2]
SEMI = SecAggConfig(threshold=0.5, max_weight=4, rounds_per_key_set=3)
ACTIVE = SecAggConfig(
    variant=Variant.ACTIVE, threshold=0.6, max_weight=4, rounds_per_key_set=3
)


class GarbageSender(LocalFederation):
    """A federation in which ``BAD`` sends random share ciphertexts (signed)."""

    def _client_step(self, node, req, updates, weights):  # type: ignore[no-untyped-def]
        reply = super()._client_step(node, req, updates, weights)
        if node != BAD or not isinstance(reply, ShareKeys):
            return reply
        blobs = tuple(os.urandom(len(b)) for b in reply.ciphertexts)
        sigs: tuple[bytes, ...] = ()
        key = self.clients[BAD].s.signing_key
        if reply.signatures and key is not None:
            sigs = tuple(
                signatures.sign(key, ks.share_statement(reply.key_set, BAD, v, b))
                for v, b in zip(reply.recipients, blobs, strict=True)
            )
        return ShareKeys(reply.key_set, reply.recipients, blobs, sigs)


def _masked_stage(fed: LocalFederation, rnd: int) -> dict[int, object]:
    """Run the masked-input stage by hand; return every client's reply."""
    updates, weights = make_updates(list(fed.node_ids), seed=rnd)
    replies = {}
    for u, req in fed.server.begin_round(rnd, DIM).items():
        replies[u] = fed.clients[u].masked_input(req, updates[u], weights[u])
        fed.server.handle(u, replies[u])
    return replies


@pytest.mark.parametrize("config", [SEMI, ACTIVE], ids=["semi_honest", "active"])
def test_a_site_sending_garbage_shares_is_named_and_left_out(
    config: SecAggConfig,
) -> None:
    fed = GarbageSender(config, NODES)
    fed.setup()
    replies = _masked_stage(fed, 1)
    honest = [u for u in NODES if u != BAD]
    for u in honest:  # every honest site names BAD, with its proof
        reply = replies[u]
        assert isinstance(reply, ShareComplaint)
        assert reply.accused == (BAD,)
        assert reply.cipher_sk  # no input of this key set has left it yet
    assert isinstance(replies[BAD], MaskedInput)
    assert set(fed.server.excluded) == {BAD}
    assert "does not open" in fed.server.excluded[BAD]
    with pytest.raises(Exception, match=r"survivors|threshold"):
        fed.server.advance()  # this round cannot complete: one masked input
    # the next key set leaves BAD out and completes the exact sum
    assert fed.server.needs_setup()
    fed.setup()
    assert BAD not in fed.server._ks.nodes  # type: ignore[union-attr]
    updates, weights = make_updates(honest, seed=2)
    result = fed.round(2, updates, weights)
    assert result.survivors == tuple(honest)
    want = sum(np.clip(updates[u], -1, 1) * weights[u] for u in honest)
    assert np.abs(result.weighted_sum - want).max() < 0.05
    assert result.total_weight == sum(weights[u] for u in honest)


def test_a_false_accusation_excludes_the_accuser() -> None:
    fed = LocalFederation(SEMI, NODES)
    fed.setup()
    liar, framed = NODES[0], NODES[1]
    updates, weights = make_updates(list(NODES))
    requests = fed.server.begin_round(1, DIM)
    s = fed.clients[liar].s
    lie = ShareComplaint(s.key_set, 1, 0, (framed,), s.cipher_sk)
    fed.server.handle(liar, lie)
    for u, req in requests.items():
        if u != liar:
            fed.server.handle(
                u, fed.clients[u].masked_input(req, updates[u], weights[u])
            )
    assert set(fed.server.excluded) == {liar}
    assert "falsely accused" in fed.server.excluded[liar]


def test_an_altered_share_is_blamed_on_the_server_in_the_active_variant() -> None:
    """The sender signed what it sent: a share changed in transit is the relay's."""
    fed = LocalFederation(ACTIVE, NODES)
    fed.setup()
    me = NODES[0]
    req = fed.server.begin_round(1, DIM)[me]
    blobs = list(req.ciphertexts)
    blobs[0] = os.urandom(len(blobs[0]))  # the server tampers with one share
    tampered = dataclasses.replace(req, ciphertexts=tuple(blobs))
    updates, weights = make_updates(list(NODES))
    with pytest.raises(MaliciousServerError, match="bad signature"):
        fed.clients[me].masked_input(tampered, updates[me], weights[me])
    assert fed.server.excluded == {}


def test_a_crafted_seed_share_aborts_instead_of_shifting_the_sum() -> None:
    """The liar shifts one survivor's reconstructed self-mask seed by one.

    It knows which t holders the server combines (the lowest ids among those
    that answered) and their public evaluation points, so it crafts a share
    that still reconstructs to a well-formed seed, only the wrong one: the
    self mask removed is wrong, and so are the sum and the total weight.
    """
    n = 12
    nodes = [900 + i for i in range(n)]
    config = SecAggConfig(threshold=0.5, max_weight=1000, rounds_per_key_set=2)
    fed = LocalFederation(config, nodes, wire=False)  # keeps the client objects
    fed.setup()
    t = config.threshold_for(n)
    updates, weights = make_updates(nodes)
    liar = nodes[0]  # the lowest id: its shares are among the t the server uses
    xs = [1 + i for i in range(t)]  # the points of nodes[0..t-1]
    lam = int(shamir.lagrange_at_zero(xs)[0])
    shift = pow(lam, -1, shamir.PRIME)  # moves chunk 0 of the secret by +1
    original = fed.clients[liar].unmask

    def crafted_unmask(req):  # type: ignore[no-untyped-def]
        reply: UnmaskResponse = original(req)
        shares = list(reply.seed_shares)
        values = ks.decode_share(shares[1], ks.CHUNKS)
        values[0] = (values[0] + shift) % shamir.PRIME
        shares[1] = ks.encode_share(values)
        return dataclasses.replace(reply, seed_shares=tuple(shares))

    fed.clients[liar].unmask = crafted_unmask  # type: ignore[method-assign]
    with pytest.raises(ImplausibleSumError, match="exceeds survivors x max_weight"):
        fed.round(1, updates, weights)
    assert fed.server.stage is Stage.IDLE
