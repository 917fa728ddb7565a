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
from fedsec.secagg.graph import NONCE_BYTES
from fedsec.secagg.records import Record, RecordReader
from fedsec.secagg.stages import Stage

ROUND_MAX = (1 << 63) - 1
MAX_BLOB = 1 << 31

M = TypeVar("M", bound="Message")


def _signature(value: bytes, what: str) -> bytes:
    if len(value) not in (0, SIGNATURE_BYTES):
        raise MessageFormatError(f"{what} must be empty or {SIGNATURE_BYTES} bytes")
    return value


def _optional_signatures(
    reader: RecordReader, key: str, count: int
) -> tuple[bytes, ...]:
    """Either no signature at all (semi-honest) or one per item (active)."""
    return reader.blob_list(key, (0, count), SIGNATURE_BYTES)


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
    """Client -> server: the encryption key, one mask key per round slot, and
    the commitment to the client's graph nonce (see :mod:`fedsec.secagg.graph`).
    """

    TAG: ClassVar[str] = "secagg.advertise_keys"
    STAGE: ClassVar[Stage] = Stage.ADVERTISE_KEYS
    cipher_pk: bytes
    mask_pks: bytes
    commitment: bytes
    signature: bytes

    def to_record(self) -> Record:
        return {
            **self._head(),
            "cipher_pk": self.cipher_pk,
            "mask_pks": self.mask_pks,
            "commitment": self.commitment,
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
            reader.blob("commitment", NONCE_BYTES),
            _signature(reader.blob("signature"), "signature"),
        )


@dataclass(frozen=True)
class SeedRevealRequest(Message):
    """Server -> client (sparse graph): the contributors' commitments; reveal yours."""

    TAG: ClassVar[str] = "secagg.seed_reveal.request"
    STAGE: ClassVar[Stage] = Stage.SEED_REVEAL
    contributors: tuple[int, ...]
    commitments: tuple[bytes, ...]

    def to_record(self) -> Record:
        return {
            **self._head(),
            "contributors": list(self.contributors),
            "commitments": list(self.commitments),
        }

    @classmethod
    def _read(cls, reader: RecordReader, key_set: int) -> SeedRevealRequest:
        contributors = reader.node_ids("contributors", min_len=2)
        commitments = reader.blob_list("commitments", len(contributors), NONCE_BYTES)
        return cls(key_set, contributors, commitments)


@dataclass(frozen=True)
class SeedReveal(Message):
    """Client -> server (sparse graph): the nonce behind its commitment."""

    TAG: ClassVar[str] = "secagg.seed_reveal"
    STAGE: ClassVar[Stage] = Stage.SEED_REVEAL
    nonce: bytes

    def to_record(self) -> Record:
        return {**self._head(), "nonce": self.nonce}

    @classmethod
    def _read(cls, reader: RecordReader, key_set: int) -> SeedReveal:
        return cls(key_set, reader.blob("nonce", NONCE_BYTES))


@dataclass(frozen=True)
class ShareKeysRequest(Message):
    """Server -> client: the advertisements of ``nodes`` (the client's neighbours).

    With a sparse graph, ``contributors`` and their revealed ``nonces`` let the
    client derive the graph itself (both empty with the complete graph).
    """

    TAG: ClassVar[str] = "secagg.share_keys.request"
    STAGE: ClassVar[Stage] = Stage.SHARE_KEYS
    nodes: tuple[int, ...]
    cipher_pks: tuple[bytes, ...]
    mask_pks: tuple[bytes, ...]
    commitments: tuple[bytes, ...]
    signatures: tuple[bytes, ...]
    contributors: tuple[int, ...] = ()
    nonces: tuple[bytes, ...] = ()

    def to_record(self) -> Record:
        return {
            **self._head(),
            "nodes": list(self.nodes),
            "cipher_pks": list(self.cipher_pks),
            "mask_pks": list(self.mask_pks),
            "commitments": list(self.commitments),
            "signatures": list(self.signatures),
            "contributors": list(self.contributors),
            "nonces": list(self.nonces),
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
        contributors = reader.node_ids("contributors")
        return cls(
            key_set,
            nodes,
            reader.blob_list("cipher_pks", n, KEY_BYTES),
            mask_pks,
            reader.blob_list("commitments", n, NONCE_BYTES),
            signatures,
            contributors,
            reader.blob_list("nonces", len(contributors), NONCE_BYTES),
        )


@dataclass(frozen=True)
class ShareKeys(Message):
    """Client -> server: encrypted shares, one ciphertext per neighbour.

    In the active variant each ciphertext is signed by its sender
    (``signatures``, else empty), so that a recipient that cannot open it
    can prove who sent it (:class:`ShareComplaint`).
    """

    TAG: ClassVar[str] = "secagg.share_keys"
    STAGE: ClassVar[Stage] = Stage.SHARE_KEYS
    recipients: tuple[int, ...]
    ciphertexts: tuple[bytes, ...]
    signatures: tuple[bytes, ...] = ()

    def to_record(self) -> Record:
        return {
            **self._head(),
            "recipients": list(self.recipients),
            "ciphertexts": list(self.ciphertexts),
            "signatures": list(self.signatures),
        }

    @classmethod
    def _read(cls, reader: RecordReader, key_set: int) -> ShareKeys:
        recipients = reader.node_ids("recipients")
        n = len(recipients)
        return cls(
            key_set,
            recipients,
            reader.blob_list("ciphertexts", n),
            _optional_signatures(reader, "signatures", n),
        )


@dataclass(frozen=True)
class MaskedInputRequest(RoundMessage):
    """Server -> client: mask a ``dim``-vector among ``participants``.

    ``senders``/``ciphertexts`` relay the shares addressed to this client; they
    are sent once per key set (empty when already delivered), with the
    senders' signatures over them in the active variant (``share_signatures``,
    else empty).
    """

    TAG: ClassVar[str] = "secagg.masked_input.request"
    STAGE: ClassVar[Stage] = Stage.MASKED_INPUT
    dim: int
    participants: tuple[int, ...]
    senders: tuple[int, ...]
    ciphertexts: tuple[bytes, ...]
    share_signatures: tuple[bytes, ...] = ()

    def to_record(self) -> Record:
        return {
            **self._head(),
            "dim": self.dim,
            "participants": list(self.participants),
            "senders": list(self.senders),
            "ciphertexts": list(self.ciphertexts),
            "share_signatures": list(self.share_signatures),
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
            _optional_signatures(reader, "share_signatures", len(senders)),
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
class ShareComplaint(RoundMessage):
    """Client -> server, instead of a masked input: these senders' shares fail.

    A client that has not yet sent a masked input in the key set reveals its
    share-encryption secret key (``cipher_sk``), so the server can check that
    the ciphertexts it relayed from the ``accused`` do not open: the accused
    sent garbage (in the active variant they also signed it). A client that
    already masked an input in the key set names the accused without the key
    (``cipher_sk`` empty): revealing it then would expose that input.
    """

    TAG: ClassVar[str] = "secagg.share_complaint"
    STAGE: ClassVar[Stage] = Stage.MASKED_INPUT
    accused: tuple[int, ...]
    cipher_sk: bytes

    def to_record(self) -> Record:
        return {
            **self._head(),
            "accused": list(self.accused),
            "cipher_sk": self.cipher_sk,
        }

    @classmethod
    def _read(cls, reader: RecordReader, key_set: int) -> ShareComplaint:
        rnd, slot = _round(reader)
        accused = reader.node_ids("accused", min_len=1)
        cipher_sk = reader.blob("cipher_sk", max_len=KEY_BYTES)
        if len(cipher_sk) not in (0, KEY_BYTES):
            raise MessageFormatError(f"cipher_sk must be empty or {KEY_BYTES} bytes")
        return cls(key_set, rnd, slot, accused, cipher_sk)


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
    | SeedRevealRequest
    | ShareKeysRequest
    | MaskedInputRequest
    | ConsistencyRequest
    | UnmaskRequest
)
ClientMessage = (
    AdvertiseKeys
    | SeedReveal
    | ShareKeys
    | MaskedInput
    | ShareComplaint
    | ConsistencyResponse
    | UnmaskResponse
)

_SERVER_TYPES: dict[str, type[ServerMessage]] = {
    cls.TAG: cls
    for cls in (
        AdvertiseKeysRequest,
        SeedRevealRequest,
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
        SeedReveal,
        ShareKeys,
        MaskedInput,
        ShareComplaint,
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
