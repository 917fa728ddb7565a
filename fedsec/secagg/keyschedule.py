"""Derivations shared by client and server: labels, seeds, share layout.

Key reuse (departure from Bonawitz et al., CCS 2017, who set up keys for
every round): one key set serves ``R = rounds_per_key_set`` rounds ("slots").
Each client draws, per slot ``j``, a fresh mask key pair ``s_j`` and a fresh
self-mask seed ``b_j``, and Shamir-shares all ``2R`` secrets once. In slot
``j`` a peer's ``b_j`` share or ``s_j`` share is revealed, never both, and the
secrets of other slots stay hidden. A single mask key reused with a per-round
HKDF label would not be safe: revealing the key of a peer that drops in a
later round would let the server recompute that peer's pairwise masks of
*earlier* rounds, in which its self-mask seed was already revealed, and so
unmask its earlier inputs. Seeds are expanded with HKDF under labels that
bind purpose, key set, round, slot and the node ids.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from fedsec.crypto import kdf, shamir
from fedsec.errors import CryptoError

SECRET_BYTES = 32
CHUNKS = shamir.num_chunks(SECRET_BYTES)
SHARE_BYTES = 4 * CHUNKS
KEY_KIND = 0
SEED_KIND = 1


def secret_index(slot: int, kind: int) -> int:
    """Position of the (slot, kind) secret among a client's ``2R`` secrets."""
    return 2 * slot + kind


def share_plaintext_bytes(rounds: int) -> int:
    """Bytes of one holder's shares of all ``2R`` secrets."""
    return 2 * rounds * SHARE_BYTES


def share_secrets(
    secrets: Sequence[bytes], xs: Sequence[int], threshold: int
) -> npt.NDArray[np.int64]:
    """Share every 32-byte secret at once: rows per holder, ``CHUNKS`` per secret."""
    values = np.concatenate([shamir.bytes_to_field(s) for s in secrets])
    return shamir.share_field(values, xs, threshold)


def encode_share(row: npt.NDArray[np.int64]) -> bytes:
    """Field elements to little-endian uint32 bytes."""
    return row.astype("<u4").tobytes()


def decode_share(data: bytes, count: int) -> npt.NDArray[np.int64]:
    """Bytes to ``count`` field elements; raises ``CryptoError`` if malformed."""
    if len(data) != 4 * count:
        raise CryptoError("share has the wrong length")
    values = np.frombuffer(data, dtype="<u4").astype(np.int64)
    if np.any(values >= shamir.PRIME):
        raise CryptoError("share value outside the field")
    return values


def share_slice(data: bytes, slot: int, kind: int) -> bytes:
    """The bytes of one secret's share within a holder's full share blob."""
    start = secret_index(slot, kind) * SHARE_BYTES
    return data[start : start + SHARE_BYTES]


def share_key(
    cipher_sk: bytes, peer_cipher_pk: bytes, key_set: int, a: int, b: int
) -> bytes:
    """AES-256-GCM key of the pair ``{a, b}`` for share encryption."""
    lo, hi = sorted((a, b))
    return kdf.agree(cipher_sk, peer_cipher_pk, kdf.label("share-key", key_set, lo, hi))


def share_aad(key_set: int, sender: int, receiver: int) -> bytes:
    """Associated data of a share ciphertext: binds key set, sender, receiver."""
    return b"fedsec/v1/share|" + struct.pack(">QQQ", key_set, sender, receiver)


def pairwise_seed(
    mask_sk: bytes,
    peer_mask_pk: bytes,
    key_set: int,
    rnd: int,
    slot: int,
    a: int,
    b: int,
) -> bytes:
    """PRG seed of the pairwise mask of ``{a, b}`` in (key set, round, slot)."""
    lo, hi = sorted((a, b))
    info = kdf.label("pairwise-mask", key_set, rnd, slot, lo, hi)
    return kdf.agree(mask_sk, peer_mask_pk, info)


def pairwise_seeds(
    mask_sk: bytes,
    node: int,
    peers: Sequence[tuple[int, bytes]],
    key_set: int,
    rnd: int,
    slot: int,
) -> list[bytes]:
    """:func:`pairwise_seed` of ``node`` with each ``(peer, peer_mask_pk)``."""
    return kdf.agree_many(
        mask_sk,
        [
            (pk, kdf.label("pairwise-mask", key_set, rnd, slot, *sorted((node, v))))
            for v, pk in peers
        ],
    )


def self_mask_seed(seed: bytes, key_set: int, rnd: int, slot: int, node: int) -> bytes:
    """PRG seed of a node's self mask in (key set, round, slot)."""
    return kdf.hkdf(seed, kdf.label("self-mask", key_set, rnd, slot, node))


def mask_public(mask_pks: bytes, slot: int) -> bytes:
    """The slot's 32-byte mask public key within an advertised concatenation."""
    return mask_pks[32 * slot : 32 * slot + 32]


def advertise_statement(
    key_set: int, node: int, cipher_pk: bytes, mask_pks: bytes, commitment: bytes
) -> bytes:
    """Bytes signed by a node over its advertised keys and graph commitment."""
    head = struct.pack(">QQ", key_set, node)
    return b"fedsec/v1/advertise|" + head + commitment + cipher_pk + mask_pks


def share_statement(key_set: int, sender: int, receiver: int, blob: bytes) -> bytes:
    """Bytes signed by a sender over one share ciphertext (active variant)."""
    return (
        b"fedsec/v1/share-ct|" + struct.pack(">QQQ", key_set, sender, receiver) + blob
    )


def consistency_statement(
    key_set: int, rnd: int, slot: int, survivors: Sequence[int]
) -> bytes:
    """Bytes signed by each survivor over the survivor set (active variant)."""
    body = struct.pack(f">QQQ{len(survivors)}Q", key_set, rnd, slot, *survivors)
    return b"fedsec/v1/consistency|" + body


def random_secret() -> bytes:
    """A fresh 32-byte secret from the OS CSPRNG."""
    return os.urandom(SECRET_BYTES)
