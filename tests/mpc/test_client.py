"""Client shares: correct, and openable only by their party, session and client."""

from __future__ import annotations

import numpy as np
import pytest

from fedsec.errors import CryptoError
from fedsec.mpc.client import client_share, open_client_share
from fedsec.mpc.keys import generate_party_keys
from fedsec.mpc.params import ClipSumConfig

CFG = ClipSumConfig(clip_norm=1.0, max_weight=50)
ENC = CFG.encoder


@pytest.fixture(scope="module")
def setup():
    keys = generate_party_keys()
    x = np.linspace(-3, 3, 101)
    pk = client_share(x, 42, keys[0].public_keys, session=5, client_id=9, config=CFG)
    return keys, x, pk


def _open(keys, i, pkg, session=5, client_id=9, dim=101, config=CFG):
    return open_client_share(
        keys[i], pkg, session=session, client_id=client_id, dim=dim, config=config
    )


def test_packages_reconstruct_the_update_and_weight(setup) -> None:
    keys, x, pk = setup
    s = [_open(keys, i, pk[i]) for i in range(3)]
    # party i holds (x_i, x_{i+1}); both holders of each component agree
    for i in range(3):
        np.testing.assert_array_equal(s[i].x.b, s[(i + 1) % 3].x.a)
        assert s[i].digests[1] == s[(i + 1) % 3].digests[0]
    total = s[0].x.a + s[1].x.a + s[2].x.a
    np.testing.assert_array_equal(total, ENC.encode(x))
    assert int(np.sum([s[i].w.a for i in range(3)], dtype=np.uint64)) == 42


def test_wrong_party_cannot_open(setup) -> None:
    keys, _, pk = setup
    # the header names party 0; party 1 cannot decrypt it, even with a forged header
    with pytest.raises(CryptoError):
        _open(keys, 1, pk[0])
    forged = pk[0][:6] + bytes([1]) + pk[0][7:]
    with pytest.raises(CryptoError):
        _open(keys, 1, forged)


def test_replay_into_other_session_or_client_is_rejected(setup) -> None:
    keys, _, pk = setup
    with pytest.raises(CryptoError):
        _open(keys, 1, pk[1], session=6)
    with pytest.raises(CryptoError):
        _open(keys, 1, pk[1], client_id=10)
    with pytest.raises(CryptoError):
        _open(keys, 1, pk[1], dim=100)


@pytest.mark.parametrize(
    "terms",
    [
        ClipSumConfig(clip_norm=2.0, max_weight=50),  # a larger clipping norm
        ClipSumConfig(clip_norm=1.0, max_weight=51),  # a larger weight bound
        ClipSumConfig(clip_norm=1.0, max_weight=50, noise_std=0.1),  # other noise
        ClipSumConfig(clip_norm=1.0, max_weight=50, noise_colluders=0),
        ClipSumConfig(clip_norm=1.0, max_weight=50, frac_bits=15),
    ],
)
def test_a_party_running_other_terms_cannot_open(setup, terms) -> None:
    # the client bound the terms it agreed to; a server that tells the parties
    # other terms than it told the site gets that site's package left out
    keys, _, pk = setup
    _open(keys, 1, pk[1])
    with pytest.raises(CryptoError):
        _open(keys, 1, pk[1], config=terms)


def test_tampered_package_is_rejected(setup) -> None:
    keys, _, pk = setup
    bad = bytearray(pk[2])
    bad[-40] ^= 1
    with pytest.raises(CryptoError):
        _open(keys, 2, bytes(bad))


def test_outsider_key_cannot_open(setup) -> None:
    _, _, pk = setup
    other = generate_party_keys()
    with pytest.raises(CryptoError):
        _open(other, 1, pk[1])


def test_ciphertexts_do_not_contain_the_plaintext() -> None:
    keys = generate_party_keys()
    x = np.full(64, 1.0)
    pk = client_share(x, 1, keys[0].public_keys, session=1, client_id=1, config=CFG)
    encoded = ENC.encode(x).tobytes()
    assert all(encoded[:64] not in p for p in pk)


def test_third_party_cannot_confirm_a_guess_from_the_tags(setup) -> None:
    import hashlib

    keys, x, pk = setup
    s = [_open(keys, i, pk[i]) for i in range(3)]
    # party 0 knows x_0, x_1 and guesses x exactly: x_2 = x - x_0 - x_1
    x2_guess = ENC.encode(x) - s[0].x.a - s[0].x.b
    np.testing.assert_array_equal(x2_guess, s[1].x.b)  # the guess is right...
    w2_guess = np.array([42 - int(s[0].w.a[0]) - int(s[0].w.b[0])], dtype=object)
    w2_word = (int(w2_guess[0]) % 2**64).to_bytes(8, "little")
    plain = hashlib.sha256(w2_word + x2_guess.tobytes()).digest()
    # ...but the tag party 1 broadcasts for x_2 is keyed: the guess cannot be checked
    assert s[1].digests[1] != plain
    assert s[1].digests[1] == s[2].digests[0]


def _package_with_x2(keys, i, seed: bytes, x2: np.ndarray) -> bytes:
    """Party ``i``'s (1 or 2) package of a client that picks ``x_2`` freely."""
    from fedsec.mpc.client import _HEADER, _LABEL, _MAGIC, seal
    from fedsec.mpc.params import terms_bytes

    header = _HEADER.pack(_MAGIC, i, 5, 9, x2.size, terms_bytes(CFG))
    body = bytes(16) + seed + x2.astype("<u8").tobytes()
    return header + seal(keys[0].public_keys[i], _LABEL, header, body)


@pytest.mark.parametrize("flip", [None, 0, 63])
def test_the_two_holders_tags_of_x2_agree_only_on_equal_copies(flip) -> None:
    """A client may send parties 1 and 2 different ``x_2`` (same seeds otherwise)."""
    keys = generate_party_keys()
    x2 = np.arange(101, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    other = x2.copy()
    if flip is not None:
        other[-1] ^= np.uint64(1) << np.uint64(flip)  # one bit, low or high
    seed = bytes(range(32))
    s1 = _open(keys, 1, _package_with_x2(keys, 1, seed, x2))
    s2 = _open(keys, 2, _package_with_x2(keys, 2, seed, other))
    np.testing.assert_array_equal(s1.x.b, x2)
    assert len(s1.digests[1]) == 16
    assert (s1.digests[1] == s2.digests[0]) == (flip is None)
