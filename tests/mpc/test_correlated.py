"""Correlated randomness and key agreement."""

from __future__ import annotations

import numpy as np

from fedsec.mpc.keys import generate_party_keys


def test_zero_shares_sum_to_zero_and_pair_randomness_agrees() -> None:
    keys = generate_party_keys()
    rnd = [k.randomness(session=7) for k in keys]
    z = [r.zero_share((1000,)) for r in rnd]
    assert np.all(z[0] + z[1] + z[2] == 0)
    assert not np.all(z[0] == 0)
    x = [r.zero_share_xor((50,)) for r in rnd]
    assert np.all(x[0] ^ x[1] ^ x[2] == 0)
    # parties 2 and 0 share k_0; party 1 does not draw from it
    np.testing.assert_array_equal(
        rnd[2].pair_random(0, (8,)), rnd[0].pair_random(2, (8,))
    )
    np.testing.assert_array_equal(
        rnd[0].pair_random(1, (8,)), rnd[1].pair_random(0, (8,))
    )


def test_sessions_get_fresh_keys() -> None:
    keys = generate_party_keys()
    a = keys[0].randomness(session=1).zero_share((16,))
    b = keys[0].randomness(session=2).zero_share((16,))
    assert not np.array_equal(a, b)
