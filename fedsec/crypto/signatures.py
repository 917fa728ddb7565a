"""Ed25519 signatures for the active-adversary variant of secure aggregation.

Bonawitz et al. (CCS 2017, Section 4, "active adversary") sign the advertised
keys and the survivor set of the consistency check with keys registered out of
band (a PKI). Verification raises instead of returning a flag.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from fedsec.errors import CryptoError

SIGNATURE_BYTES = 64


def generate_signing_key() -> bytes:
    """Return a fresh raw 32-byte Ed25519 signing key."""
    return Ed25519PrivateKey.generate().private_bytes_raw()


def verify_key_of(signing_key: bytes) -> bytes:
    """Return the raw 32-byte verification key of ``signing_key``."""
    return _signer(signing_key).public_key().public_bytes_raw()


def sign(signing_key: bytes, message: bytes) -> bytes:
    """Sign ``message``; returns a 64-byte signature."""
    return _signer(signing_key).sign(message)


def verify(verify_key: bytes, message: bytes, signature: bytes) -> None:
    """Verify ``signature`` on ``message``.

    Raises
    ------
    CryptoError
        If the key is malformed or the signature does not verify.
    """
    try:
        Ed25519PublicKey.from_public_bytes(verify_key).verify(signature, message)
    except (InvalidSignature, ValueError) as exc:
        raise CryptoError("invalid signature") from exc


def _signer(signing_key: bytes) -> Ed25519PrivateKey:
    try:
        return Ed25519PrivateKey.from_private_bytes(signing_key)
    except ValueError as exc:
        raise CryptoError("invalid Ed25519 signing key") from exc
