"""The state of one client and its byte serialisation.

The state lives in Flower's ``context.state`` between messages, i.e. in the
SuperNode's memory only; it holds secret keys, so it must never leave the node.

The encoding is a compact versioned binary layout (all little-endian): the
magic ``b"FSCS"`` and a version byte, then every field in a fixed order.
Integers are ``i64`` (``u64`` for node ids, which lie in ``[0, 2^64)``), floats
``f64``; bytes and UTF-8 strings are a ``u32`` length and the data; an optional
value is a flag byte (0 or 1) and the value if the flag is 1; a tuple of node
ids is a ``u32`` count and a packed ``u64`` array; lists and dicts are a
``u32`` count and their items (dicts in insertion order). A verification key
is ``u64`` node id + bytes; a peer is a fixed header (``u64`` node id, ``u32``
lengths of ``cipher_pk`` and ``mask_pks``, share flag, ``u32`` share length,
``u32`` number of revealed slots) followed by that data and the revealed
``(slot, kind)`` pairs as ``i64`` pairs. Enums are written as their ``.value``
string, so new members need no change here.

:func:`load_state` refuses any malformed input (truncated, trailing bytes,
wrong magic or version, unknown enum value, bad flag or length, duplicate key)
with one opaque ``MessageFormatError``. Every count is checked against the
bytes left before anything is allocated, so a forged count costs nothing.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from fedsec.errors import ConfigError
from fedsec.secagg.config import GraphKind, SecAggConfig, Variant
from fedsec.secagg.errors import MessageFormatError
from fedsec.secagg.peers import PeerState
from fedsec.secagg.stages import Stage

_MAGIC = b"FSCS"
_VERSION = 3
_MALFORMED = "malformed client state"

_HEADER = struct.Struct("<4sB")
_U8 = struct.Struct("<B")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_I64_PAIR = struct.Struct("<qq")
# One verification key: node id, key length (the key follows).
_KEY_HEAD = struct.Struct("<QI")
# One peer: node id, lengths of cipher_pk and mask_pks, share flag, share
# length (0 without a share), number of revealed slots. Then the data, in order.
_PEER_HEAD = struct.Struct("<QIIBII")

# Smallest encoded size of one item of each counted collection: the bound that
# turns a forged count into an error before any allocation.
_MIN_BLOB = _U32.size
_MIN_COUNTER = _MIN_BLOB + _I64.size  # one bytes_sent entry

_K = TypeVar("_K")
_V = TypeVar("_V")


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
    graph_nonce: bytes = b""
    commitments_digest: bytes = b""
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
        self.graph_nonce, self.commitments_digest = b"", b""
        self.peers = {}
        self.slot = -1
        self.participants, self.survivors = (), ()

    def x_of(self, node: int) -> int:
        """Public Shamir evaluation point of ``node``: 1 + its rank in the key set."""
        return 1 + self.nodes.index(node)


# --------------------------------------------------------------------- writer
class _Writer:
    """Append-only buffer of encoded fields."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = [_HEADER.pack(_MAGIC, _VERSION)]

    def u64(self, value: int) -> None:
        self._parts.append(_U64.pack(value))

    def i64(self, value: int) -> None:
        self._parts.append(_I64.pack(value))

    def f64(self, value: float) -> None:
        self._parts.append(_F64.pack(value))

    def raw(self, *chunks: bytes) -> None:
        self._parts += chunks

    def count(self, n: int) -> None:
        self._parts.append(_U32.pack(n))

    def blob(self, value: bytes) -> None:
        self._parts += (_U32.pack(len(value)), value)

    def text(self, value: str) -> None:
        self.blob(value.encode())

    def opt_blob(self, value: bytes | None) -> None:
        if value is None:
            self._parts.append(b"\x00")
        else:
            self._parts.append(b"\x01")
            self.blob(value)

    def opt_i64(self, value: int | None) -> None:
        if value is None:
            self._parts.append(b"\x00")
        else:
            self._parts += (b"\x01", _I64.pack(value))

    def blobs(self, values: Sequence[bytes]) -> None:
        self.count(len(values))
        for value in values:
            self.blob(value)

    def ids(self, values: Sequence[int]) -> None:
        n = len(values)
        self._parts += (_U32.pack(n), struct.pack(f"<{n}Q", *values))

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


def _write_config(w: _Writer, c: SecAggConfig) -> None:
    w.text(c.variant.value)
    w.text(c.graph.value)
    w.opt_i64(c.degree)
    w.f64(c.threshold)
    w.i64(c.bits)
    w.f64(c.clip)
    w.i64(c.max_weight)
    w.i64(c.rounds_per_key_set)
    w.blob(c.graph_seed)


def _write_peer(w: _Writer, node: int, peer: PeerState) -> None:
    share = peer.share if peer.share is not None else b""
    w.raw(
        _PEER_HEAD.pack(
            node,
            len(peer.cipher_pk),
            len(peer.mask_pks),
            peer.share is not None,
            len(share),
            len(peer.revealed),
        ),
        peer.cipher_pk,
        peer.mask_pks,
        share,
    )
    for slot, kind in peer.revealed.items():
        w.raw(_I64_PAIR.pack(slot, kind))


def _write_state(w: _Writer, s: ClientState) -> None:
    w.u64(s.node_id)
    _write_config(w, s.config)
    w.opt_blob(s.signing_key)
    w.count(len(s.verify_keys))
    for node, key in s.verify_keys.items():
        w.raw(_KEY_HEAD.pack(node, len(key)), key)
    w.text(s.stage.value)
    w.i64(s.key_set)
    w.ids(s.nodes)
    w.ids(s.neighbours)
    w.i64(s.threshold)
    w.blob(s.cipher_sk)
    w.blobs(s.mask_sks)
    w.blobs(s.seeds)
    w.blob(s.own_advert[0])
    w.blob(s.own_advert[1])
    w.blob(s.graph_nonce)
    w.blob(s.commitments_digest)
    w.count(len(s.peers))
    for node, peer in s.peers.items():
        _write_peer(w, node, peer)
    w.i64(s.round)
    w.i64(s.slot)
    w.ids(s.participants)
    w.ids(s.survivors)
    w.count(len(s.bytes_sent))
    for stage, sent in s.bytes_sent.items():
        w.text(stage)
        w.i64(sent)


def dump_state(state: ClientState) -> bytes:
    """Serialise a client state.

    Raises
    ------
    ValueError
        If a field does not fit its encoding (e.g. a negative node id).
    """
    w = _Writer()
    try:
        _write_state(w, state)
    except struct.error as exc:
        raise ValueError("client state field out of range for its encoding") from exc
    return w.getvalue()


# --------------------------------------------------------------------- reader
class _Reader:
    """Bounds-checked cursor over encoded bytes; any overrun is malformed."""

    __slots__ = ("_buf", "_off")

    def __init__(self, buf: bytes) -> None:
        self._buf = buf
        self._off = 0

    def _take(self, n: int) -> int:
        """Advance by ``n`` bytes and return where they start."""
        start = self._off
        end = start + n
        if end > len(self._buf):
            raise MessageFormatError(_MALFORMED)
        self._off = end
        return start

    def header(self) -> tuple[bytes, int]:
        magic: bytes
        version: int
        magic, version = _HEADER.unpack_from(self._buf, self._take(_HEADER.size))
        return magic, version

    def u8(self) -> int:
        value: int = _U8.unpack_from(self._buf, self._take(_U8.size))[0]
        return value

    def u64(self) -> int:
        value: int = _U64.unpack_from(self._buf, self._take(_U64.size))[0]
        return value

    def i64(self) -> int:
        value: int = _I64.unpack_from(self._buf, self._take(_I64.size))[0]
        return value

    def f64(self) -> float:
        value: float = _F64.unpack_from(self._buf, self._take(_F64.size))[0]
        return value

    def verify_key(self) -> tuple[int, bytes]:
        node: int
        n: int
        node, n = _KEY_HEAD.unpack_from(self._buf, self._take(_KEY_HEAD.size))
        start = self._take(n)
        return node, self._buf[start : start + n]

    def peer(self) -> tuple[int, PeerState]:
        """One peer record: a fixed header, then its data, bounds-checked at once."""
        node: int
        n_pk: int
        n_masks: int
        has_share: int
        n_share: int
        n_revealed: int
        node, n_pk, n_masks, has_share, n_share, n_revealed = _PEER_HEAD.unpack_from(
            self._buf, self._take(_PEER_HEAD.size)
        )
        if has_share > 1 or (n_share and not has_share):
            raise MessageFormatError(_MALFORMED)
        pk = self._take(n_pk + n_masks + n_share + n_revealed * _I64_PAIR.size)
        masks = pk + n_pk
        share = masks + n_masks
        revealed = share + n_share
        buf = self._buf
        slots = dict(_I64_PAIR.iter_unpack(buf[revealed : self._off]))
        if len(slots) != n_revealed:
            raise MessageFormatError(_MALFORMED)
        peer = PeerState(
            cipher_pk=buf[pk:masks],
            mask_pks=buf[masks:share],
            share=buf[share:revealed] if has_share else None,
            revealed=slots,
        )
        return node, peer

    def flag(self) -> bool:
        value = self.u8()
        if value > 1:
            raise MessageFormatError(_MALFORMED)
        return value == 1

    def count(self, item_size: int) -> int:
        """A ``u32`` count of items at least ``item_size`` bytes long each."""
        n: int = _U32.unpack_from(self._buf, self._take(_U32.size))[0]
        if n * item_size > len(self._buf) - self._off:
            raise MessageFormatError(_MALFORMED)
        return n

    def blob(self) -> bytes:
        n = self.count(1)
        start = self._take(n)
        return self._buf[start : start + n]

    def text(self) -> str:
        return self.blob().decode()

    def opt_blob(self) -> bytes | None:
        return self.blob() if self.flag() else None

    def opt_i64(self) -> int | None:
        return self.i64() if self.flag() else None

    def blobs(self) -> list[bytes]:
        return [self.blob() for _ in range(self.count(_MIN_BLOB))]

    def ids(self) -> tuple[int, ...]:
        n = self.count(_U64.size)
        values: tuple[int, ...] = struct.unpack_from(
            f"<{n}Q", self._buf, self._take(n * _U64.size)
        )
        return values

    def mapping(
        self, item_size: int, item: Callable[[], tuple[_K, _V]]
    ) -> dict[_K, _V]:
        """A counted dict; a repeated key is malformed."""
        n = self.count(item_size)
        out = dict(item() for _ in range(n))
        if len(out) != n:
            raise MessageFormatError(_MALFORMED)
        return out

    def end(self) -> None:
        if self._off != len(self._buf):
            raise MessageFormatError(_MALFORMED)


def _read_config(r: _Reader) -> SecAggConfig:
    return SecAggConfig(
        variant=Variant(r.text()),
        graph=GraphKind(r.text()),
        degree=r.opt_i64(),
        threshold=r.f64(),
        bits=r.i64(),
        clip=r.f64(),
        max_weight=r.i64(),
        rounds_per_key_set=r.i64(),
        graph_seed=r.blob(),
    )


def _read_state(r: _Reader) -> ClientState:
    return ClientState(
        node_id=r.u64(),
        config=_read_config(r),
        signing_key=r.opt_blob(),
        verify_keys=r.mapping(_KEY_HEAD.size, r.verify_key),
        stage=Stage(r.text()),
        key_set=r.i64(),
        nodes=r.ids(),
        neighbours=r.ids(),
        threshold=r.i64(),
        cipher_sk=r.blob(),
        mask_sks=r.blobs(),
        seeds=r.blobs(),
        own_advert=(r.blob(), r.blob()),
        graph_nonce=r.blob(),
        commitments_digest=r.blob(),
        peers=r.mapping(_PEER_HEAD.size, r.peer),
        round=r.i64(),
        slot=r.i64(),
        participants=r.ids(),
        survivors=r.ids(),
        bytes_sent=r.mapping(_MIN_COUNTER, lambda: (r.text(), r.i64())),
    )


def load_state(data: bytes) -> ClientState:
    """Inverse of :func:`dump_state`; raises ``MessageFormatError`` if malformed."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MessageFormatError(_MALFORMED)
    buf = bytes(data)
    r = _Reader(buf)
    try:
        if r.header() != (_MAGIC, _VERSION):
            raise MessageFormatError(_MALFORMED)
        state = _read_state(r)
        r.end()
    except (struct.error, ValueError, ConfigError) as exc:
        # ValueError covers unknown enum values and invalid UTF-8.
        raise MessageFormatError(_MALFORMED) from exc
    return state
