"""The cryptographic source: reproducible when seeded, well-formed outputs."""

from __future__ import annotations

import numpy as np
import pytest

from fedsec.dp.source import SEED_BYTES, CryptoRandom
from fedsec.errors import ConfigError

SEED = bytes(range(32))


def test_seeded_streams_repeat_and_differ_by_seed() -> None:
    a, b = CryptoRandom(SEED), CryptoRandom(SEED)
    c = CryptoRandom(bytes(32))
    xa = a.uniform(1000)
    assert np.array_equal(xa, b.uniform(1000))
    assert not np.array_equal(xa, c.uniform(1000))
    assert a.seeded
    assert not CryptoRandom().seeded


def test_stream_matches_chacha20_keystream() -> None:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

    enc = Cipher(algorithms.ChaCha20(SEED, bytes(16)), mode=None).encryptor()
    expected = np.frombuffer(enc.update(bytes(80)), dtype="<u8")
    assert np.array_equal(CryptoRandom(SEED).uint64(10), expected)


def test_unseeded_streams_differ() -> None:
    assert CryptoRandom().random_bytes(32) != CryptoRandom().random_bytes(32)


def test_stream_continues_across_calls() -> None:
    one = CryptoRandom(SEED).random_bytes(64)
    rng = CryptoRandom(SEED)
    assert rng.random_bytes(24) + rng.random_bytes(40) == one


def test_uniform_ranges_and_moments() -> None:
    rng = CryptoRandom(SEED)
    u = rng.uniform(200_000)
    v = rng.uniform_open(200_000)
    assert u.min() >= 0.0
    assert u.max() < 1.0
    assert v.min() > 0.0
    assert v.max() <= 1.0
    assert abs(u.mean() - 0.5) < 0.005
    assert abs(u.var() - 1 / 12) < 0.002
    assert abs(v.mean() - 0.5) < 0.005


def test_signs_are_balanced() -> None:
    s = CryptoRandom(SEED).signs(100_001)
    assert s.shape == (100_001,)
    assert set(np.unique(s)) == {-1, 1}
    assert abs(float(s.mean())) < 0.01


@pytest.mark.parametrize("seed", [b"", bytes(16), bytes(33), "x" * 32])
def test_bad_seed_is_refused(seed: object) -> None:
    with pytest.raises(ConfigError):
        CryptoRandom(seed)  # type: ignore[arg-type]
    assert SEED_BYTES == 32
