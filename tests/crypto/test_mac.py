"""One-time Poly1305 tags: equal for equal messages, keyed per (key, nonce)."""

from __future__ import annotations

import os

from fedsec.crypto.mac import TAG_BYTES, one_time_mac


def _tag(key: bytes, nonce: int, message: bytes) -> bytes:
    mac = one_time_mac(key, nonce)
    mac.update(message)
    return mac.finalize()


def test_two_holders_of_the_same_message_agree() -> None:
    key, message = os.urandom(32), os.urandom(8 * 1000)
    tag = _tag(key, 7, message)
    assert len(tag) == TAG_BYTES
    assert _tag(key, 7, message) == tag


def test_one_flipped_bit_anywhere_changes_the_tag() -> None:
    key, message = os.urandom(32), bytearray(os.urandom(8 * 1000))
    tag = _tag(key, 7, bytes(message))
    for byte in (0, 3999, 7999):
        for bit in (0, 7):
            changed = bytearray(message)
            changed[byte] ^= 1 << bit
            assert _tag(key, 7, bytes(changed)) != tag


def test_the_key_depends_on_the_key_and_the_nonce() -> None:
    key, message = os.urandom(32), b"the same component"
    tags = {
        _tag(key, 7, message),
        _tag(key, 8, message),
        _tag(os.urandom(32), 7, message),
    }
    assert len(tags) == 3
