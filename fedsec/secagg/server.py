"""Server state machine of secure aggregation (sans-I/O).

Follows Bonawitz et al., "Practical Secure Aggregation for Privacy-Preserving
Machine Learning" (CCS 2017) with the sparse graph of Bell et al. (CCS 2020)
and key reuse (:mod:`fedsec.secagg.keyschedule`). The transport calls
:meth:`SecAggServer.begin_setup` or :meth:`SecAggServer.begin_round`, sends the
returned requests, feeds each reply to :meth:`SecAggServer.handle` and, when
the stage's replies are in (or the timeout passed), calls
:meth:`SecAggServer.advance` for the next requests; an empty dict means the
setup or the round is complete. A node that does not answer in time is a
dropout of that stage. A malformed or unexpected reply raises a
``ProtocolError`` and leaves the state unchanged (the node counts as dropped).

Thresholds are checked before any request that makes clients reveal shares,
so that an abort (``AbortError``, logged) reveals nothing; only dropouts
*during* the unmask stage can abort after some (fewer than t per secret)
shares were revealed. A failed setup discards the key set; a failed round only
burns its slot, whose secrets are never used again, and the key set goes on.

With a sparse graph, set-up has a third stage: the clients reveal the graph
nonces they committed to while advertising, and the graph follows from them
(:mod:`fedsec.secagg.graph`); a contributor that does not reveal discards the
key set. Malicious clients are held to account: share ciphertexts are signed
by their senders in the active variant, a client that cannot open one sends a
:class:`~fedsec.secagg.messages.ShareComplaint` with the key that proves it,
and the server, having checked it, excludes the sender (or a false accuser)
from every later key set (:attr:`SecAggServer.excluded`). A result whose
total weight exceeds survivors × ``max_weight`` (crafted shares) aborts with
:class:`~fedsec.secagg.errors.ImplausibleSumError`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import NoReturn, TypeVar

import numpy as np

from fedsec.crypto import aead, signatures
from fedsec.crypto.kdf import X25519KeyPair
from fedsec.crypto.packing import packed_size, padded_length, unpack_add
from fedsec.crypto.prg import MaskGenerator
from fedsec.errors import AbortError, ConfigError, CryptoError
from fedsec.secagg import keyschedule as ks
from fedsec.secagg.config import GraphKind, SecAggConfig
from fedsec.secagg.errors import ImplausibleSumError, MessageFormatError, StageError
from fedsec.secagg.graph import commitment, graph_seed, neighbours
from fedsec.secagg.messages import (
    AdvertiseKeys,
    AdvertiseKeysRequest,
    ClientMessage,
    ConsistencyRequest,
    ConsistencyResponse,
    MaskedInput,
    MaskedInputRequest,
    Message,
    SeedReveal,
    SeedRevealRequest,
    ServerMessage,
    ShareComplaint,
    ShareKeys,
    ShareKeysRequest,
    UnmaskRequest,
    UnmaskResponse,
)
from fedsec.secagg.records import record_nbytes
from fedsec.secagg.rounds import WEIGHT_MODULUS, round_quantizer
from fedsec.secagg.server_state import (
    AggregateResult,
    KeySetState,
    RoundState,
    StageMetrics,
)
from fedsec.secagg.stages import Stage
from fedsec.secagg.unmasking import UnmaskError, unmask_sum

log = logging.getLogger(__name__)

_M = TypeVar("_M", bound=Message)
_SETUP = (Stage.ADVERTISE_KEYS, Stage.SEED_REVEAL, Stage.SHARE_KEYS)
# unmasking asks for t·(1 + UNMASK_SPARE) shares of each secret, not n
UNMASK_SPARE = 0.25


class SecAggServer:
    """The aggregation server: drives key sets and rounds, sums masked inputs.

    Parameters
    ----------
    config
        Public protocol parameters (equal on every party).
    verify_keys
        Node id -> Ed25519 verification key (active variant), registered out
        of band; clients whose signatures fail are treated as dropped.
    """

    def __init__(
        self, config: SecAggConfig, *, verify_keys: Mapping[int, bytes] | None = None
    ) -> None:
        self.config = config
        self.verify_keys = dict(verify_keys or {})
        self.metrics = StageMetrics()
        self._stage = Stage.IDLE
        self._ks: KeySetState | None = None
        self._rnd: RoundState | None = None
        self._last_key_set = 0
        self._last_round = -1
        self._result: AggregateResult | None = None
        self._replied: set[int] = set()
        self._waiting: frozenset[int] = frozenset()
        self._again = False
        self._prg = MaskGenerator()
        # node -> why it takes part in no later key set (proven misbehaviour)
        self.excluded: dict[int, str] = {}

    # ------------------------------------------------------------ inspection
    @property
    def stage(self) -> Stage:
        """The stage whose replies are being collected (``IDLE`` if none)."""
        return self._stage

    @property
    def waiting_for(self) -> frozenset[int]:
        """Nodes whose reply to the current stage has not arrived yet."""
        return self._waiting - self._replied

    def stage_complete(self) -> bool:
        """True when the current stage needs no more replies.

        Unmasking is complete once every secret to reveal has ``t`` shares:
        the transport may then stop waiting for the remaining (spare)
        replies. Every other stage takes all the replies that come in time.
        """
        r, k = self._rnd, self._ks
        if self._stage is not Stage.UNMASK or r is None or k is None:
            return False
        return not self._short_of_shares(r, k)

    def needs_setup(self) -> bool:
        """True if the next round must start with a new key set."""
        k = self._ks
        if k is None or not k.ready or k.next_slot >= self.config.rounds_per_key_set:
            return True
        if k.compromised or set(self.excluded) & k.shared:
            return True
        return len(k.prune(k.shared)) < k.threshold

    def result(self) -> AggregateResult:
        """The result of the last completed round."""
        if self._result is None:
            raise StageError("no completed round")
        return self._result

    # ----------------------------------------------------------------- setup
    def begin_setup(self, node_ids: Sequence[int]) -> dict[int, AdvertiseKeysRequest]:
        """Start a new key set among ``node_ids``; returns the advertise requests.

        Nodes in :attr:`excluded` are left out.
        """
        nodes = tuple(sorted(set(node_ids) - set(self.excluded)))
        if any(not 0 <= u < 2**64 for u in nodes):
            raise ConfigError("node ids must be in [0, 2^64)")
        if len(nodes) < 2:
            raise AbortError("need at least two clients", stage="advertise_keys")
        self._last_key_set += 1
        cfg = self.config
        sparse = cfg.graph_for(len(nodes)) is GraphKind.SPARSE
        k = KeySetState(
            key_set=self._last_key_set,
            nodes=nodes,
            # the complete graph needs no seed; a sparse one waits for the nonces
            graph={} if sparse else neighbours(nodes, len(nodes) - 1, b""),
            threshold=cfg.threshold_for(len(nodes)),
            sparse=sparse,
        )
        self._ks, self._rnd = k, None
        self.metrics = StageMetrics()
        req = AdvertiseKeysRequest(k.key_set, nodes)
        return self._open(Stage.ADVERTISE_KEYS, {u: req for u in nodes})

    def handle(self, node_id: int, msg: ClientMessage) -> None:
        """Accept one client reply (dispatches on its type)."""
        if msg.STAGE is not self._stage:
            raise StageError(f"{msg.TAG} outside its stage", node_id=node_id)
        if node_id not in self._waiting or node_id in self._replied:
            raise StageError("unexpected or repeated reply", node_id=node_id)
        k = self._ks
        if k is None or msg.key_set != k.key_set:
            raise StageError("reply for another key set", node_id=node_id)
        if isinstance(msg, AdvertiseKeys):
            self._on_advertise(node_id, msg, k)
        elif isinstance(msg, SeedReveal):
            self._on_reveal(node_id, msg, k)
        elif isinstance(msg, ShareKeys):
            self._on_share(node_id, msg, k)
        else:
            self._on_round_message(node_id, msg)
        self._replied.add(node_id)
        key = self._stage.value
        self.metrics.bytes_received[key] = self.metrics.bytes_received.get(
            key, 0
        ) + record_nbytes(msg.to_record())

    def handle_advertise_keys(self, node_id: int, msg: AdvertiseKeys) -> None:
        """Accept one client's advertised keys (stage 0)."""
        self.handle(node_id, msg)

    def handle_share_keys(self, node_id: int, msg: ShareKeys) -> None:
        """Accept one client's encrypted shares (stage 1)."""
        self.handle(node_id, msg)

    def handle_masked_input(self, node_id: int, msg: MaskedInput) -> None:
        """Accept and accumulate one client's masked input (stage 2)."""
        self.handle(node_id, msg)

    def handle_consistency_check(self, node_id: int, msg: ConsistencyResponse) -> None:
        """Accept one client's signature over the survivor set (stage 3, active)."""
        self.handle(node_id, msg)

    def handle_unmask(self, node_id: int, msg: UnmaskResponse) -> None:
        """Accept one client's unmasking shares (stage 4)."""
        self.handle(node_id, msg)

    def advance(self) -> dict[int, ServerMessage]:
        """Close the current stage; return the next requests (empty when done).

        Raises
        ------
        AbortError
            If too few clients remain; the key set is discarded (logged).
        """
        stage = self._stage
        m, key = self.metrics, stage.value
        again = self._again
        m.replies[key] = len(self._replied) + (m.replies.get(key, 0) if again else 0)
        missing = len(self._waiting - self._replied)
        spared = missing if self.stage_complete() else 0  # spares not needed
        m.not_awaited[key] = spared + (m.not_awaited.get(key, 0) if again else 0)
        m.dropouts[key] = missing - spared + (m.dropouts.get(key, 0) if again else 0)
        if stage is Stage.ADVERTISE_KEYS:
            return self._after_advertise()
        if stage is Stage.SEED_REVEAL:
            return dict(self._after_reveal())
        if stage is Stage.SHARE_KEYS:
            self._after_share()
            return {}
        if stage is Stage.MASKED_INPUT:
            return self._after_masked()
        if stage is Stage.CONSISTENCY_CHECK:
            return dict(self._after_consistency())
        if stage is Stage.UNMASK:
            return dict(self._after_unmask())
        raise StageError("nothing to advance")

    # ----------------------------------------------------------------- round
    def begin_round(
        self, rnd: int, dim: int, node_ids: Iterable[int] | None = None
    ) -> dict[int, MaskedInputRequest]:
        """Start round ``rnd`` on a ``dim``-vector; returns masked-input requests.

        ``node_ids`` restricts the participants (default: every client of the
        key set). The first request a client gets in a key set carries the
        encrypted shares addressed to it.
        """
        k = self._ks
        if self.needs_setup() or k is None:
            raise StageError("a new key set is needed before this round")
        if rnd <= self._last_round:
            raise StageError("round number did not grow")
        if dim < 1:
            raise StageError("dim must be positive")
        pool = k.shared if node_ids is None else k.shared & set(node_ids)
        participants = tuple(sorted(k.prune(pool)))
        if len(participants) < k.threshold:
            raise AbortError("fewer live clients than the threshold", stage="round")
        self._last_round = rnd
        self._rnd = RoundState(
            round=rnd,
            slot=k.next_slot,
            dim=dim,
            participants=participants,
            quantizer=round_quantizer(self.config, len(participants)),
            acc=np.zeros(padded_length(dim), dtype=np.uint32),
        )
        k.next_slot += 1
        self._result = None
        requests = {}
        for u in participants:
            relay = {} if u in k.delivered else k.ciphertexts.get(u, {})
            senders = tuple(sorted(s for s in relay if s in k.shared))
            requests[u] = MaskedInputRequest(
                k.key_set,
                rnd,
                self._rnd.slot,
                dim,
                participants,
                senders,
                tuple(relay[s][0] for s in senders),
                tuple(relay[s][1] for s in senders) if self.config.active else (),
            )
        return self._open(Stage.MASKED_INPUT, requests)

    # ------------------------------------------------------- stage handlers
    def _on_advertise(self, node: int, msg: AdvertiseKeys, k: KeySetState) -> None:
        if len(msg.mask_pks) != 32 * self.config.rounds_per_key_set:
            raise MessageFormatError("wrong number of mask keys", node_id=node)
        if self.config.active:
            self._verify(
                node,
                ks.advertise_statement(
                    k.key_set, node, msg.cipher_pk, msg.mask_pks, msg.commitment
                ),
                msg.signature,
            )
        k.adverts[node] = msg

    def _after_advertise(self) -> dict[int, ServerMessage]:
        k = self._require_ks()
        if not k.sparse:
            k.advertised = k.prune(self._replied)
            if len(k.advertised) < k.threshold:
                self._abort("too few clients advertised keys", Stage.ADVERTISE_KEYS)
            return dict(self._share_requests())
        # sparse: fix the contributors, then collect the nonces behind them
        k.contributors = tuple(sorted(self._replied))
        if len(k.contributors) < k.threshold:
            self._abort("too few clients advertised keys", Stage.ADVERTISE_KEYS)
        req = SeedRevealRequest(
            k.key_set,
            k.contributors,
            tuple(k.adverts[u].commitment for u in k.contributors),
        )
        return dict(self._open(Stage.SEED_REVEAL, dict.fromkeys(k.contributors, req)))

    def _on_reveal(self, node: int, msg: SeedReveal, k: KeySetState) -> None:
        if commitment(msg.nonce, k.key_set, node) != k.adverts[node].commitment:
            raise MessageFormatError(
                "nonce does not match its commitment", node_id=node
            )
        k.nonces[node] = msg.nonce

    def _after_reveal(self) -> dict[int, ShareKeysRequest]:
        k = self._require_ks()
        if set(k.nonces) != set(k.contributors):
            # the seed must not depend on whose nonce the server chose to keep
            self._abort(
                "a contributor did not reveal its graph nonce", Stage.SEED_REVEAL
            )
        nonces = [k.nonces[u] for u in k.contributors]
        seed = graph_seed(
            self.config.graph_seed, k.key_set, k.nodes, k.contributors, nonces
        )
        k.graph = neighbours(k.nodes, self.config.degree_for(len(k.nodes)), seed)
        k.advertised = k.prune(k.contributors)
        if len(k.advertised) < k.threshold:
            self._abort("too few clients advertised keys", Stage.SEED_REVEAL)
        return self._share_requests()

    def _share_requests(self) -> dict[int, ShareKeysRequest]:
        k = self._require_ks()
        nonces = tuple(k.nonces[u] for u in k.contributors) if k.sparse else ()
        contributors = k.contributors if k.sparse else ()
        requests = {}
        for u in sorted(k.advertised):
            peers = sorted(k.closed(u) & k.advertised)
            requests[u] = ShareKeysRequest(
                k.key_set,
                tuple(peers),
                tuple(k.adverts[v].cipher_pk for v in peers),
                tuple(k.adverts[v].mask_pks for v in peers),
                tuple(k.adverts[v].commitment for v in peers),
                tuple(k.adverts[v].signature for v in peers),
                contributors,
                nonces,
            )
        return self._open(Stage.SHARE_KEYS, requests)

    def _on_share(self, node: int, msg: ShareKeys, k: KeySetState) -> None:
        expected = tuple(sorted((k.closed(node) & k.advertised) - {node}))
        if msg.recipients != expected:
            raise MessageFormatError("shares for the wrong recipients", node_id=node)
        size = ks.share_plaintext_bytes(self.config.rounds_per_key_set) + aead.OVERHEAD
        if any(len(c) != size for c in msg.ciphertexts):
            raise MessageFormatError("share ciphertext of the wrong size", node_id=node)
        sigs = msg.signatures or (b"",) * len(msg.recipients)
        if self.config.active:
            if len(msg.signatures) != len(msg.recipients):
                raise MessageFormatError("unsigned share ciphertexts", node_id=node)
            for v, blob, sig in zip(msg.recipients, msg.ciphertexts, sigs, strict=True):
                self._verify(node, ks.share_statement(k.key_set, node, v, blob), sig)
        for v, blob, sig in zip(msg.recipients, msg.ciphertexts, sigs, strict=True):
            k.ciphertexts.setdefault(v, {})[node] = (blob, sig)

    def _after_share(self) -> None:
        k = self._require_ks()
        k.shared = k.prune(self._replied)
        if len(k.shared) < k.threshold:
            self._abort("too few clients shared keys", Stage.SHARE_KEYS)
        k.ready = True
        self._close()

    def _on_round_message(self, node: int, msg: ClientMessage) -> None:
        r = self._require_round()
        if not isinstance(
            msg, MaskedInput | ShareComplaint | ConsistencyResponse | UnmaskResponse
        ):
            raise StageError("not a round message", node_id=node)
        if (msg.round, msg.slot) != (r.round, r.slot):
            raise StageError("reply for another round", node_id=node)
        if isinstance(msg, ShareComplaint):
            self._on_complaint(node, msg, r, self._require_ks())
        elif isinstance(msg, MaskedInput):
            if len(msg.data) != packed_size(r.dim, self.config.bits):
                raise MessageFormatError("masked input of the wrong size", node_id=node)
            unpack_add(msg.data, self.config.bits, r.acc)
            r.weight = (r.weight + msg.masked_weight) % WEIGHT_MODULUS
            r.received.add(node)
            r.arrival.append(node)
            self._require_ks().delivered.add(node)
        elif isinstance(msg, ConsistencyResponse):
            statement = ks.consistency_statement(
                msg.key_set, r.round, r.slot, r.survivors
            )
            self._verify(node, statement, msg.signature)
            r.signatures[node] = msg.signature
        else:
            self._on_unmask(node, msg, r)

    def _on_complaint(
        self, node: int, msg: ShareComplaint, r: RoundState, k: KeySetState
    ) -> None:
        """Check a complaint; exclude the proven culprit from later key sets.

        With the complainer's share-encryption key the server opens the very
        ciphertexts it relayed: one that does not open proves its sender sent
        garbage (and, in the active variant, its signature proves it is the
        sender's); one that opens proves the complainer lied. A complaint
        without the key proves nothing and only makes the complainer a
        dropout. Either way the complainer has left the key set.
        """
        k.compromised = True
        r.complaints[node] = msg.accused
        relayed = k.ciphertexts.get(node, {})
        if any(u not in relayed for u in msg.accused):
            self.excluded[node] = "accused a site that sent it no share"
            return
        if not msg.cipher_sk:
            log.warning(
                "secagg: node %d cannot open the shares of %s (no proof given)",
                node,
                list(msg.accused),
            )
            return
        try:
            own = X25519KeyPair.from_secret(msg.cipher_sk).public
        except CryptoError:
            own = b""
        if own != k.adverts[node].cipher_pk:
            self.excluded[node] = "complained with a key that is not its own"
            return
        for sender in msg.accused:
            blob = relayed[sender][0]
            try:
                key = ks.share_key(
                    msg.cipher_sk, k.adverts[sender].cipher_pk, k.key_set, node, sender
                )
                plain = aead.decrypt(key, blob, ks.share_aad(k.key_set, sender, node))
                ks.decode_share(
                    plain, ks.share_plaintext_bytes(self.config.rounds_per_key_set) // 4
                )
            except CryptoError:
                self.excluded[sender] = (
                    f"its share for node {node} does not open (proven by node {node})"
                )
                continue
            self.excluded[node] = f"falsely accused node {sender}"
        for culprit in set(self.excluded) & ({node, *msg.accused}):
            log.warning(
                "secagg: node %d is excluded from later key sets: %s",
                culprit,
                self.excluded[culprit],
            )

    def _after_masked(self) -> dict[int, ServerMessage]:
        r = self._require_round()
        r.survivors = tuple(sorted(r.received))
        r.dropped = tuple(sorted(set(r.participants) - r.received))
        self._check_recoverable(frozenset(r.received), Stage.MASKED_INPUT)
        k = self._require_ks()
        if self.config.active:
            req = ConsistencyRequest(k.key_set, r.round, r.slot, r.survivors)
            return dict(
                self._open(Stage.CONSISTENCY_CHECK, dict.fromkeys(r.survivors, req))
            )
        return dict(self._open_unmask(frozenset(r.survivors)))

    def _after_consistency(self) -> dict[int, UnmaskRequest]:
        r, k = self._require_round(), self._require_ks()
        signers = tuple(sorted(r.signatures))
        # a client unmasks only with t signatures from its own neighbourhood
        eligible = frozenset(
            u for u in signers if len(k.closed(u) & set(signers)) >= k.threshold
        )
        self._check_recoverable(eligible, Stage.CONSISTENCY_CHECK)
        return self._open_unmask(
            eligible, signers, tuple(r.signatures[s] for s in signers)
        )

    def _open_unmask(
        self,
        recipients: frozenset[int],
        signers: tuple[int, ...] = (),
        sigs: tuple[bytes, ...] = (),
    ) -> dict[int, UnmaskRequest]:
        r = self._require_round()
        r.recipients = recipients
        r.signers = signers
        r.signer_sigs = sigs
        spare = math.ceil(UNMASK_SPARE * self._require_ks().threshold)
        return self._ask_unmask(self._pick_unmaskers(r, spare))

    def _ask_unmask(self, nodes: Sequence[int]) -> dict[int, UnmaskRequest]:
        r, k = self._require_round(), self._require_ks()
        r.asked.update(nodes)
        req = UnmaskRequest(
            k.key_set, r.round, r.slot, r.survivors, r.dropped, r.signers, r.signer_sigs
        )
        return self._open(Stage.UNMASK, dict.fromkeys(nodes, req))

    def _pick_unmaskers(self, r: RoundState, spare: int) -> list[int]:
        """Recipients not asked yet, so that every secret gets ``t + spare`` holders.

        Only ``t`` shares of each secret are needed, so not every survivor is
        asked: candidates are taken in the order their masked inputs arrived
        (the fastest first) while they hold a share that is still short. The
        ``spare`` holders per secret absorb dropouts during unmasking; if more
        drop, :meth:`advance` asks the survivors not asked yet.
        """
        k = self._require_ks()
        targets = set(r.survivors) | set(r.dropped)
        want = k.threshold + spare
        have = {v: len(k.closed(v) & r.responders) for v in targets}
        chosen = []
        for u in r.arrival:
            if u not in r.recipients or u in r.asked:
                continue
            holds = k.closed(u) & targets
            if any(have[v] < want for v in holds):
                chosen.append(u)
                for v in holds:
                    have[v] += 1
        return chosen

    def _on_unmask(self, node: int, msg: UnmaskResponse, r: RoundState) -> None:
        closed = self._require_ks().closed(node)
        if msg.seed_peers != tuple(sorted(closed & set(r.survivors))) or (
            msg.key_peers != tuple(sorted(closed & set(r.dropped)))
        ):
            raise MessageFormatError("shares for the wrong peers", node_id=node)
        blobs = (*msg.seed_shares, *msg.key_shares)
        try:  # one vectorised check of every share in the reply
            ks.decode_share(b"".join(blobs), ks.CHUNKS * len(blobs))
            if any(len(b) != ks.SHARE_BYTES for b in blobs):
                raise CryptoError("share has the wrong length")
        except CryptoError as exc:
            raise MessageFormatError("malformed share", node_id=node) from exc
        for v, blob in zip(msg.seed_peers, msg.seed_shares, strict=True):
            r.seed_shares.setdefault(v, {})[node] = blob
        for v, blob in zip(msg.key_peers, msg.key_shares, strict=True):
            r.key_shares.setdefault(v, {})[node] = blob
        r.responders.add(node)

    def _after_unmask(self) -> dict[int, UnmaskRequest]:
        r, k = self._require_round(), self._require_ks()
        if self._short_of_shares(r, k):
            more = self._pick_unmaskers(r, 0)
            if more:  # dropouts during unmasking: ask survivors not asked yet
                log.info("unmasking: %d more survivors asked for shares", len(more))
                return self._ask_unmask(more)
        try:
            result = unmask_sum(r, k, self._prg)
        except UnmaskError as exc:
            self._abort(exc.reason, Stage.UNMASK)
        bound = len(r.survivors) * self.config.max_weight
        if result.total_weight > bound:
            # no honest set of survivors weighs this much: a crafted share
            self._abort(
                f"recovered total weight {result.total_weight} exceeds survivors "
                f"x max_weight = {bound} (a crafted share?)",
                Stage.UNMASK,
                ImplausibleSumError,
            )
        self._result = result
        self._rnd = None
        self._close()
        return {}

    # --------------------------------------------------------------- helpers
    @staticmethod
    def _short_of_shares(r: RoundState, k: KeySetState) -> bool:
        """True if some secret to reveal has fewer than ``t`` shares."""
        t = k.threshold
        return any(len(r.seed_shares.get(v, {})) < t for v in r.survivors) or any(
            len(r.key_shares.get(u, {})) < t for u in r.dropped
        )

    def _check_recoverable(self, holders: frozenset[int], stage: Stage) -> None:
        """Abort unless every secret to reveal has ``t`` potential holders."""
        r, k = self._require_round(), self._require_ks()
        if len(r.survivors) < k.threshold:
            self._abort("fewer survivors than the threshold", stage)
        for target in r.participants:
            if len(k.closed(target) & holders) < k.threshold:
                self._abort("a neighbourhood has fewer than t survivors", stage)

    def _verify(self, node: int, statement: bytes, signature: bytes) -> None:
        key = self.verify_keys.get(node)
        try:
            if key is None:
                raise CryptoError("no verification key")
            signatures.verify(key, statement, signature)
        except CryptoError as exc:
            raise MessageFormatError("bad signature", node_id=node) from exc

    def _open(self, stage: Stage, requests: dict[int, _M]) -> dict[int, _M]:
        # a stage opened again (unmasking after dropouts) adds to its counters
        self._again = stage is self._stage
        self._stage = stage
        self._waiting = frozenset(requests)
        self._replied = set()
        sent = sum(record_nbytes(m.to_record()) for m in requests.values())
        m, key = self.metrics, stage.value
        m.bytes_sent[key] = sent + (m.bytes_sent.get(key, 0) if self._again else 0)
        if not self._again:
            m.bytes_received[key] = 0
        return requests

    def _close(self) -> None:
        self._stage = Stage.IDLE
        self._waiting = frozenset()
        self._replied = set()

    def _abort(
        self, reason: str, stage: Stage, kind: type[AbortError] = AbortError
    ) -> NoReturn:
        log.warning("secure aggregation aborted at %s: %s", stage.value, reason)
        if self._ks is not None and stage in _SETUP:
            self._ks.ready = False  # a failed round only burns its slot
        self._rnd = None
        self._close()
        raise kind(reason, stage=stage.value)

    def _require_ks(self) -> KeySetState:
        if self._ks is None:
            raise StageError("no key set")
        return self._ks

    def _require_round(self) -> RoundState:
        if self._rnd is None:
            raise StageError("no round in progress")
        return self._rnd
