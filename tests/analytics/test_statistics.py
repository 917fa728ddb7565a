"""Secure statistics equal the pooled statistics of every surviving site's rows.

Each site's integers travel as digits through the real secure-aggregation
protocol (sans-I/O, :class:`~fedsec.secagg.local.LocalFederation`), with and
without dropouts; the released statistics are compared with numpy's on the
concatenated rows of the sites whose inputs the sum holds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fedsec.analytics.digits import DigitLayout
from fedsec.analytics.layout import Layout
from fedsec.analytics.local import pooled_quantities, site_quantities
from fedsec.analytics.noise import StatsNoise, magnitudes
from fedsec.analytics.result import summarise
from fedsec.data import Schema
from fedsec.data.table import SiteTable, check_frame
from fedsec.dp.source import CryptoRandom
from fedsec.secagg.config import SecAggConfig
from fedsec.secagg.local import LocalFederation
from fedsec.secagg.stages import Stage
from tests.data.test_schema import clinic

SCHEMA = Schema.from_mapping(clinic())
NODES = [11, 12, 13, 14, 15, 16]
FRAC_BITS = 20


def _site(i: int) -> SiteTable:
    """A hospital: its own age distribution, smokers and missing values."""
    rng = np.random.default_rng(100 + i)  # test data
    rows = 30 + 7 * i
    frame = pd.DataFrame(
        {
            "age": rng.normal(40 + 6 * i, 8 + i, rows).clip(0, 120).round(2),
            "diabetic": rng.integers(0, 2, rows),
            "smoker": rng.choice(
                ["never", "former", "current"], rows, p=[0.6, 0.3, 0.1]
            ),
            "outcome": rng.choice(
                ["no", "yes"], rows, p=[0.7 - 0.05 * i, 0.3 + 0.05 * i]
            ),
        }
    ).astype({"age": object, "smoker": object, "diabetic": object})
    frame.loc[rng.choice(rows, 2 + i % 3, replace=False), "age"] = None
    frame.loc[rng.choice(rows, 1 + i % 2, replace=False), "smoker"] = ""
    frame.loc[rng.choice(rows, i % 2, replace=False), "diabetic"] = None  # dropped
    return check_frame(frame, SCHEMA, f"site{i}.csv")


TABLES = {node: _site(i) for i, node in enumerate(NODES)}


def _secure_sums(
    drops: dict[Stage, set[int]] | None, noise: StatsNoise | None = None
) -> tuple[Layout, list[int], tuple[int, ...], dict[int, np.ndarray]]:
    noise = noise or StatsNoise()
    layout = Layout.of(SCHEMA, FRAC_BITS, 10_000)
    digits = DigitLayout.of(magnitudes(layout, noise), 32, len(NODES))
    fed = LocalFederation(SecAggConfig(threshold=0.5, bits=32), NODES)
    fed.setup()
    noises = {u: noise.sample(layout, CryptoRandom(bytes([u]) * 32)) for u in NODES}
    inputs = {
        u: digits.encode(site_quantities(TABLES[u], layout) + noises[u]) for u in NODES
    }
    result = fed.ring_round(1, inputs, drops)
    return layout, digits.decode(result.ring_sum), result.survivors, noises


@pytest.mark.parametrize(
    "drops",
    [
        None,
        {Stage.MASKED_INPUT: {13}},  # its statistics never reach the server
        {Stage.UNMASK: {12, 15}},  # masked inputs in, then gone: still summed
    ],
    ids=["all", "drop-before-masking", "drop-while-unmasking"],
)
def test_secure_statistics_equal_the_pooled_rows(drops) -> None:
    layout, sums, survivors, _ = _secure_sums(drops)
    masked_out = drops.get(Stage.MASKED_INPUT, set()) if drops else set()
    assert set(survivors) == set(NODES) - masked_out
    tables = [TABLES[u] for u in survivors]
    assert sums == pooled_quantities(tables, layout)  # exact integers
    stats = summarise(layout, sums, sites=len(survivors), mode="secagg")
    values = np.concatenate([t.values for t in tables])
    y = np.concatenate([t.y for t in tables])
    assert stats.rows == len(values)
    assert stats.dropped == sum(t.dropped for t in tables)
    age = stats.feature("age")
    present = values[~np.isnan(values[:, 0]), 0]
    assert (age.count, age.missing) == (present.size, len(values) - present.size)
    bound = 120 / 2 ** (FRAC_BITS + 1)
    assert age.error_bound == pytest.approx(bound)
    assert abs(age.mean - present.mean()) <= bound
    assert abs(age.std - present.std()) <= bound
    assert age.sum == pytest.approx(present.sum(), abs=bound * present.size)
    assert age.sum_sq == pytest.approx(float((present**2).sum()), rel=1e-6)
    hist, _ = np.histogram(present, bins=np.linspace(0, 120, 13))
    assert list(age.histogram) == hist.tolist()
    width = 10.0
    for q, est in zip((0.25, 0.5, 0.75), age.quartiles, strict=True):
        assert abs(est - np.quantile(present, q)) <= width
    smoker = stats.feature("smoker")
    codes = values[:, 2]
    assert smoker.missing == int(np.isnan(codes).sum())
    assert list(smoker.levels.values()) == [int((codes == k).sum()) for k in range(3)]
    diabetic = stats.feature("diabetic")
    assert diabetic.mean == pytest.approx(np.nanmean(values[:, 1]))
    assert stats.target.levels == {
        "no": int((y == 0).sum()),
        "yes": int((y == 1).sum()),
    }


def test_noise_enters_the_sum_exactly_and_signed() -> None:
    noise = StatsNoise(noise_multiplier=1.0, expected=len(NODES))
    layout, sums, survivors, noises = _secure_sums({Stage.UNMASK: {14}}, noise)
    exact = pooled_quantities([TABLES[u] for u in survivors], layout)
    total_noise = sum(noises[u].astype(object) for u in survivors)
    assert sums == [int(e + n) for e, n in zip(exact, total_noise, strict=True)]
    assert any(n < 0 for n in total_noise)  # negative values cross the ring


def test_noise_scale_follows_sensitivity_and_survivors() -> None:
    layout = Layout.of(SCHEMA, FRAC_BITS, 10_000)
    noise = StatsNoise(noise_multiplier=2.0, expected=4)
    sigmas = noise.site_sigmas(layout)
    per_row = 2.0 * np.sqrt(layout.touched / 4)
    for q, sigma in zip(layout.quantities, sigmas, strict=True):
        assert sigma == pytest.approx(max(per_row * q.sensitivity, 4.0))
    rng = CryptoRandom(b"\x07" * 32)
    draws = np.stack([noise.sample(layout, rng) for _ in range(400)])
    big = [i for i, q in enumerate(layout.quantities) if q.sensitivity > 1]
    ratio = draws[:, big].std(axis=0) / sigmas[big]
    assert np.all(np.abs(ratio - 1.0) < 0.2)
    assert noise.effective(4) == pytest.approx(2.0)
    assert noise.effective(1) == pytest.approx(1.0)
    assert StatsNoise().effective(4) == 0.0
    assert not StatsNoise().sample(layout).any()
