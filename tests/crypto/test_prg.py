"""AES-CTR mask PRG: determinism, independence, reference keystream."""

from __future__ import annotations

import os

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fedsec.crypto import prg
from fedsec.crypto.prg import MaskGenerator, prg_uint32
from fedsec.errors import CryptoError


def test_deterministic_and_prefix_consistent() -> None:
    seed = os.urandom(32)
    long = prg_uint32(seed, 1000)
    assert np.array_equal(prg_uint32(seed, 1000), long)
    assert np.array_equal(prg_uint32(seed, 10), long[:10])


def test_matches_aes_ecb_of_the_counter() -> None:
    seed = os.urandom(32)
    counters = b"".join(i.to_bytes(16, "big") for i in range(4))
    ecb = Cipher(algorithms.AES(seed), modes.ECB()).encryptor()
    expected = np.frombuffer(ecb.update(counters), dtype="<u4")
    assert np.array_equal(prg_uint32(seed, 16), expected)


def test_distinct_seeds_give_independent_streams() -> None:
    a = prg_uint32(os.urandom(32), 100_000).astype(np.float64)
    b = prg_uint32(os.urandom(32), 100_000).astype(np.float64)
    assert not np.array_equal(a, b)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.02
    assert abs(a.mean() / 2**32 - 0.5) < 0.01


def test_add_then_sub_cancels_and_wraps() -> None:
    gen = MaskGenerator()
    acc = np.arange(1000, dtype=np.uint32)
    seed = os.urandom(32)
    gen.add_into(acc, seed)
    assert not np.array_equal(acc, np.arange(1000, dtype=np.uint32))
    gen.sub_into(acc, seed)
    assert np.array_equal(acc, np.arange(1000, dtype=np.uint32))


def test_uint64_is_the_same_keystream() -> None:
    seed = os.urandom(32)
    gen = MaskGenerator()
    as64 = gen.uint64(seed, 8).copy()
    assert np.array_equal(as64.view("<u4"), prg_uint32(seed, 16))


def test_short_seed_is_refused() -> None:
    with pytest.raises(CryptoError):
        prg_uint32(b"0123456789abcdef", 4)  # 128-bit seed: refused, 256 required


def test_keyed_stream_is_aes_of_nonce_and_counter() -> None:
    key = bytes(range(32))
    words = prg.keystream_words(key, 7, 9)  # 72 bytes: 4 whole blocks and a half
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    blocks = b"".join((7).to_bytes(8, "big") + c.to_bytes(8, "big") for c in range(5))
    assert words.tobytes() == ecb.update(blocks)[:72]


def test_keyed_streams_fill_in_place_and_differ_by_nonce() -> None:
    key = bytes(32)
    long = prg.keystream_words(key, 3, 1 << 20)  # 8 MiB: crosses the 4 MiB chunk
    out = np.empty(17, dtype=np.uint64)
    assert prg.keystream_words(key, 3, 17, out=out) is out
    np.testing.assert_array_equal(out, long[:17])
    assert not np.array_equal(prg.keystream_words(key, 4, 17), long[:17])
    with pytest.raises(ValueError, match="contiguous uint64"):
        prg.keystream_words(key, 3, 17, out=np.empty(16, dtype=np.uint64))
    with pytest.raises(CryptoError):
        prg.keystream_words(bytes(16), 3, 17)


def test_secret_permutations_are_permutations_and_differ() -> None:
    a, b = prg.secret_permutation(1000), prg.secret_permutation(1000)
    assert sorted(a.tolist()) == list(range(1000))
    assert not np.array_equal(a, b)
    words = np.array([5, 1, 9, 1], dtype=np.uint64)
    assert prg.permutation_of(words).tolist() == [1, 3, 0, 2]
