"""Encrypt a package to one compute party (ECIES: X25519, HKDF-SHA256, AES-256-GCM).

A fresh ephemeral X25519 key per package; ``HKDF(X25519(eph, pk_party),
label || header)`` is the AES-256-GCM key and the header is the associated
data, so a package opens only for that party, under that label and header
(session, sender, shape, terms: whatever the caller binds into it). The
sealed form is ``eph_public (32) || nonce (12) || ciphertext``; the header
travels beside it. Used by clip-and-sum clients (:mod:`fedsec.mpc.client`)
and by vertical data holders (:mod:`fedsec.vertical.shares`).
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fedsec.errors import CryptoError
from fedsec.mpc.keys import raw_public
from fedsec.mpc.prg import hkdf

PUBLIC_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD = PUBLIC_BYTES + NONCE_BYTES + TAG_BYTES


def aead_key(shared: bytes, label: bytes, header: bytes) -> AESGCM:
    """The package key for a shared X25519 secret, a label and a header."""
    return AESGCM(hkdf(shared, label + header))


def seal(public_key: bytes, label: bytes, header: bytes, body: bytes) -> bytes:
    """Encrypt ``body`` to the party holding ``public_key``, bound to ``header``."""
    eph = X25519PrivateKey.generate()
    shared = eph.exchange(X25519PublicKey.from_public_bytes(public_key))
    nonce = os.urandom(NONCE_BYTES)
    ct = aead_key(shared, label, header).encrypt(nonce, body, header)
    return raw_public(eph) + nonce + ct


def unseal(
    secret: X25519PrivateKey, label: bytes, header: bytes, sealed: bytes | memoryview
) -> bytes:
    """Open a sealed package; one opaque :class:`CryptoError` on any failure."""
    if len(sealed) < OVERHEAD:
        raise CryptoError("package rejected", stage="open")
    try:
        eph = X25519PublicKey.from_public_bytes(bytes(sealed[:PUBLIC_BYTES]))
        key = aead_key(secret.exchange(eph), label, header)
        nonce = bytes(sealed[PUBLIC_BYTES : PUBLIC_BYTES + NONCE_BYTES])
        return key.decrypt(nonce, bytes(sealed[PUBLIC_BYTES + NONCE_BYTES :]), header)
    except (InvalidTag, ValueError):
        raise CryptoError("package rejected", stage="open") from None
