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
