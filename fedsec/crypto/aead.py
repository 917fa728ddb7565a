"""AES-256-GCM authenticated encryption of Shamir shares.

Bonawitz et al. (CCS 2017) encrypt each share to its receiver with an
authenticated scheme whose associated data binds sender, receiver and the key
set, so that the relaying server can neither read, forge nor redirect a share.
The 96-bit nonce is random; each key encrypts a single message in practice.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fedsec.errors import CryptoError

NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD = NONCE_BYTES + TAG_BYTES


def encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Return ``nonce || ciphertext || tag`` of ``plaintext`` under ``key``."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Decrypt a blob made by :func:`encrypt`; raises ``CryptoError`` if forged."""
    if len(blob) < OVERHEAD:
        raise CryptoError("ciphertext too short")
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise CryptoError("share ciphertext failed authentication") from exc


class FrameCipher:
    """AES-256-GCM for one direction of a stream: the nonce is the frame number.

    The record layer of the MPC parties' channel (:mod:`fedsec.mpc.tcp`), as
    in TLS 1.3: one key per connection and direction, frame ``k`` sealed under
    the 96-bit nonce ``0^32 || k`` (little-endian 64-bit ``k``), so a nonce is
    never reused under a key, and a frame that is replayed, reordered, dropped
    or altered fails to open (the receiver expects the next ``k``). Associated
    data binds each frame's cleartext header. After a failure the stream is
    unusable (its counter moved on): the caller closes it.

    Parameters
    ----------
    key
        32 bytes, used by this stream only (see :func:`fedsec.crypto.kdf.agree`).
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise CryptoError("frame key must be 32 bytes")
        self._gcm = AESGCM(key)
        self._counter = 0

    def _next_nonce(self) -> bytes:
        if self._counter >= 1 << 64:
            raise CryptoError("frame counter exhausted")
        nonce = bytes(4) + self._counter.to_bytes(8, "little")
        self._counter += 1
        return nonce

    def seal_into(self, header: bytes, payload: memoryview, out: memoryview) -> None:
        """Encrypt ``payload`` into ``out`` (``len(payload) + TAG_BYTES`` bytes)."""
        self._gcm.encrypt_into(self._next_nonce(), payload, header, out)

    def open_into(self, header: bytes, sealed: memoryview, out: memoryview) -> None:
        """Decrypt the next frame ``sealed`` (ciphertext and tag) into ``out``.

        Raises
        ------
        CryptoError
            If the frame is not the next one sealed under this key with this
            header (one opaque error).
        """
        try:
            self._gcm.decrypt_into(self._next_nonce(), sealed, header, out)
        except (InvalidTag, ValueError):
            raise CryptoError("frame failed authentication") from None
