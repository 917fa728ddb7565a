"""The clip-and-sum program against a plaintext reference."""

from __future__ import annotations

import numpy as np
import pytest

from fedsec.errors import ConfigError
from fedsec.mpc.client import client_share
from fedsec.mpc.clip_and_sum import ClipSumConfig
from fedsec.mpc.keys import generate_party_keys
from fedsec.mpc.party import simulate_clip_and_sum

from .conftest import LAX_POLICY


def plaintext(x: np.ndarray, w: np.ndarray, cfg: ClipSumConfig) -> np.ndarray:
    enc = cfg.encoder
    bound = cfg.coordinate_bound(x.shape[1])
    xq = enc.decode(enc.encode(np.clip(x, -bound, bound)))
    norms = np.linalg.norm(xq, axis=1)
    scale = np.minimum(1.0, cfg.clip_norm / np.maximum(norms, 1e-300))
    return (np.clip(w, 0, cfg.max_weight) * scale) @ xq


def packages_for(keys, x, w, session=1, cfg=None, skip=()):
    pk = {
        j: client_share(
            x[j],
            int(w[j]),
            keys[0].public_keys,
            session=session,
            client_id=j,
            config=cfg,
            clamp=cfg.coordinate_bound(x.shape[1]),
        )
        for j in range(len(x))
        if j not in skip
    }
    return [{j: p[i] for j, p in pk.items()} for i in range(3)]


@pytest.fixture(scope="module")
def keys():
    return generate_party_keys()


def test_matches_plaintext_and_clips_a_100x_update(keys) -> None:
    rng = np.random.default_rng(0)
    n, d = 6, 500
    x = rng.normal(size=(n, d)) * (0.8 / np.sqrt(d))  # norms ~0.8 < C
    x[2] *= 100.0  # the poisoned update
    w = np.array([3, 1, 2, 5, 4, 1])
    cfg = ClipSumConfig(clip_norm=1.0, max_weight=10)
    res, parties = simulate_clip_and_sum(
        keys, 1, packages_for(keys, x, w, cfg=cfg), d, cfg
    )
    ref = plaintext(x, w, cfg)
    assert res.clients == tuple(range(n))
    assert res.weight == w.sum()
    np.testing.assert_allclose(res.total, ref, atol=5e-4)
    # isolate the poisoned client's contribution: it has norm w * C
    others = plaintext(np.delete(x, 2, 0), np.delete(w, 2), cfg)
    contribution = res.total - others
    assert np.linalg.norm(contribution) == pytest.approx(w[2] * cfg.clip_norm, rel=5e-3)
    assert all(
        p.last_report is not None and p.last_report.rejected_clients == ()
        for p in parties
    )


def test_unit_weights_give_the_clipped_sum(keys) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 64)) * np.array([[0.1], [10.0], [1.0], [300.0]])
    cfg = ClipSumConfig(clip_norm=2.0)
    res, _ = simulate_clip_and_sum(
        keys, 2, packages_for(keys, x, np.ones(4), 2, cfg), 64, cfg, policy=LAX_POLICY
    )
    # the 300x client sends coordinates at the bound (32 here): its scale's few
    # units of 2^-f in the last place times 32 dominate the error
    atol = 4 * cfg.coordinate_bound(64) * 2.0**-cfg.frac_bits
    np.testing.assert_allclose(res.total, plaintext(x, np.ones(4), cfg), atol=atol)


def test_missing_tampered_and_inconsistent_clients_are_left_out(keys) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(8, 32))
    w = np.ones(8)
    cfg = ClipSumConfig(clip_norm=1.0)
    pk = packages_for(keys, x, w, cfg=cfg, skip=(4,))  # client 4 sent nothing
    del pk[1][3]  # party 1 never got client 3's package
    tampered = bytearray(pk[2][1])
    tampered[-20] ^= 0xFF
    pk[2][1] = bytes(tampered)  # party 2 rejects client 1's package
    # client 0 equivocates: a different package (fresh sharing) for party 0
    other = client_share(
        x[0] * 50, 1, keys[0].public_keys, session=1, client_id=0, config=cfg
    )
    pk[0][0] = other[0]
    res, parties = simulate_clip_and_sum(keys, 1, pk, 32, cfg)
    kept = [2, 5, 6, 7]
    assert res.clients == tuple(kept)
    np.testing.assert_allclose(res.total, plaintext(x[kept], w[kept], cfg), atol=5e-4)
    assert parties[2].last_report.rejected_clients == (1,)


def test_weights_are_clamped(keys) -> None:
    x = np.full((5, 8), 0.1)
    # just above -2^63, W_max - w wraps: both sign bits are set, and it counts 0
    w = np.array([-5, 1_000_000, 7, -(2**63) + 3, 2**63 - 1], dtype=object)
    cfg = ClipSumConfig(clip_norm=10.0, max_weight=100)
    res, _ = simulate_clip_and_sum(
        keys, 3, packages_for(keys, x, w, 3, cfg), 8, cfg, policy=LAX_POLICY
    )
    assert res.weight == 0 + 100 + 7 + 0 + 100
    tenth = round(0.1 * 2**16) / 2**16  # 0.1 in fixed point
    np.testing.assert_allclose(res.total, np.full(8, 207 * tenth), atol=1e-3)


def test_noise_has_the_configured_variance(keys) -> None:
    d = 20_000
    x = np.zeros((3, d))
    cfg = ClipSumConfig(clip_norm=1.0, noise_std=0.5, noise_colluders=1)
    res, _ = simulate_clip_and_sum(
        keys, 4, packages_for(keys, x, np.ones(3), 4, cfg), d, cfg
    )
    # three independent parts of variance sigma^2 / 2 each: total 1.5 sigma^2
    expected = 1.5 * 0.25
    var = res.total.var()
    # sample variance of 20k Gaussians: relative s.e. sqrt(2/d) = 1%; allow 5 s.e.
    assert var == pytest.approx(expected, rel=0.05)
    assert abs(res.total.mean()) < 5 * np.sqrt(expected / d)


def test_noise_without_colluders_has_sigma_squared(keys) -> None:
    d = 20_000
    cfg = ClipSumConfig(clip_norm=1.0, noise_std=2.0, noise_colluders=0)
    res, _ = simulate_clip_and_sum(
        keys, 5, packages_for(keys, np.zeros((3, d)), np.ones(3), 5, cfg), d, cfg
    )
    assert res.total.var() == pytest.approx(4.0, rel=0.05)


def test_config_validation() -> None:
    with pytest.raises(ConfigError):
        ClipSumConfig(clip_norm=0.0)
    with pytest.raises(ConfigError):
        ClipSumConfig(clip_norm=1.0, noise_colluders=3)
    with pytest.raises(ConfigError):
        ClipSumConfig(clip_norm=1.0, noise_std=-1.0)


def test_output_share_round_trips_and_validates(keys) -> None:
    from fedsec.errors import ProtocolError
    from fedsec.mpc.clip_and_sum import OutputShare

    share = OutputShare(2, (4, 7), np.arange(5, dtype=np.uint64), np.ones(1, np.uint64))
    back = OutputShare.from_arrays(share.to_arrays())
    assert (back.party, back.clients) == (2, (4, 7))
    np.testing.assert_array_equal(back.total, share.total)
    bad = share.to_arrays() | {"clients": np.array([4], dtype=np.uint64)}
    with pytest.raises(ProtocolError):
        OutputShare.from_arrays(bad)
    with pytest.raises(ProtocolError):
        OutputShare.from_arrays({"meta": share.to_arrays()["meta"]})


def test_simulated_parties_reuse_buffers_across_rounds(keys) -> None:
    from fedsec.mpc.party import SimulatedParties

    cfg = ClipSumConfig(clip_norm=1.0, max_weight=10)
    sim = SimulatedParties(keys, cfg)
    rng = np.random.default_rng(5)
    for session, n in ((10, 4), (11, 3), (12, 4)):
        x = rng.normal(size=(n, 50))
        w = rng.integers(1, 5, size=n)
        res = sim.run(session, packages_for(keys, x, w, session, cfg), 50)
        assert res.clients == tuple(range(n))
        np.testing.assert_allclose(res.total, plaintext(x, w, cfg), atol=5e-4)
