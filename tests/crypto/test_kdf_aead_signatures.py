"""X25519 + HKDF, AES-GCM and Ed25519 wrappers."""

from __future__ import annotations

import pytest

from fedsec.crypto import aead, kdf, signatures
from fedsec.errors import CryptoError


def test_agreement_is_symmetric_and_label_separated() -> None:
    a, b = kdf.X25519KeyPair.generate(), kdf.X25519KeyPair.generate()
    label = kdf.label("pairwise-mask", 1, 2)
    assert kdf.agree(a.secret, b.public, label) == kdf.agree(b.secret, a.public, label)
    other = kdf.label("pairwise-mask", 1, 3)
    assert kdf.agree(a.secret, b.public, label) != kdf.agree(a.secret, b.public, other)
    assert kdf.X25519KeyPair.from_secret(a.secret) == a


def test_labels_are_distinct_per_purpose_and_round() -> None:
    labels = {kdf.label(p, r) for p in ("self-mask", "pairwise-mask") for r in range(3)}
    assert len(labels) == 6


def test_small_order_public_key_is_refused() -> None:
    a = kdf.X25519KeyPair.generate()
    with pytest.raises(CryptoError):
        kdf.agree(a.secret, bytes(32), b"x")
    with pytest.raises(CryptoError):
        kdf.agree(a.secret, b"short", b"x")


def test_aead_round_trip_and_forgery() -> None:
    key = kdf.hkdf(b"ikm", b"share")
    blob = aead.encrypt(key, b"share bytes", b"from 1 to 2")
    assert aead.decrypt(key, blob, b"from 1 to 2") == b"share bytes"
    with pytest.raises(CryptoError):
        aead.decrypt(key, blob, b"from 2 to 1")  # redirected share
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(CryptoError):
        aead.decrypt(key, tampered, b"from 1 to 2")
    with pytest.raises(CryptoError):
        aead.decrypt(key, blob[:10], b"from 1 to 2")


def test_signature_verification_raises() -> None:
    sk = signatures.generate_signing_key()
    vk = signatures.verify_key_of(sk)
    sig = signatures.sign(sk, b"keys")
    signatures.verify(vk, b"keys", sig)
    with pytest.raises(CryptoError):
        signatures.verify(vk, b"other keys", sig)
    other = signatures.verify_key_of(signatures.generate_signing_key())
    with pytest.raises(CryptoError):
        signatures.verify(other, b"keys", sig)
    with pytest.raises(CryptoError):
        signatures.verify(b"bad", b"keys", sig)


def test_agree_many_matches_agree() -> None:
    me = kdf.X25519KeyPair.generate()
    peers = [kdf.X25519KeyPair.generate() for _ in range(3)]
    batch = [(p.public, kdf.label("m", i)) for i, p in enumerate(peers)]
    assert kdf.agree_many(me.secret, batch) == [
        kdf.agree(me.secret, pk, info) for pk, info in batch
    ]
    with pytest.raises(CryptoError):
        kdf.agree_many(me.secret, [(bytes(32), b"x")])


def _sealed(cipher: aead.FrameCipher, header: bytes, payload: bytes) -> bytearray:
    out = bytearray(len(payload) + aead.TAG_BYTES)
    cipher.seal_into(header, memoryview(payload), memoryview(out))
    return out


def _open(cipher: aead.FrameCipher, header: bytes, sealed: bytearray) -> bytes:
    out = bytearray(len(sealed) - aead.TAG_BYTES)
    cipher.open_into(header, memoryview(sealed), memoryview(out))
    return bytes(out)


def test_frame_cipher_opens_frames_in_order_only() -> None:
    key = bytes(range(32))
    sender = aead.FrameCipher(key)
    frames = [_sealed(sender, b"h%d" % i, b"payload %d" % i) for i in range(3)]
    in_order = aead.FrameCipher(key)
    for i, frame in enumerate(frames):
        assert _open(in_order, b"h%d" % i, frame) == b"payload %d" % i
    # a replayed frame, or a skipped one, fails: the receiver expects frame 1
    for header, frame in ((b"h0", frames[0]), (b"h2", frames[2])):
        receiver = aead.FrameCipher(key)
        assert _open(receiver, b"h0", frames[0]) == b"payload 0"
        with pytest.raises(CryptoError):
            _open(receiver, header, frame)
    # the header is bound: the right frame under another header fails
    with pytest.raises(CryptoError):
        _open(aead.FrameCipher(key), b"h9", frames[0])


def test_frame_cipher_refuses_altered_frames_and_other_keys() -> None:
    key = bytes(32)
    frame = _sealed(aead.FrameCipher(key), b"h", b"x" * 64)
    for i in (0, 40, len(frame) - 1):  # ciphertext and tag
        bad = bytearray(frame)
        bad[i] ^= 1
        with pytest.raises(CryptoError):
            _open(aead.FrameCipher(key), b"h", bad)
    with pytest.raises(CryptoError):
        _open(aead.FrameCipher(bytes([1]) * 32), b"h", frame)
    with pytest.raises(CryptoError):
        aead.FrameCipher(b"short")
