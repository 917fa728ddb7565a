"""The per-coordinate range check, and a client playing the wrap-around attack.

Soundness is tested against share triples a cheating client picks freely
(not only honest uniform sharings): whatever the components, an accepted row
has every coordinate below ``3 * 2^l``, so its squared norm cannot wrap.
"""

from __future__ import annotations

import numpy as np
import pytest

from fedsec.errors import ConfigError
from fedsec.mpc import range_check
from fedsec.mpc.client import client_share
from fedsec.mpc.clip_and_sum import ClipSumConfig
from fedsec.mpc.keys import generate_party_keys
from fedsec.mpc.party import simulate_clip_and_sum
from fedsec.mpc.range_check import (
    check_ranges,
    coordinate_bits,
    coordinate_bound,
    num_tests,
    ratio,
)
from fedsec.mpc.ring import from_signed
from fedsec.mpc.shares import split, views

from .conftest import run

BITS = 12


def _check(components: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    out, _ = run(lambda rt, x: check_ranges(rt, x, BITS), views(components))
    verdicts = out.outputs
    # the verdicts are public: every party reaches the same ones
    assert all(np.array_equal(verdicts[0], v) for v in verdicts[1:])
    return verdicts[0]


def _signed(values: list[int]) -> np.ndarray:
    return from_signed(np.array(values, dtype=np.int64))


def test_coordinate_bits_is_the_largest_that_cannot_wrap() -> None:
    for dim in (1, 31, 1000, 1_000_000):
        for clip in (0.05, 1.0, 3.0, 100.0):
            k, g = ratio(clip, 16)
            assert k >= 2**10
            assert k / 2**g == pytest.approx(1 / clip**2, rel=2**-10)
            bits = coordinate_bits(dim, clip, 16)
            assert 9 * dim * k * 4**bits < 2**62 <= 9 * dim * k * 4 ** (bits + 1)
            bound = coordinate_bound(dim, clip, 16)
            assert bound * 2**16 == 2**bits - 1
    with pytest.raises(ConfigError):
        coordinate_bits(2**60, 1.0, 16)
    with pytest.raises(ConfigError):
        ratio(1e-9, 16)


def test_values_within_the_bound_pass() -> None:
    rng = np.random.default_rng(0)
    edge = 2**BITS - 1
    x = rng.integers(-edge, edge + 1, size=(6, 400))
    x[0, :4] = [edge, -edge, 0, -1]
    got = _check(split(_signed(x.ravel().tolist()).reshape(6, 400)))
    assert got.tolist() == [True] * 6


def test_the_wrap_around_coordinate_is_refused() -> None:
    # 2^32 encoded is 2^16 in the reals at f = 16: its square is 2^64 = 0
    rows = np.zeros((3, 50), dtype=np.int64)
    rows[1, 7] = 2**32
    rows[2, 0] = -(2**32)
    got = _check(split(from_signed(rows)))
    assert got.tolist() == [True, False, False]


@pytest.mark.parametrize(("seed", "block_rows"), [(0, None), (1, None), (2, 5), (3, 1)])
def test_any_shares_a_client_picks_are_sound(
    seed: int, block_rows: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accepted rows are below 3 * 2^l, whatever the three components are.

    ``block_rows``: party 0 streams its message in blocks of that many rows
    (13 and 64 blocks here; ``None``: the default, one block).
    """
    if block_rows is not None:
        monkeypatch.setattr(range_check, "_BLOCK_WORDS", 8 * block_rows)
    rng = np.random.default_rng(seed)
    n, d = 64, 8
    limit = 3 * 2**BITS
    # values around every interesting boundary, one per row
    centres = [0, 2**BITS, limit, 2**32, 2**62, 2**63 - 1, -(2**63)]
    x = np.empty((n, d), dtype=np.int64)
    for j in range(n):
        c = centres[j % len(centres)] * (1 if j % 2 else -1)
        for k, r in enumerate(rng.integers(-limit, limit, size=d)):
            x[j, k] = min(max(c + int(r), -(2**63)), 2**63 - 1)
    x[:4] = rng.integers(-(2**BITS) + 1, 2**BITS, size=(4, d))  # honest rows
    ring = from_signed(x)
    # adversarial components: A = x0 + x1 placed near the signed wrap point
    x0 = from_signed(
        rng.integers(-(2**63), 2**63 - 1, size=(n, d), dtype=np.int64, endpoint=True)
    )
    near = from_signed(np.full((n, d), 2**63 - 1, dtype=np.int64)) - x0
    uniform = split(ring)[1]
    kind = (np.arange(n) // len(centres)) % 3  # per row: which components
    x1 = np.where(kind[:, None] == 0, uniform, np.where(kind[:, None] == 1, near, ~x0))
    x2 = ring - x0 - x1
    got = _check((x0, x1, x2))
    assert 0 < got.sum() < n  # not vacuous: some rows pass, some do not
    for j in np.flatnonzero(got):
        assert np.all(np.abs(x[j].astype(object)) < limit), (j, x[j])


def test_a_streamed_block_is_traffic_but_not_a_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(range_check, "_BLOCK_WORDS", 50)  # one row per block
    rows = np.zeros((4, 50), dtype=np.int64)
    rows[2, 3] = 2**40
    x = views(split(from_signed(rows)))
    out, _ = run(lambda rt, xs: check_ranges(rt, xs, BITS), x)
    assert [v.tolist() for v in out.outputs] == [[True, True, False, True]] * 3
    sent = out.stats
    assert [s.rounds for s in sent] == [2, 2, 2]
    assert sent[0].messages_sent == 2 + 4 + 2  # seeds, 4 blocks, sums
    assert sent[0].bytes_sent >= 4 * 50 * 8


def test_num_tests_reach_40_bits() -> None:
    for bits in range(1, 40):
        assert num_tests(bits) * (bits + 1) >= 40
        assert (num_tests(bits) - 1) * (bits + 1) < 40


def test_the_wrap_around_attack_no_longer_escapes_clipping() -> None:
    """A client sends one coordinate of 2^16 (its square wraps to 0).

    Before the range check its norm looked like that of the rest of its update
    and its 65 536 went into the sum unclipped. Now it is left out and the
    others' clipped sum is released.
    """
    keys = generate_party_keys()
    cfg = ClipSumConfig(clip_norm=1.0, max_weight=10)
    rng = np.random.default_rng(3)
    d = 100
    x = rng.normal(size=(4, d)) * 0.05
    attack = x[3].copy()
    attack[5] = 2.0**16
    pk = {
        j: client_share(
            x[j],
            1,
            keys[0].public_keys,
            session=1,
            client_id=j,
            config=cfg,
            clamp=cfg.coordinate_bound(d),
        )
        for j in range(3)
    }
    pk[3] = client_share(  # the attacker does not clamp
        attack, 1, keys[0].public_keys, session=1, client_id=3, config=cfg
    )
    packages = [{j: p[i] for j, p in pk.items()} for i in range(3)]
    res, _ = simulate_clip_and_sum(keys, 1, packages, d, cfg)
    assert res.clients == (0, 1, 2)
    assert res.weight == 3
    assert np.max(np.abs(res.total)) < 1.0
    np.testing.assert_allclose(res.total, x[:3].sum(axis=0), atol=1e-3)


def test_honest_clients_clamp_to_the_bound() -> None:
    keys = generate_party_keys()
    cfg = ClipSumConfig(clip_norm=1.0)
    d = 1000
    bound = cfg.coordinate_bound(d)
    x = np.zeros(d)
    x[0], x[1] = 10 * bound, -10 * bound
    # two all-zero clients besides: a party computes no session of one client
    pk = {
        j: client_share(
            x if j == 0 else np.zeros(d),
            1,
            keys[0].public_keys,
            session=1,
            client_id=j,
            config=cfg,
            clamp=bound,
        )
        for j in range(3)
    }
    packages = [{j: p[i] for j, p in pk.items()} for i in range(3)]
    res, _ = simulate_clip_and_sum(keys, 1, packages, d, cfg)
    assert res.clients == (0, 1, 2)
    want = np.zeros(d)
    want[0], want[1] = bound, -bound
    want *= min(1.0, cfg.clip_norm / np.linalg.norm(want))
    np.testing.assert_allclose(res.total, want, atol=1e-3)
