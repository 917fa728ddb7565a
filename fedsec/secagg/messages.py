"""Typed, frozen messages of each stage, with record conversion.

Each message converts to a flat record (:meth:`to_record`) that a Flower
ConfigRecord can hold, and back with :meth:`from_record`, which checks every
field's type and shape and raises
:class:`~fedsec.secagg.errors.MessageFormatError`. Checks that need protocol
state (expected senders, neighbours, round) are made by the state machines.
Maps from node to value travel as two parallel lists (ids strictly increasing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from fedsec.crypto.kdf import KEY_BYTES
from fedsec.crypto.signatures import SIGNATURE_BYTES
from fedsec.secagg.errors import MessageFormatError
from fedsec.secagg.records import Record, RecordReader
from fedsec.secagg.stages import Stage

ROUND_MAX = (1 << 63) - 1
MAX_BLOB = 1 << 31

M = TypeVar("M", bound="Message")


def _signature(value: bytes, what: str) -> bytes:
    if len(value) not in (0, SIGNATURE_BYTES):
        raise MessageFormatError(f"{what} must be empty or {SIGNATURE_BYTES} bytes")
    return value


@dataclass(frozen=True)
class Message:
    """Base of all messages: a tag, a stage and the key-set id."""

    TAG: ClassVar[str] = ""
    STAGE: ClassVar[Stage] = Stage.IDLE

    key_set: int

    def _head(self) -> Record:
        return {"msg": self.TAG, "key_set": self.key_set}

    def to_record(self) -> Record:
        """Return the flat record of this message."""
        return self._head()

    @classmethod
    def from_record(cls: type[M], record: object) -> M:
        """Parse and validate a record; raises ``MessageFormatError``."""
        reader = RecordReader(record, cls.TAG)
        msg = cls._read(reader, reader.integer("key_set", 0, ROUND_MAX))
        reader.done()
        return msg

    @classmethod
    def _read(cls: type[M], reader: RecordReader, key_set: int) -> M:
        raise NotImplementedError


@dataclass(frozen=True)
class RoundMessage(Message):
    """A message of one round of a key set: global round and slot in the key set."""

    round: int
    slot: int

    def _head(self) -> Record:
        return {**super()._head(), "round": self.round, "slot": self.slot}


def _round(reader: RecordReader) -> tuple[int, int]:
    return reader.integer("round", 0, ROUND_MAX), reader.integer("slot", 0, 1000)


@dataclass(frozen=True)
class AdvertiseKeysRequest(Message):
    """Server -> client: start key set ``key_set`` among ``nodes``."""

    TAG: ClassVar[str] = "secagg.advertise_keys.request"
    STAGE: ClassVar[Stage] = Stage.ADVERTISE_KEYS
    nodes: tuple[int, ...]

    def to_record(self) -> Record:
        return {**self._head(), "nodes": list(self.nodes)}

    @classmethod
    def _read(cls, reader: RecordReader, key_set: int) -> AdvertiseKeysRequest:
        return cls(key_set, reader.node_ids("nodes", min_len=2))


@dataclass(frozen=True)
class AdvertiseKeys(Message):
    """Client -> server: the encryption key and one mask key per round slot."""

    TAG: ClassVar[str] = "secagg.advertise_keys"
    STAGE: ClassVar[Stage] = Stage.ADVERTISE_KEYS
    cipher_pk: bytes
    mask_pks: bytes
    signature: bytes

    def to_record(self) -> Record:
        return {
            **self._head(),
            "cipher_pk": self.cipher_pk,
            "mask_pks": self.mask_pks,
            "signature": self.signature,
        }

    @classmethod
    def _read(cls, reader: RecordReader, key_set: int) -> AdvertiseKeys:
        mask_pks = reader.blob("mask_pks", max_len=1000 * KEY_BYTES)
        if not mask_pks or len(mask_pks) % KEY_BYTES:
            raise MessageFormatError("mask_pks must be a non-empty multiple of 32")
        return cls(
            key_set,
            reader.blob("cipher_pk", KEY_BYTES),
            mask_pks,
            _signature(reader.blob("signature"), "signature"),
        )


@dataclass(frozen=True)
class ShareKeysRequest(Message):
    """Server -> client: the advertisements of ``nodes`` (the client's neighbours)."""

    TAG: ClassVar[str] = "secagg.share_keys.request"
    STAGE: ClassVar[Stage] = Stage.SHARE_KEYS
    nodes: tuple[int, ...]
    cipher_pks: tuple[bytes, ...]
    mask_pks: tuple[bytes, ...]
    signatures: tuple[bytes, ...]

    def to_record(self) -> Record:
        return {
            **self._head(),
            "nodes": list(self.nodes),
            "cipher_pks": list(self.cipher_pks),
            "mask_pks": list(self.mask_pks),
            "signatures": list(self.signatures),
        }

    @classmethod
    def _read(cls, reader: RecordReader, key_set: int) -> ShareKeysRequest:
        nodes = reader.node_ids("nodes", min_len=1)
        n = len(nodes)
        mask_pks = reader.blob_list("mask_pks", n)
        if any(not m or len(m) % KEY_BYTES for m in mask_pks):
            raise MessageFormatError("mask_pks items must be multiples of 32 bytes")
        signatures = reader.blob_list("signatures", n)
        for sig in signatures:
            _signature(sig, "signatures item")
        return cls(
            key_set,
            nodes,
            reader.blob_list("cipher_pks", n, KEY_BYTES),
            mask_pks,
            signatures,
        )


@dataclass(frozen=True)
class ShareKeys(Message):
    """Client -> server: encrypted shares, one ciphertext per neighbour."""

    TAG: ClassVar[str] = "secagg.share_keys"
    STAGE: ClassVar[Stage] = Stage.SHARE_KEYS
    recipients: tuple[int, ...]
    ciphertexts: tuple[bytes, ...]

    def to_record(self) -> Record:
        return {
            **self._head(),
            "recipients": list(self.recipients),
            "ciphertexts": list(self.ciphertexts),
        }

    @classmethod
    def _read(cls, reader: RecordReader, key_set: int) -> ShareKeys:
        recipients = reader.node_ids("recipients")
        return cls(
            key_set, recipients, reader.blob_list("ciphertexts", len(recipients))
        )


@dataclass(frozen=True)
class MaskedInputRequest(RoundMessage):
    """Server -> client: mask a ``dim``-vector among ``participants``.

    ``senders``/``ciphertexts`` relay the shares addressed to this client; they
    are sent once per key set (empty when already delivered).
    """

    TAG: ClassVar[str] = "secagg.masked_input.request"
    STAGE: ClassVar[Stage] = Stage.MASKED_INPUT
    dim: int
    participants: tuple[int, ...]
    senders: tuple[int, ...]
    ciphertexts: tuple[bytes, ...]

    def to_record(self) -> Record:
        return {
            **self._head(),
            "dim": self.dim,
            "participants": list(self.participants),
            "senders": list(self.senders),
            "ciphertexts": list(self.ciphertexts),
        }

    @classmethod
    def _read(cls, reader: RecordReader, key_set: int) -> MaskedInputRequest:
        rnd, slot = _round(reader)
        senders = reader.node_ids("senders")
        return cls(
            key_set,
            rnd,
            slot,
            reader.integer("dim", 1, 1 << 32),
            reader.node_ids("participants", min_len=1),
            senders,
            reader.blob_list("ciphertexts", len(senders)),
        )


@dataclass(frozen=True)
class MaskedInput(RoundMessage):
    """Client -> server: the bit-packed masked update and the masked weight."""

    TAG: ClassVar[str] = "secagg.masked_input"
    STAGE: ClassVar[Stage] = Stage.MASKED_INPUT
    data: bytes
    masked_weight: int

    def to_record(self) -> Record:
        return {**self._head(), "data": self.data, "masked_weight": self.masked_weight}

    @classmethod
    def _read(cls, reader: RecordReader, key_set: int) -> MaskedInput:
        rnd, slot = _round(reader)
        return cls(
            key_set,
            rnd,
            slot,
            reader.blob("data", max_len=MAX_BLOB),
            reader.integer("masked_weight", 0, (1 << 32) - 1),
        )


@dataclass(frozen=True)
class ConsistencyRequest(RoundMessage):
    """Server -> client (active variant): sign the survivor set."""

    TAG: ClassVar[str] = "secagg.consistency_check.request"
    STAGE: ClassVar[Stage] = Stage.CONSISTENCY_CHECK
    survivors: tuple[int, ...]

    def to_record(self) -> Record:
        return {**self._head(), "survivors": list(self.survivors)}

    @classmethod
    def _read(cls, reader: RecordReader, key_set: int) -> ConsistencyRequest:
        rnd, slot = _round(reader)
        return cls(key_set, rnd, slot, reader.node_ids("survivors", min_len=1))


@dataclass(frozen=True)
class ConsistencyResponse(RoundMessage):
    """Client -> server (active variant): signature over the survivor set."""

    TAG: ClassVar[str] = "secagg.consistency_check"
    STAGE: ClassVar[Stage] = Stage.CONSISTENCY_CHECK
    signature: bytes

    def to_record(self) -> Record:
        return {**self._head(), "signature": self.signature}

    @classmethod
    def _read(cls, reader: RecordReader, key_set: int) -> ConsistencyResponse:
        rnd, slot = _round(reader)
        return cls(key_set, rnd, slot, reader.blob("signature", SIGNATURE_BYTES))


@dataclass(frozen=True)
class UnmaskRequest(RoundMessage):
    """Server -> client: who survived and who dropped (and, if active, proofs)."""

    TAG: ClassVar[str] = "secagg.unmask.request"
    STAGE: ClassVar[Stage] = Stage.UNMASK
    survivors: tuple[int, ...]
    dropped: tuple[int, ...]
    signers: tuple[int, ...]
    signatures: tuple[bytes, ...]

    def to_record(self) -> Record:
        return {
            **self._head(),
            "survivors": list(self.survivors),
            "dropped": list(self.dropped),
            "signers": list(self.signers),
            "signatures": list(self.signatures),
        }

    @classmethod
    def _read(cls, reader: RecordReader, key_set: int) -> UnmaskRequest:
        rnd, slot = _round(reader)
        signers = reader.node_ids("signers")
        return cls(
            key_set,
            rnd,
            slot,
            reader.node_ids("survivors", min_len=1),
            reader.node_ids("dropped"),
            signers,
            reader.blob_list("signatures", len(signers), SIGNATURE_BYTES),
        )


@dataclass(frozen=True)
class UnmaskResponse(RoundMessage):
    """Client -> server: self-seed shares of survivors, key shares of dropouts."""

    TAG: ClassVar[str] = "secagg.unmask"
    STAGE: ClassVar[Stage] = Stage.UNMASK
    seed_peers: tuple[int, ...]
    seed_shares: tuple[bytes, ...]
    key_peers: tuple[int, ...]
    key_shares: tuple[bytes, ...]

    def to_record(self) -> Record:
        return {
            **self._head(),
            "seed_peers": list(self.seed_peers),
            "seed_shares": list(self.seed_shares),
            "key_peers": list(self.key_peers),
            "key_shares": list(self.key_shares),
        }

    @classmethod
    def _read(cls, reader: RecordReader, key_set: int) -> UnmaskResponse:
        rnd, slot = _round(reader)
        seed_peers = reader.node_ids("seed_peers")
        key_peers = reader.node_ids("key_peers")
        return cls(
            key_set,
            rnd,
            slot,
            seed_peers,
            reader.blob_list("seed_shares", len(seed_peers)),
            key_peers,
            reader.blob_list("key_shares", len(key_peers)),
        )


ServerMessage = (
    AdvertiseKeysRequest
    | ShareKeysRequest
    | MaskedInputRequest
    | ConsistencyRequest
    | UnmaskRequest
)
ClientMessage = (
    AdvertiseKeys | ShareKeys | MaskedInput | ConsistencyResponse | UnmaskResponse
)

_SERVER_TYPES: dict[str, type[ServerMessage]] = {
    cls.TAG: cls
    for cls in (
        AdvertiseKeysRequest,
        ShareKeysRequest,
        MaskedInputRequest,
        ConsistencyRequest,
        UnmaskRequest,
    )
}
_CLIENT_TYPES: dict[str, type[ClientMessage]] = {
    cls.TAG: cls
    for cls in (
        AdvertiseKeys,
        ShareKeys,
        MaskedInput,
        ConsistencyResponse,
        UnmaskResponse,
    )
}


def parse_server_message(record: object) -> ServerMessage:
    """Parse any server -> client record (dispatch on its ``msg`` tag)."""
    return _lookup(_SERVER_TYPES, record).from_record(record)


def parse_client_message(record: object) -> ClientMessage:
    """Parse any client -> server record (dispatch on its ``msg`` tag)."""
    return _lookup(_CLIENT_TYPES, record).from_record(record)


def _lookup(table: dict[str, type[M]], record: object) -> type[M]:
    tag = record.get("msg") if isinstance(record, Mapping) else None
    if not isinstance(tag, str) or tag not in table:
        raise MessageFormatError("record is not a known secure-aggregation message")
    return table[tag]
