"""Encrypt a package to the holder of an X25519 key (ECIES).

A fresh ephemeral X25519 key per package; ``HKDF(X25519(eph, pk), label ||
header)`` (:func:`fedsec.crypto.kdf.hkdf`) is the AES-256-GCM key and the
header is the associated data (:mod:`fedsec.crypto.aead`), so a package opens
only for that key, under that label and header (session, sender, shape, terms:
whatever the caller binds into it). The sealed form is ``eph_public (32) ||
nonce (12) || ciphertext``; the header travels beside it. Used by MPC
clip-and-sum clients (:mod:`fedsec.mpc.client`) and by vertical data holders
(:mod:`fedsec.vertical.shares`).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fedsec.crypto import aead
from fedsec.crypto.kdf import hkdf
from fedsec.errors import CryptoError

PUBLIC_BYTES = 32
OVERHEAD = PUBLIC_BYTES + aead.OVERHEAD


def seal(public_key: bytes, label: bytes, header: bytes, body: bytes) -> bytes:
    """Encrypt ``body`` to the holder of ``public_key``, bound to ``header``."""
    eph = X25519PrivateKey.generate()
    shared = eph.exchange(X25519PublicKey.from_public_bytes(public_key))
    key = hkdf(shared, label + header)
    return eph.public_key().public_bytes_raw() + aead.encrypt(key, body, header)


def unseal(
    secret: X25519PrivateKey, label: bytes, header: bytes, sealed: bytes | memoryview
) -> bytes:
    """Open a sealed package; one opaque :class:`CryptoError` on any failure."""
    if len(sealed) < OVERHEAD:
        raise CryptoError("package rejected", stage="open")
    try:
        key = _key(secret, label, header, sealed)
    except ValueError:
        raise CryptoError("package rejected", stage="open") from None
    return aead.decrypt(key, bytes(sealed[PUBLIC_BYTES:]), header)


def unseal_into(
    secret: X25519PrivateKey,
    label: bytes,
    header: bytes,
    sealed: bytes | memoryview,
    out: memoryview,
) -> None:
    """:func:`unseal` into ``out`` (exactly the plaintext's size), no copy.

    Raises
    ------
    CryptoError
        One opaque error for any failure (bad key, forged or resized package).
    """
    nonce_end = PUBLIC_BYTES + aead.NONCE_BYTES
    if len(sealed) != OVERHEAD + len(out):
        raise CryptoError("package rejected", stage="open")
    try:
        gcm = AESGCM(_key(secret, label, header, sealed))
        gcm.decrypt_into(
            bytes(sealed[PUBLIC_BYTES:nonce_end]), sealed[nonce_end:], header, out
        )
    except (InvalidTag, ValueError):
        raise CryptoError("package rejected", stage="open") from None


def _key(
    secret: X25519PrivateKey, label: bytes, header: bytes, sealed: bytes | memoryview
) -> bytes:
    eph = X25519PublicKey.from_public_bytes(bytes(sealed[:PUBLIC_BYTES]))
    return hkdf(secret.exchange(eph), label + header)
