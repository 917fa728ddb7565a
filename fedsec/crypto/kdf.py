"""X25519 key agreement and HKDF-SHA256 key derivation.

X25519 (RFC 7748) replaces the generic Diffie-Hellman key agreement of
Bonawitz et al. (CCS 2017); HKDF (RFC 5869) turns each shared secret into keys
with a distinct ``info`` label per purpose and per round, so that one
agreement never yields the same key for two uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fedsec.errors import CryptoError

KEY_BYTES = 32
LABEL_PREFIX = b"fedsec/v1/"


@dataclass(frozen=True)
class X25519KeyPair:
    """A raw X25519 key pair (32-byte secret and public keys)."""

    secret: bytes
    public: bytes

    @classmethod
    def generate(cls) -> X25519KeyPair:
        """Draw a fresh key pair from the OS CSPRNG."""
        key = X25519PrivateKey.generate()
        return cls(key.private_bytes_raw(), key.public_key().public_bytes_raw())

    @classmethod
    def from_secret(cls, secret: bytes) -> X25519KeyPair:
        """Rebuild the key pair of a raw 32-byte secret key."""
        key = _private(secret)
        return cls(secret, key.public_key().public_bytes_raw())


def label(purpose: str, *fields: int) -> bytes:
    """Build a canonical HKDF ``info`` label, e.g. ``label("mask", ks, r)``."""
    return (
        LABEL_PREFIX
        + purpose.encode()
        + b"".join(b"|" + str(int(f)).encode() for f in fields)
    )


def hkdf(ikm: bytes, info: bytes, length: int = KEY_BYTES) -> bytes:
    """Derive ``length`` bytes from ``ikm`` with HKDF-SHA256 and label ``info``."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(
        ikm
    )


def agree(secret: bytes, peer_public: bytes, info: bytes) -> bytes:
    """X25519 agreement followed by HKDF with label ``info``.

    Raises
    ------
    CryptoError
        If a key is malformed or the agreement yields the all-zero secret
        (a small-order public key).
    """
    try:
        peer = X25519PublicKey.from_public_bytes(peer_public)
        shared = _private(secret).exchange(peer)
    except ValueError as exc:
        raise CryptoError("X25519 agreement failed: invalid public key") from exc
    return hkdf(shared, info)


def agree_many(secret: bytes, peers: list[tuple[bytes, bytes]]) -> list[bytes]:
    """:func:`agree` with one secret key and many ``(peer_public, info)`` pairs."""
    key = _private(secret)
    out = []
    for peer_public, info in peers:
        try:
            shared = key.exchange(X25519PublicKey.from_public_bytes(peer_public))
        except ValueError as exc:
            raise CryptoError("X25519 agreement failed: invalid public key") from exc
        out.append(hkdf(shared, info))
    return out


def _private(secret: bytes) -> X25519PrivateKey:
    try:
        return X25519PrivateKey.from_private_bytes(secret)
    except ValueError as exc:
        raise CryptoError("invalid X25519 secret key") from exc
