"""The state of one client and its byte serialisation.

The state lives in Flower's ``context.state`` between messages, i.e. in the
SuperNode's memory only; it holds secret keys, so it must never leave the node.
The encoding is JSON with base64 for bytes (versioned, self-describing).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field, fields
from typing import Any

from fedsec.secagg.config import GraphKind, SecAggConfig, Variant
from fedsec.secagg.errors import MessageFormatError
from fedsec.secagg.peers import PeerState
from fedsec.secagg.stages import Stage

_VERSION = 1


@dataclass
class ClientState:
    """Everything a client remembers between messages."""

    node_id: int
    config: SecAggConfig
    signing_key: bytes | None = None
    verify_keys: dict[int, bytes] = field(default_factory=dict)
    stage: Stage = Stage.IDLE
    key_set: int = -1
    nodes: tuple[int, ...] = ()
    neighbours: tuple[int, ...] = ()
    threshold: int = 0
    cipher_sk: bytes = b""
    mask_sks: list[bytes] = field(default_factory=list)
    seeds: list[bytes] = field(default_factory=list)
    own_advert: tuple[bytes, bytes] = (b"", b"")
    peers: dict[int, PeerState] = field(default_factory=dict)
    round: int = -1
    slot: int = -1
    participants: tuple[int, ...] = ()
    survivors: tuple[int, ...] = ()
    bytes_sent: dict[str, int] = field(default_factory=dict)

    def reset_key_set(
        self, key_set: int, nodes: tuple[int, ...], nbrs: tuple[int, ...], t: int
    ) -> None:
        """Forget the previous key set; the global round counter is kept."""
        self.key_set, self.nodes, self.neighbours, self.threshold = (
            key_set,
            nodes,
            nbrs,
            t,
        )
        self.cipher_sk, self.mask_sks, self.seeds = b"", [], []
        self.own_advert = (b"", b"")
        self.peers = {}
        self.slot = -1
        self.participants, self.survivors = (), ()

    def x_of(self, node: int) -> int:
        """Public Shamir evaluation point of ``node``: 1 + its rank in the key set."""
        return 1 + self.nodes.index(node)


def _enc(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"b": base64.b64encode(value).decode()}
    if isinstance(value, Stage | GraphKind | Variant):
        return value.value
    if isinstance(value, PeerState):
        return {f.name: _enc(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return [[_enc(k), _enc(v)] for k, v in value.items()]
    if isinstance(value, list | tuple):
        return [_enc(v) for v in value]
    return value


def _dec_bytes(value: Any) -> bytes:
    return base64.b64decode(value["b"])


def dump_state(state: ClientState) -> bytes:
    """Serialise a client state."""
    cfg = {f.name: _enc(getattr(state.config, f.name)) for f in fields(state.config)}
    body = {f.name: _enc(getattr(state, f.name)) for f in fields(state)}
    body["config"] = cfg
    return json.dumps({"v": _VERSION, "state": body}).encode()


def load_state(data: bytes) -> ClientState:
    """Inverse of :func:`dump_state`; raises ``MessageFormatError`` if malformed."""
    try:
        doc = json.loads(data)
        if doc["v"] != _VERSION:
            raise MessageFormatError("unsupported client state version")
        b = doc["state"]
        c = b["config"]
        config = SecAggConfig(
            variant=Variant(c["variant"]),
            graph=GraphKind(c["graph"]),
            degree=c["degree"],
            threshold=c["threshold"],
            bits=c["bits"],
            clip=c["clip"],
            max_weight=c["max_weight"],
            rounds_per_key_set=c["rounds_per_key_set"],
            graph_seed=_dec_bytes(c["graph_seed"]),
        )
        peers = {
            int(k): PeerState(
                _dec_bytes(p["cipher_pk"]),
                _dec_bytes(p["mask_pks"]),
                None if p["share"] is None else _dec_bytes(p["share"]),
                {int(s): int(kind) for s, kind in p["revealed"]},
            )
            for k, p in b["peers"]
        }
        return ClientState(
            node_id=int(b["node_id"]),
            config=config,
            signing_key=None
            if b["signing_key"] is None
            else _dec_bytes(b["signing_key"]),
            verify_keys={int(k): _dec_bytes(v) for k, v in b["verify_keys"]},
            stage=Stage(b["stage"]),
            key_set=int(b["key_set"]),
            nodes=tuple(b["nodes"]),
            neighbours=tuple(b["neighbours"]),
            threshold=int(b["threshold"]),
            cipher_sk=_dec_bytes(b["cipher_sk"]),
            mask_sks=[_dec_bytes(x) for x in b["mask_sks"]],
            seeds=[_dec_bytes(x) for x in b["seeds"]],
            own_advert=(_dec_bytes(b["own_advert"][0]), _dec_bytes(b["own_advert"][1])),
            peers=peers,
            round=int(b["round"]),
            slot=int(b["slot"]),
            participants=tuple(b["participants"]),
            survivors=tuple(b["survivors"]),
            bytes_sent={str(k): int(v) for k, v in b["bytes_sent"]},
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise MessageFormatError("malformed client state") from exc
