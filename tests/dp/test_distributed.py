"""Distributed DP: calibration under dropouts, rounding, ring contract, end to end."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsec.dp.clipping import clip_rows_l2
from fedsec.dp.distributed import (
    DistributedDPParams,
    NoiseMechanism,
    _conditional_round,
    decode,
    encode,
    ring_bits_needed,
    ring_sum,
)
from fedsec.dp.rotation import unrotate
from fedsec.dp.source import CryptoRandom
from fedsec.errors import ConfigError, DataError

ROT = bytes(range(32))
MECHANISMS = list(NoiseMechanism)


def rng(tag: int) -> CryptoRandom:
    return CryptoRandom(tag.to_bytes(32, "big"))


def params(mechanism: NoiseMechanism, **kw: object) -> DistributedDPParams:
    base: dict[str, object] = {
        "dim": 1000,
        "clip_norm": 1.0,
        "noise_multiplier": 1.0,
        "num_clients": 6,
        "min_survivors": 4,
        "ring_bits": 32,
        "mechanism": mechanism,
    }
    base.update(kw)
    return DistributedDPParams(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_calibration_formula_covers_every_survivor_count(
    mechanism: NoiseMechanism,
) -> None:
    p = params(mechanism)
    target = (p.noise_multiplier * p.clip_norm) ** 2
    for survivors in range(p.min_survivors, p.num_clients + 1):
        total = survivors * p.client_variance * p.gamma**2  # original units
        assert total >= target * (1 - 1e-12)
        assert math.isclose(total, target * survivors / p.min_survivors, rel_tol=1e-9)
    # one survivor fewer than t would fall short: the threshold is what protects
    assert (p.min_survivors - 1) * p.client_variance * p.gamma**2 < target


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_noise_sum_has_target_variance_under_every_dropout_pattern(
    mechanism: NoiseMechanism,
) -> None:
    p = params(mechanism, dim=8192)
    zeros = np.zeros(p.dim, dtype=np.float32)  # the noise alone reaches the sum
    enc = np.stack([encode(zeros, p, ROT, rng(100 + i)) for i in range(p.num_clients)])
    target = (p.noise_multiplier * p.clip_norm) ** 2
    clients = range(p.num_clients)
    # every survivor set of size >= t, i.e. up to n - t dropouts
    for size in range(p.min_survivors, p.num_clients + 1):
        for survivors in itertools.combinations(clients, size):
            noise = decode(ring_sum(enc[list(survivors)], p.ring_bits), p, ROT, 1.0)
            var = float(np.var(noise))
            assert var >= 0.95 * target, (survivors, var)
            assert abs(var / (target * size / p.min_survivors) - 1) < 0.06
    # below the threshold the guarantee is gone (and SecAgg refuses to unmask)
    short = decode(ring_sum(enc[: p.min_survivors - 1], p.ring_bits), p, ROT, 1.0)
    assert float(np.var(short)) < 0.85 * target


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("bits", [20, 32, 64])
def test_end_to_end_mean_within_noise(mechanism: NoiseMechanism, bits: int) -> None:
    n, t, d = 8, 5, 3000
    p = params(mechanism, dim=d, num_clients=n, min_survivors=t, ring_bits=bits)
    source = rng(7)
    updates = 0.02 * (source.uniform(n * d).reshape(n, d) - 0.5)
    updates[0] *= 500.0  # far above the clipping norm
    reference = clip_rows_l2(updates, p.clip_norm)
    enc = np.stack(
        [
            encode(u.astype(np.float32), p, ROT, rng(200 + i))
            for i, u in enumerate(updates)
        ]
    )
    assert enc.dtype == np.uint64
    assert enc.shape == (n, p.padded_dim)
    assert int(enc.max()) < 2**bits
    for survivors in (list(range(n)), [0, 2, 3, 5, 7]):
        s = len(survivors)
        mean = decode(ring_sum(enc[survivors], bits), p, ROT, float(s))
        plain = reference[survivors].astype(np.float32).mean(axis=0)
        err = mean - plain
        noise_sd = p.noise_multiplier * p.clip_norm * math.sqrt(s / t) / s
        rounding_sd = p.gamma * math.sqrt(s / 4) / s
        rms = float(np.sqrt(np.mean(err**2)))
        assert 0.9 * noise_sd < rms < 1.1 * math.hypot(noise_sd, rounding_sd)
        assert abs(float(err.mean())) < 5 * noise_sd / math.sqrt(d)


def test_decode_accepts_a_uint32_ring_sum() -> None:
    p = params(NoiseMechanism.DISCRETE_GAUSSIAN, dim=100)
    enc = np.stack([encode(np.full(100, 0.05), p, ROT, rng(i)) for i in range(3)])
    as64 = decode(ring_sum(enc, 32), p, ROT, 3.0)
    as32 = decode(enc.astype(np.uint32).sum(axis=0, dtype=np.uint32), p, ROT, 3.0)
    assert np.array_equal(as64, as32)


def test_conditional_rounding_respects_the_bound() -> None:
    x = np.full(64, 0.5)  # unconditional rounding has norm ~ sqrt(32) > 5
    source = rng(3)
    norms = [
        float(np.linalg.norm(_conditional_round(x, 5.0, source).astype(float)))
        for _ in range(300)
    ]
    assert max(norms) <= 5.0
    with pytest.raises(ConfigError):
        _conditional_round(np.full(4, 2.0), 3.0, source)  # floor alone has norm 4


@pytest.mark.parametrize("bits", [12, 16, 32])
def test_conditional_rounding_bound_from_params(bits: int) -> None:
    p = params(NoiseMechanism.SKELLAM, dim=500, ring_bits=bits)
    source = rng(4)
    x = source.uniform(p.padded_dim) - 0.5
    x *= p.scaled_clip / np.linalg.norm(x)
    for _ in range(50):
        r = _conditional_round(x, p.rounded_norm_bound, source)
        assert np.linalg.norm(r.astype(float)) <= p.rounded_norm_bound
        assert np.all(np.abs(r - x) < 1.0)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_effective_noise_multiplier(mechanism: NoiseMechanism) -> None:
    fine = params(mechanism)
    assert 0.999 < fine.effective_noise_multiplier() <= fine.noise_multiplier
    coarse = params(mechanism, ring_bits=12)
    z_coarse = coarse.effective_noise_multiplier()
    assert z_coarse < 0.999 * coarse.noise_multiplier
    calibrated = coarse.calibrated(1.0)
    assert calibrated.effective_noise_multiplier() >= 1.0
    assert calibrated.noise_multiplier < 1.2


def test_discrete_gaussian_tau_penalises_tiny_noise() -> None:
    # a coarse grid leaves sigma < 1 integer step per client: tau dominates
    p = params(NoiseMechanism.DISCRETE_GAUSSIAN, granularity=2.0)
    assert p.client_variance < 1
    assert p.effective_noise_multiplier() < 0.1


def test_granularity_never_finer_than_float64_allows() -> None:
    p = params(NoiseMechanism.SKELLAM, ring_bits=64)
    assert p.scaled_clip == 2.0**24
    assert p.gamma == params(NoiseMechanism.SKELLAM, ring_bits=48).gamma
    assert p.gamma < params(NoiseMechanism.SKELLAM, ring_bits=24).gamma


@pytest.mark.parametrize("bits", [10, 16, 24])
def test_ring_bits_needed_inverts_gamma(bits: int) -> None:
    p = params(NoiseMechanism.DISCRETE_GAUSSIAN, ring_bits=bits)
    needed = ring_bits_needed(
        dim=p.dim,
        clip_norm=p.clip_norm,
        noise_multiplier=p.noise_multiplier,
        num_clients=p.num_clients,
        min_survivors=p.min_survivors,
        granularity=p.gamma,
    )
    assert needed == bits
    finer = ring_bits_needed(
        dim=p.dim,
        clip_norm=p.clip_norm,
        noise_multiplier=p.noise_multiplier,
        num_clients=p.num_clients,
        min_survivors=p.min_survivors,
        granularity=p.gamma / 4,
    )
    assert finer == bits + 2


@pytest.mark.parametrize(
    "kw",
    [
        {"min_survivors": 7},
        {"min_survivors": 0},
        {"ring_bits": 65},
        {"ring_bits": 3},
        {"clip_norm": 0.0},
        {"noise_multiplier": math.nan},
        {"beta": 1.0},
        {"granularity": -1.0},
    ],
)
def test_bad_params_raise(kw: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        params(NoiseMechanism.SKELLAM, **kw)


def test_unknown_mechanism_raises() -> None:
    with pytest.raises(ConfigError):
        params("laplace")  # type: ignore[arg-type]


def test_mechanism_parses_from_config_strings() -> None:
    p = params("skellam")  # type: ignore[arg-type]
    assert p.mechanism is NoiseMechanism.SKELLAM
    for name in ("dgauss", "discrete_gaussian"):
        assert NoiseMechanism.parse(name) is NoiseMechanism.DISCRETE_GAUSSIAN


def test_shape_and_value_errors() -> None:
    p = params(NoiseMechanism.SKELLAM, dim=10)
    with pytest.raises(DataError):
        encode(np.zeros(11), p, ROT)
    with pytest.raises(DataError):
        encode(np.full(10, np.nan), p, ROT)
    with pytest.raises(DataError):
        decode(np.zeros(10, dtype=np.uint64), p, ROT, 1.0)
    with pytest.raises(DataError):
        decode(np.zeros(16), p, ROT, 1.0)
    with pytest.raises(ConfigError):
        decode(np.zeros(16, dtype=np.uint64), p, ROT, 0.0)


def test_config_round_trip_pins_the_grid() -> None:
    p = params(NoiseMechanism.SKELLAM, ring_bits=20)
    cfg = p.to_config()
    assert all(isinstance(v, int | float | str) for v in cfg.values())
    again = DistributedDPParams.from_config(cfg)
    assert again.gamma == p.gamma
    assert again.mechanism is NoiseMechanism.SKELLAM
    assert again.client_variance == p.client_variance
    assert again.effective_noise_multiplier() == p.effective_noise_multiplier()


@pytest.mark.parametrize(
    "change",
    [
        {"dim": "10"},
        {"ring_bits": 3.5},
        {"clip_norm": True},
        {"mechanism": 1},
        {"mechanism": "laplace"},
        {"min_survivors": 99},
    ],
)
def test_config_errors(change: dict[str, object]) -> None:
    cfg: dict[str, object] = dict(params(NoiseMechanism.SKELLAM).to_config())
    cfg.update(change)
    with pytest.raises(ConfigError):
        DistributedDPParams.from_config(cfg)
    del cfg["beta"]
    with pytest.raises(ConfigError, match="beta"):
        DistributedDPParams.from_config(cfg)


@settings(max_examples=60, deadline=None)
@given(st.integers(4, 64), st.data())
def test_decode_centres_every_ring_element(bits: int, data: st.DataObject) -> None:
    p = params(NoiseMechanism.DISCRETE_GAUSSIAN, dim=8, ring_bits=bits, granularity=0.5)
    half = 1 << (bits - 1)
    values = data.draw(st.lists(st.integers(-half, half - 1), min_size=8, max_size=8))
    signed = np.array(values, dtype=object)
    wrapped = np.array([v % (1 << bits) for v in values], dtype=np.uint64)
    out = decode(wrapped, p, ROT, 2.0)
    expected = unrotate(signed.astype(np.float64) * 0.5, ROT, 8) / 2.0
    assert np.allclose(out, expected, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("bits", [8, 12, 16, 32])
def test_effective_multiplier_dominates_the_papers_rdp(
    mechanism: NoiseMechanism, bits: int
) -> None:
    p = params(mechanism, dim=200, ring_bits=bits)
    z = p.effective_noise_multiplier()
    sens = p.rounded_norm_bound
    var = p.min_survivors * p.client_variance
    l1 = min(sens**2, math.sqrt(p.padded_dim) * sens)
    k = np.arange(1, p.num_clients)
    tau = 10 * np.sum(np.exp(-2 * math.pi**2 * p.client_variance * k / (k + 1)))
    for alpha in [1.1, 1.5, 2, 3, 5, 8, 16, 32, 63, 256]:
        if mechanism is NoiseMechanism.SKELLAM:  # Agarwal et al., Theorem 3.5
            paper = alpha * sens**2 / (2 * var) + min(
                ((2 * alpha - 1) * sens**2 + 6 * l1) / (4 * var**2),
                3 * l1 / (2 * var),
            )
        else:  # Kairouz et al., Theorem 1 / Proposition 14
            scale_sq = sens**2 / var
            paper = min(
                alpha * scale_sq / 2 + tau * p.padded_dim,
                alpha / 2 * (math.sqrt(scale_sq) + math.sqrt(p.padded_dim) * tau) ** 2,
            )
        assert paper <= alpha / (2 * z**2) * (1 + 1e-12)
