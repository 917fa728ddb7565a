"""Client state machine of secure aggregation (sans-I/O).

Follows Bonawitz et al., "Practical Secure Aggregation for Privacy-Preserving
Machine Learning" (CCS 2017), with the sparse graph of Bell et al. (CCS 2020)
and key reuse over several rounds (see :mod:`fedsec.secagg.keyschedule`). One
method per stage takes the server's request and returns the reply. Every
request is checked before anything secret is used: stage order, key set,
round and slot (replays refused), node lists (disjoint, known neighbours, not
oneself where illegal), thresholds, and in the active variant the signatures.
A failed check raises :class:`~fedsec.errors.MaliciousServerError` (or
``StageError``) and reveals nothing.

The client also holds its site's policy (:class:`~fedsec.policy.SitePolicy`,
never from a message): a key set whose variant, size or threshold is weaker
than the policy is refused with a :class:`~fedsec.errors.PolicyError` before
any key is drawn. With a sparse graph the graph follows from nonces the
clients commit to and reveal (:mod:`fedsec.secagg.graph`), and in the active
variant a client unmasks only after ``t`` members of its *own* closed
neighbourhood signed the survivor set it signed, with ``2t`` above the
neighbourhood's size (so no two honest views can both gather ``t``).

A share that fails authentication is not the server's fault in general: the
client names its sender in a :class:`~fedsec.secagg.messages.ShareComplaint`
instead of a masked input (with the key that proves it, while no input of
the key set is out yet) and leaves the key set, so the server can exclude the
sender from the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from fedsec.crypto import aead, signatures
from fedsec.crypto.kdf import X25519KeyPair
from fedsec.crypto.packing import pack
from fedsec.crypto.prg import thread_generator
from fedsec.errors import CryptoError, DataError, MaliciousServerError
from fedsec.policy import MODES, SitePolicy
from fedsec.secagg import keyschedule as ks
from fedsec.secagg.client_state import ClientState, dump_state, load_state
from fedsec.secagg.config import GraphKind, SecAggConfig
from fedsec.secagg.errors import ServerReplayError, StageError
from fedsec.secagg.graph import (
    commitment,
    commitments_digest,
    graph_seed,
    neighbours,
)
from fedsec.secagg.messages import (
    AdvertiseKeys,
    AdvertiseKeysRequest,
    ConsistencyRequest,
    ConsistencyResponse,
    MaskedInput,
    MaskedInputRequest,
    Message,
    SeedReveal,
    SeedRevealRequest,
    ShareComplaint,
    ShareKeys,
    ShareKeysRequest,
    UnmaskRequest,
    UnmaskResponse,
)
from fedsec.secagg.peers import PeerState
from fedsec.secagg.records import record_nbytes
from fedsec.secagg.rounds import round_quantizer
from fedsec.secagg.stages import Stage, check_transition

_R = TypeVar("_R", bound=Message)
_T = TypeVar("_T")


class SecAggClient:
    """One client of the protocol; its whole state round-trips through bytes.

    Parameters
    ----------
    node_id
        This client's node id.
    config
        Public protocol parameters (equal on every party).
    signing_key
        Raw Ed25519 signing key (active variant), registered out of band.
    verify_keys
        Node id -> raw Ed25519 verification key of every peer (active variant).
    policy
        The site's own policy (its node config). ``None``: the default floors
        of :class:`~fedsec.policy.SitePolicy`, in any variant.
    """

    def __init__(
        self,
        node_id: int,
        config: SecAggConfig,
        *,
        signing_key: bytes | None = None,
        verify_keys: dict[int, bytes] | None = None,
        policy: SitePolicy | None = None,
    ) -> None:
        self.s = ClientState(
            node_id=node_id,
            config=config,
            signing_key=signing_key,
            verify_keys=dict(verify_keys or {}),
        )
        self.policy = policy or SitePolicy(modes=frozenset(MODES))

    # ------------------------------------------------------------ persistence
    def to_bytes(self) -> bytes:
        """Serialise the full state (secret keys included: keep it node-local).

        The policy is not part of the state: the site reads it afresh from its
        own configuration for every message (:meth:`from_bytes`).
        """
        return dump_state(self.s)

    @classmethod
    def from_bytes(cls, data: bytes, policy: SitePolicy | None = None) -> SecAggClient:
        """Rebuild a client from :meth:`to_bytes` output, under ``policy``."""
        client = cls.__new__(cls)
        client.s = load_state(data)
        client.policy = policy or SitePolicy(modes=frozenset(MODES))
        return client

    def set_verify_keys(self, verify_keys: dict[int, bytes]) -> None:
        """Install the peers' verification keys (active variant).

        The keys must come from a source independent of the server (a site
        registry distributed out of band, see :mod:`fedsec.identity`); they
        replace any installed before and are checked on every signature.
        """
        self.s.verify_keys = dict(verify_keys)

    @property
    def stage(self) -> Stage:
        """The last stage this client completed."""
        return self.s.stage

    @property
    def bytes_sent(self) -> dict[str, int]:
        """Cumulative reply bytes per stage name."""
        return dict(self.s.bytes_sent)

    # ----------------------------------------------------------------- stages
    def advertise_keys(self, req: AdvertiseKeysRequest) -> AdvertiseKeys:
        """Stage 0: start a key set, draw and advertise fresh keys.

        Raises
        ------
        PolicyError
            If the variant, the number of sites or the threshold this key set
            implies is weaker than the site's policy (nothing is drawn).
        """
        s = self.s
        self._transition(Stage.ADVERTISE_KEYS)
        if req.key_set <= s.key_set:
            raise ServerReplayError(
                "key set id did not grow (replay)", stage="advertise"
            )
        if s.node_id not in req.nodes:
            raise MaliciousServerError("node list does not contain this client")
        cfg = s.config
        n = len(req.nodes)
        self._check_policy(n)
        sparse = cfg.graph_for(n) is GraphKind.SPARSE
        # the sparse graph is known once the nonces are revealed; complete: now
        nbrs = () if sparse else tuple(v for v in req.nodes if v != s.node_id)
        cipher = X25519KeyPair.generate()
        masks = [X25519KeyPair.generate() for _ in range(cfg.rounds_per_key_set)]
        mask_pks = b"".join(m.public for m in masks)
        nonce = ks.random_secret()
        commit = commitment(nonce, req.key_set, s.node_id)
        signature = b""
        if cfg.active:
            if s.signing_key is None:
                raise CryptoError("the active variant needs a signing key")
            statement = ks.advertise_statement(
                req.key_set, s.node_id, cipher.public, mask_pks, commit
            )
            signature = signatures.sign(s.signing_key, statement)
        s.reset_key_set(req.key_set, req.nodes, nbrs, cfg.threshold_for(n))
        s.cipher_sk = cipher.secret
        s.mask_sks = [m.secret for m in masks]
        s.seeds = [ks.random_secret() for _ in masks]
        s.own_advert = (cipher.public, mask_pks)
        s.graph_nonce = nonce
        s.stage = Stage.ADVERTISE_KEYS
        return self._reply(
            AdvertiseKeys(req.key_set, cipher.public, mask_pks, commit, signature)
        )

    def seed_reveal(self, req: SeedRevealRequest) -> SeedReveal:
        """Stage 0b (sparse graph): check the commitments, reveal the nonce."""
        s = self.s
        stage = Stage.SEED_REVEAL.value
        self._check_key_set(req.key_set, Stage.SEED_REVEAL)
        if not self._sparse():
            raise MaliciousServerError(
                "a seed reveal for a complete graph", stage=stage
            )
        if not set(req.contributors) <= set(s.nodes):
            raise MaliciousServerError("contributor outside the key set", stage=stage)
        committed = dict(zip(req.contributors, req.commitments, strict=True))
        if committed.get(s.node_id) != commitment(s.graph_nonce, s.key_set, s.node_id):
            raise MaliciousServerError(
                "this client's own commitment is missing or altered", stage=stage
            )
        if len(req.contributors) < s.threshold:
            raise MaliciousServerError("fewer contributors than t", stage=stage)
        self.policy.require_sites(len(req.contributors), "sites in the key set")
        self._enter(Stage.SEED_REVEAL)
        s.commitments_digest = commitments_digest(req.contributors, req.commitments)
        return self._reply(SeedReveal(s.key_set, s.graph_nonce))

    def share_keys(self, req: ShareKeysRequest) -> ShareKeys:
        """Stage 1: check the neighbours' keys, share secrets, encrypt the shares."""
        s = self.s
        self._check_key_set(req.key_set, Stage.SHARE_KEYS)
        stage = Stage.SHARE_KEYS.value
        nbrs = self._graph_neighbours(req)
        closed = set(nbrs) | {s.node_id}
        if not set(req.nodes) <= closed:
            raise MaliciousServerError("keys of a non-neighbour", stage=stage)
        if len(req.nodes) < s.threshold:
            raise MaliciousServerError("fewer advertised keys than t", stage=stage)
        adverts = dict(
            zip(req.nodes, zip(req.cipher_pks, req.mask_pks, strict=True), strict=True)
        )
        commits = dict(zip(req.nodes, req.commitments, strict=True))
        own_commit = commitment(s.graph_nonce, s.key_set, s.node_id)
        if adverts.get(s.node_id) != s.own_advert or commits[s.node_id] != own_commit:
            raise MaliciousServerError(
                "this client's own keys were altered", stage=stage
            )
        keys = [c for c, _ in adverts.values()]
        keys += [
            m[32 * i : 32 * i + 32]
            for _, m in adverts.values()
            for i in range(len(m) // 32)
        ]
        if len(set(keys)) != len(keys):
            raise MaliciousServerError("duplicate public keys", stage=stage)
        rounds = s.config.rounds_per_key_set
        peers: dict[int, PeerState] = {}
        for node, sig in zip(req.nodes, req.signatures, strict=True):
            cipher_pk, mask_pks = adverts[node]
            if len(mask_pks) != 32 * rounds:
                raise MaliciousServerError("wrong number of mask keys", node_id=node)
            if s.config.active:
                self._verify(
                    node,
                    ks.advertise_statement(
                        s.key_set, node, cipher_pk, mask_pks, commits[node]
                    ),
                    sig,
                )
            peers[node] = PeerState(cipher_pk, mask_pks)
        secrets_ = [x for pair in zip(s.mask_sks, s.seeds, strict=True) for x in pair]
        holders = list(req.nodes)
        rows = ks.share_secrets(secrets_, [s.x_of(v) for v in holders], s.threshold)
        recipients, blobs, sigs = [], [], []
        for v, row in zip(holders, rows, strict=True):
            plain = ks.encode_share(row)
            if v == s.node_id:
                peers[v].share = plain
                continue
            key = self._agree(
                ks.share_key, s.cipher_sk, peers[v].cipher_pk, s.key_set, s.node_id, v
            )
            blob = aead.encrypt(key, plain, ks.share_aad(s.key_set, s.node_id, v))
            recipients.append(v)
            blobs.append(blob)
            if s.config.active and s.signing_key is not None:
                statement = ks.share_statement(s.key_set, s.node_id, v, blob)
                sigs.append(signatures.sign(s.signing_key, statement))
        self._enter(Stage.SHARE_KEYS)
        s.neighbours = tuple(nbrs)
        s.peers = peers
        return self._reply(
            ShareKeys(s.key_set, tuple(recipients), tuple(blobs), tuple(sigs))
        )

    def masked_input(
        self, req: MaskedInputRequest, update: npt.NDArray[np.floating], weight: int
    ) -> MaskedInput | ShareComplaint:
        """Stage 2: quantise ``weight * update``, mask it, bit-pack it.

        ``update`` is the flattened float update (``dim`` values) and ``weight``
        a non-negative integer (number of examples, clipped to ``max_weight``).
        NaN or infinite updates raise ``DataError`` before anything is masked.
        If a relayed share does not open, the reply is a :class:`ShareComplaint`
        naming its sender, and the client leaves the key set.
        """
        self._check_masked_request(req)
        if update.shape != (req.dim,):
            raise DataError(f"update has shape {update.shape}, expected ({req.dim},)")
        w = self._weight(weight)
        fresh, accused = self._decrypt_shares(req)
        if accused:
            return self._complain(req, accused)
        quantizer = round_quantizer(self.s.config, len(req.participants))
        ring = quantizer.quantize(update.astype(np.float32, copy=False), w)
        return self._mask(req, ring, w, fresh)

    def masked_ring_input(
        self,
        req: MaskedInputRequest,
        values: npt.NDArray[np.unsignedinteger],
        weight: int,
    ) -> MaskedInput | ShareComplaint:
        """Stage 2 for inputs already encoded in Z_{2^k} (e.g. distributed DP).

        ``values`` holds ``dim`` unsigned integers below ``2^bits``; they are
        masked as they are (no quantisation), and the server's
        ``AggregateResult.ring_sum`` is their sum modulo ``2^bits``.
        """
        self._check_masked_request(req)
        if values.shape != (req.dim,) or values.dtype.kind != "u":
            raise DataError("ring input must be an unsigned vector of length dim")
        if values.size and int(values.max()) >> self.s.config.bits:
            raise DataError("ring input has values of more than `bits` bits")
        w = self._weight(weight)
        fresh, accused = self._decrypt_shares(req)
        if accused:
            return self._complain(req, accused)
        return self._mask(req, values.astype(np.uint32), w, fresh)

    def _check_masked_request(self, req: MaskedInputRequest) -> None:
        s = self.s
        stage = Stage.MASKED_INPUT.value
        self._check_key_set(req.key_set, Stage.MASKED_INPUT)
        if req.round <= s.round or req.slot <= s.slot:
            raise ServerReplayError("round or slot did not grow (replay)", stage=stage)
        if req.slot >= s.config.rounds_per_key_set:
            raise ServerReplayError("slot beyond the key set", stage=stage)
        if s.node_id not in req.participants:
            raise MaliciousServerError("participants exclude this client", stage=stage)
        if not set(req.participants) <= set(s.nodes):
            raise MaliciousServerError("participant outside the key set", stage=stage)

    def _weight(self, weight: int) -> int:
        if isinstance(weight, bool) or not isinstance(weight, int | np.integer):
            raise DataError("weight must be an integer (number of examples)")
        if weight < 0:
            raise DataError("weight must be non-negative")
        return min(int(weight), self.s.config.max_weight)

    def _complain(self, req: MaskedInputRequest, accused: list[int]) -> ShareComplaint:
        """Name the senders whose shares fail; leave the key set.

        The share-encryption key proves it while no masked input of this key
        set has left the client (``slot < 0``): it opens the shares the client
        sent and received, which then protect nothing, because the client
        masks nothing more in this key set.
        """
        s = self.s
        proof = s.cipher_sk if s.slot < 0 else b""
        self._transition(Stage.MASKED_INPUT)
        out = ShareComplaint(
            s.key_set, req.round, req.slot, tuple(sorted(accused)), proof
        )
        s.round, s.slot = req.round, req.slot
        s.cipher_sk, s.mask_sks, s.seeds = b"", [], []
        s.stage = Stage.IDLE  # only a new key set (advertise) is accepted now
        return self._reply(out)

    def _mask(
        self,
        req: MaskedInputRequest,
        ring: npt.NDArray[np.uint32],
        weight: int,
        fresh: dict[int, bytes],
    ) -> MaskedInput:
        """Add the self mask and the pairwise masks; commit state; pack."""
        s = self.s
        mates = [v for v in req.participants if v in s.peers and v != s.node_id]
        if len(mates) + 1 < s.threshold:
            raise MaliciousServerError(
                "fewer participating neighbours than t", stage=Stage.MASKED_INPUT.value
            )
        if any(s.peers[v].share is None and v not in fresh for v in mates):
            raise MaliciousServerError("no shares from a participating neighbour")
        vec = np.empty(req.dim + 1, dtype=np.uint32)
        vec[: req.dim] = ring
        vec[req.dim] = weight
        prg = thread_generator()
        mask_sk = s.mask_sks[req.slot]
        own = ks.self_mask_seed(
            s.seeds[req.slot], s.key_set, req.round, req.slot, s.node_id
        )
        prg.add_into(vec, own)
        peers = [(v, ks.mask_public(s.peers[v].mask_pks, req.slot)) for v in mates]
        seeds = self._agree(
            ks.pairwise_seeds, mask_sk, s.node_id, peers, s.key_set, req.round, req.slot
        )
        for v, seed in zip(mates, seeds, strict=True):
            if s.node_id < v:
                prg.add_into(vec, seed)
            else:
                prg.sub_into(vec, seed)
        masked_weight = int(vec[req.dim])
        body = vec[: req.dim]
        np.bitwise_and(body, np.uint32((1 << s.config.bits) - 1), out=body)
        self._enter(Stage.MASKED_INPUT)
        for v, plain in fresh.items():
            s.peers[v].share = plain
        s.round, s.slot, s.participants = req.round, req.slot, req.participants
        s.survivors = ()
        return self._reply(
            MaskedInput(
                s.key_set, req.round, req.slot, pack(body, s.config.bits), masked_weight
            )
        )

    def consistency_check(self, req: ConsistencyRequest) -> ConsistencyResponse:
        """Stage 3 (active variant): sign the survivor set after checking it."""
        s = self.s
        self._check_round(req.key_set, req.round, req.slot, Stage.CONSISTENCY_CHECK)
        self._check_survivors(req.survivors, Stage.CONSISTENCY_CHECK)
        if s.signing_key is None:
            raise CryptoError("the active variant needs a signing key")
        self._enter(Stage.CONSISTENCY_CHECK)
        s.survivors = req.survivors
        statement = ks.consistency_statement(s.key_set, s.round, s.slot, req.survivors)
        return self._reply(
            ConsistencyResponse(
                s.key_set, s.round, s.slot, signatures.sign(s.signing_key, statement)
            )
        )

    def unmask(self, req: UnmaskRequest) -> UnmaskResponse:
        """Stage 4: reveal self-seed shares of survivors, key shares of dropouts."""
        s = self.s
        stage = Stage.UNMASK.value
        self._check_round(req.key_set, req.round, req.slot, Stage.UNMASK)
        self._check_survivors(req.survivors, Stage.UNMASK)
        survivors, dropped = set(req.survivors), set(req.dropped)
        if survivors & dropped:
            raise MaliciousServerError(
                "a node is listed as survivor and dropout", stage=stage
            )
        if survivors | dropped != set(s.participants):
            raise MaliciousServerError(
                "survivors and dropouts do not partition the participants", stage=stage
            )
        if s.config.active:
            if req.survivors != s.survivors:
                raise MaliciousServerError(
                    "survivor set differs from the signed one", stage=stage
                )
            closed = set(s.neighbours) | {s.node_id}
            if not set(req.signers) <= survivors:
                raise MaliciousServerError(
                    "consistency signatures of non-survivors", stage=stage
                )
            if len(set(req.signers) & closed) < s.threshold:
                # whose, not how many: t of this client's own neighbourhood
                raise MaliciousServerError(
                    "fewer than t consistency signatures from this client's "
                    "neighbourhood",
                    stage=stage,
                )
            statement = ks.consistency_statement(
                s.key_set, s.round, s.slot, req.survivors
            )
            for node, sig in zip(req.signers, req.signatures, strict=True):
                self._verify(node, statement, sig)
        plan = [
            (v, ks.SEED_KIND if v in survivors else ks.KEY_KIND)
            for v in sorted(set(s.peers) & set(s.participants))
        ]
        for v, kind in plan:  # check every peer before revealing anything
            s.peers[v].check_reveal(s.slot, kind, v)
        self._transition(Stage.UNMASK)
        seed_peers, seed_shares, key_peers, key_shares = [], [], [], []
        for v, kind in plan:
            peer = s.peers[v]
            peer.reveal(s.slot, kind, v)
            share = ks.share_slice(peer.share or b"", s.slot, kind)
            if kind == ks.SEED_KIND:
                seed_peers.append(v)
                seed_shares.append(share)
            else:
                key_peers.append(v)
                key_shares.append(share)
        self._enter(Stage.UNMASK)
        return self._reply(
            UnmaskResponse(
                s.key_set,
                s.round,
                s.slot,
                tuple(seed_peers),
                tuple(seed_shares),
                tuple(key_peers),
                tuple(key_shares),
            )
        )

    # ---------------------------------------------------------------- helpers
    def _check_policy(self, num_nodes: int) -> None:
        """Refuse a key set weaker than the site's policy (see advertise)."""
        cfg = self.s.config
        self.policy.require_mode(cfg.variant.value)
        self.policy.require_sites(num_nodes, "sites in the key set")
        self.policy.require_threshold(
            cfg.threshold_for(num_nodes),
            cfg.degree_for(num_nodes) + 1,
            active=cfg.active,
        )

    def _sparse(self) -> bool:
        return self.s.config.graph_for(len(self.s.nodes)) is GraphKind.SPARSE

    def _graph_neighbours(self, req: ShareKeysRequest) -> tuple[int, ...]:
        """This client's neighbours: fixed (complete) or from the revealed nonces."""
        s = self.s
        stage = Stage.SHARE_KEYS.value
        if not self._sparse():
            if req.contributors or req.nonces:
                raise MaliciousServerError(
                    "graph nonces for a complete graph", stage=stage
                )
            return s.neighbours
        if s.stage is not Stage.SEED_REVEAL:
            raise MaliciousServerError(
                "keys to share before the graph nonces were revealed", stage=stage
            )
        commits = [
            commitment(nonce, s.key_set, u)
            for u, nonce in zip(req.contributors, req.nonces, strict=True)
        ]
        if commitments_digest(req.contributors, commits) != s.commitments_digest:
            raise MaliciousServerError(
                "revealed graph nonces do not match the commitments", stage=stage
            )
        derived = dict(zip(req.contributors, commits, strict=True))
        if any(
            derived.get(u) != c for u, c in zip(req.nodes, req.commitments, strict=True)
        ):
            raise MaliciousServerError(
                "keys of a site that did not contribute to the graph", stage=stage
            )
        cfg = s.config
        seed = graph_seed(
            cfg.graph_seed, s.key_set, s.nodes, req.contributors, req.nonces
        )
        graph = neighbours(s.nodes, cfg.degree_for(len(s.nodes)), seed)
        return graph[s.node_id]

    def _enter(self, stage: Stage) -> None:
        self._transition(stage)
        self.s.stage = stage

    def _transition(self, stage: Stage) -> None:
        try:
            check_transition(self.s.stage, stage, active=self.s.config.active)
        except StageError as exc:
            raise ServerReplayError(exc.reason, stage=stage.value) from exc

    def _reply(self, msg: _R) -> _R:
        key = msg.STAGE.value
        sent = self.s.bytes_sent
        sent[key] = sent.get(key, 0) + record_nbytes(msg.to_record())
        return msg

    def _check_key_set(self, key_set: int, stage: Stage) -> None:
        self._transition(stage)
        if key_set != self.s.key_set:
            raise ServerReplayError("message for another key set", stage=stage.value)

    def _check_round(self, key_set: int, rnd: int, slot: int, stage: Stage) -> None:
        self._check_key_set(key_set, stage)
        if (rnd, slot) != (self.s.round, self.s.slot):
            raise ServerReplayError(
                "message for another round (replay)", stage=stage.value
            )

    def _check_survivors(self, survivors: tuple[int, ...], stage: Stage) -> None:
        s = self.s
        if s.node_id not in survivors:
            raise MaliciousServerError(
                "survivor set excludes this client", stage=stage.value
            )
        if not set(survivors) <= set(s.participants):
            raise MaliciousServerError(
                "survivor outside the participants", stage=stage.value
            )
        if len(survivors) < s.threshold:
            raise MaliciousServerError(
                "fewer survivors than the threshold", stage=stage.value
            )

    @staticmethod
    def _agree(derive: Callable[..., _T], *args: object) -> _T:
        """Run a key agreement; a malformed server-supplied key is malicious."""
        try:
            return derive(*args)
        except CryptoError as exc:
            raise MaliciousServerError("invalid public key from the server") from exc

    def _verify(self, node: int, statement: bytes, signature: bytes) -> None:
        key = self.s.verify_keys.get(node)
        if key is None:
            raise MaliciousServerError("no registered verification key", node_id=node)
        try:
            signatures.verify(key, statement, signature)
        except CryptoError as exc:
            raise MaliciousServerError(
                "bad signature (swapped or forged key)", node_id=node
            ) from exc

    def _decrypt_shares(
        self, req: MaskedInputRequest
    ) -> tuple[dict[int, bytes], list[int]]:
        """Open the relayed shares not yet held: ``(fresh, accused)``.

        In the active variant every relayed share must carry its sender's
        signature (the server checked it on receipt; a bad one here means the
        server altered it). A signed share that does not open is its sender's
        fault: the sender is *accused* instead of the server blamed.
        """
        s = self.s
        fresh: dict[int, bytes] = {}
        accused: list[int] = []
        expected = ks.share_plaintext_bytes(s.config.rounds_per_key_set)
        if s.config.active and len(req.share_signatures) != len(req.senders):
            raise MaliciousServerError(
                "relayed shares without their senders' signatures",
                stage=Stage.MASKED_INPUT.value,
            )
        sigs = req.share_signatures or (b"",) * len(req.senders)
        for sender, blob, sig in zip(req.senders, req.ciphertexts, sigs, strict=True):
            peer = s.peers.get(sender)
            if peer is None or sender == s.node_id:
                raise MaliciousServerError("share from a non-neighbour", node_id=sender)
            if peer.share is not None:
                continue  # already delivered in an earlier round of this key set
            if s.config.active:
                self._verify(
                    sender, ks.share_statement(s.key_set, sender, s.node_id, blob), sig
                )
            key = self._agree(
                ks.share_key, s.cipher_sk, peer.cipher_pk, s.key_set, s.node_id, sender
            )
            try:
                plain = aead.decrypt(
                    key, blob, ks.share_aad(s.key_set, sender, s.node_id)
                )
                ks.decode_share(plain, expected // 4)
            except CryptoError:
                accused.append(sender)
                continue
            fresh[sender] = plain
        return fresh, accused
