"""ECIES packages: open only for the key, label and header they were sealed to."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from fedsec.crypto.seal import OVERHEAD, seal, unseal, unseal_into
from fedsec.errors import CryptoError

LABEL = b"fedsec/test/v1"


@pytest.fixture
def key() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


def _public(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def test_round_trip_in_both_forms(key: X25519PrivateKey) -> None:
    body = b"x" * 1000
    sealed = seal(_public(key), LABEL, b"header", body)
    assert len(sealed) == len(body) + OVERHEAD
    assert unseal(key, LABEL, b"header", sealed) == body
    out = bytearray(len(body))
    unseal_into(key, LABEL, b"header", memoryview(sealed), memoryview(out))
    assert bytes(out) == body
    assert seal(_public(key), LABEL, b"header", body) != sealed  # fresh ephemeral key


@pytest.mark.parametrize("what", ["key", "label", "header", "bit", "length"])
def test_anything_else_is_one_opaque_refusal(key: X25519PrivateKey, what: str) -> None:
    sealed = bytearray(seal(_public(key), LABEL, b"header", b"secret body"))
    secret, label, header = key, LABEL, b"header"
    if what == "key":
        secret = X25519PrivateKey.generate()
    elif what == "label":
        label = b"fedsec/other/v1"
    elif what == "header":
        header = b"headex"
    elif what == "bit":
        sealed[-1] ^= 1
    else:
        sealed = sealed[:-1]
    with pytest.raises(CryptoError) as refused:
        unseal(secret, label, header, bytes(sealed))
    assert "secret" not in str(refused.value)
    with pytest.raises(CryptoError):
        unseal_into(secret, label, header, bytes(sealed), memoryview(bytearray(11)))
