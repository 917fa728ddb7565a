"""Shamir sharing: every t-subset reconstructs, t-1 shares reveal nothing."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsec.crypto import shamir
from fedsec.errors import CryptoError


@pytest.mark.parametrize("n", [1, 2, 5, 7])
def test_every_threshold_subset_reconstructs(n: int) -> None:
    secret = os.urandom(32)
    xs = list(range(1, n + 1))
    for t in range(1, n + 1):
        shares = shamir.share_bytes(secret, xs, t)
        for size in range(t, n + 1):
            for subset in itertools.combinations(range(n), size):
                got = shamir.reconstruct_bytes(
                    [xs[i] for i in subset], shares[list(subset)], 32
                )
                assert got == secret


def test_fewer_than_t_shares_are_independent_of_the_secret() -> None:
    """Exhaustive over GF(7): every (t-1)-subset of shares is uniform per secret."""
    p, n, t = 7, 4, 3
    xs = [1, 2, 3, 4]
    distributions = {}
    for secret in range(p):
        counts: Counter[tuple[int, ...]] = Counter()
        for coeffs in itertools.product(range(p), repeat=t - 1):
            shares = shamir.share_field(
                np.array([secret]),
                xs,
                t,
                prime=p,
                coefficients=np.array(coeffs, dtype=np.int64).reshape(t - 1, 1),
            )[:, 0]
            for subset in itertools.combinations(range(n), t - 1):
                counts[(*subset, *shares[list(subset)])] += 1
        distributions[secret] = counts
    reference = distributions[0]
    # each (t-1)-tuple of share values occurs exactly once per subset and secret
    assert set(reference.values()) == {1}
    assert len(reference) == len(list(itertools.combinations(range(n), t - 1))) * p ** (
        t - 1
    )
    for secret in range(1, p):
        assert distributions[secret] == reference


def test_t_shares_determine_the_secret_in_small_field() -> None:
    p, xs, t = 7, [1, 2, 3], 3
    seen = {}
    for secret in range(p):
        for coeffs in itertools.product(range(p), repeat=t - 1):
            shares = shamir.share_field(
                np.array([secret]),
                xs,
                t,
                prime=p,
                coefficients=np.array(coeffs, dtype=np.int64).reshape(t - 1, 1),
            )
            key = tuple(shares[:, 0])
            assert seen.setdefault(key, secret) == secret
            assert shamir.reconstruct_field(xs, shares, prime=p)[0] == secret


@settings(max_examples=30, deadline=None)
@given(secret=st.binary(min_size=0, max_size=100), t=st.integers(1, 6))
def test_round_trip_any_length(secret: bytes, t: int) -> None:
    xs = [3, 9, 11, 20, 21, 40]
    shares = shamir.share_bytes(secret, xs, t)
    assert shamir.reconstruct_bytes(xs[-t:], shares[-t:], len(secret)) == secret


def test_bad_inputs_raise_crypto_error() -> None:
    shares = shamir.share_bytes(b"x" * 32, [1, 2, 3], 2)
    with pytest.raises(CryptoError):
        shamir.reconstruct_bytes([1, 1], shares[:2], 32)  # repeated point
    with pytest.raises(CryptoError):
        shamir.share_bytes(b"x", [0, 1], 1)  # point 0 is the secret
    with pytest.raises(CryptoError):
        shamir.share_bytes(b"x", [1, 2], 3)  # threshold above n
    bad = shares.copy()
    bad[0, 0] = shamir.PRIME
    with pytest.raises(CryptoError):
        shamir.reconstruct_bytes([1, 2], bad[:2], 32)


def test_tampered_share_is_detected_or_changes_the_secret() -> None:
    secret = os.urandom(32)
    shares = shamir.share_bytes(secret, [1, 2, 3], 3)
    shares[1, 0] = (shares[1, 0] + 1) % shamir.PRIME
    with contextlib.suppress(CryptoError):  # out-of-range chunk: detected
        assert shamir.reconstruct_bytes([1, 2, 3], shares, 32) != secret
