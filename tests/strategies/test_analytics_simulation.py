"""The analytics run mode in Flower's simulation engine: real Ray backend, real crypto.

Secure statistics equal the pooled statistics of the surviving sites' rows
(and the plain mode's), files are written, each site's policy applies
(too few sites, too few survivors, too little noise), and training with the
federation's statistics reuses the statistics round's key set.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from experiments.simulate import simulate, simulate_analytics
from fedsec.config import RunConfig
from fedsec.data import shipped_schema, simulated_table
from fedsec.errors import AbortError

pytestmark = pytest.mark.slow

SITES = 5
SCHEMA = shipped_schema("breast_cancer")


@pytest.fixture
def server_log() -> Iterator[list[str]]:
    """Lines the ServerApp logs (the ``fedsec`` logger does not propagate)."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Keep()
    logger = logging.getLogger("fedsec")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def _config(tmp_path: Path, **extra: object) -> RunConfig:
    return RunConfig.from_mapping(
        {"mode": "analytics", "analytics-out": str(tmp_path), **extra}
    )


def test_secure_statistics_equal_pooled_rows_despite_dropouts(tmp_path: Path) -> None:
    # site 1 drops before masking (not summed), site 3 while unmasking (summed)
    drops = {"faults-drop": "1:masked_input,3:unmask"}
    cfg = _config(tmp_path / "secure", **drops, **{"secagg-mode": "semi_honest"})
    secure = simulate_analytics(cfg, SITES)
    assert secure.metrics["survivors"] == 4
    assert secure.metrics["dropped"] == 1
    stats = secure.statistics
    assert stats is not None
    assert stats.sites == 4
    tables = [simulated_table(SCHEMA, p, SITES) for p in (0, 2, 3, 4)]
    values = np.concatenate([t.values for t in tables])
    y = np.concatenate([t.y for t in tables])
    assert stats.rows == len(values)
    for j, feature in enumerate(SCHEMA.features):
        column = stats.features[j]
        assert column.count == len(values)
        assert abs(column.mean - values[:, j].mean()) <= column.error_bound
        assert abs(column.std - values[:, j].std()) <= column.error_bound
        hist, _ = np.histogram(values[:, j], bins=feature.edges())
        assert list(column.histogram) == hist.tolist()
    assert stats.target.levels == {"0": int((y == 0).sum()), "1": int((y == 1).sum())}
    document = json.loads((tmp_path / "secure" / "statistics.json").read_text())
    assert document["rows"] == stats.rows
    assert "| mean_radius |" in (tmp_path / "secure" / "statistics.md").read_text()
    assert (tmp_path / "secure" / "histograms.png").stat().st_size > 10_000
    # plain mode, the same site dropping: the same numbers, every site seen
    plain = simulate_analytics(
        _config(tmp_path / "plain", **{"faults-drop": "1:masked_input"}), SITES
    )
    assert plain.statistics is not None
    assert replace(plain.statistics, mode=stats.mode) == stats


def test_a_site_policy_of_more_sites_refuses_the_key_set(
    tmp_path: Path, server_log: list[str]
) -> None:
    cfg = _config(tmp_path, **{"secagg-mode": "semi_honest"})
    with pytest.raises(AbortError, match="released nothing"):
        simulate_analytics(cfg, SITES, site_policy={"policy-min-sites": SITES + 1})
    assert any(
        "policy-min-sites=6 refuses 5 sites in the key set" in line
        for line in server_log
    )
    assert not (tmp_path / "statistics.json").exists()


def test_sites_refuse_to_release_statistics_of_too_few_survivors(
    tmp_path: Path, server_log: list[str]
) -> None:
    # the key set holds 5 sites, as the policy asks, but one drops before
    # masking: the sum would be over 4, and the sites refuse to unmask it
    cfg = _config(
        tmp_path, **{"secagg-mode": "semi_honest", "faults-drop": "2:masked_input"}
    )
    with pytest.raises(AbortError, match="released nothing"):
        simulate_analytics(cfg, SITES, site_policy={"policy-min-sites": SITES})
    assert any(
        "policy-min-sites=5 refuses 4 sites in the released statistics" in line
        for line in server_log
    )


def test_distributed_noise_meets_the_sites_floor_or_is_refused(
    tmp_path: Path, server_log: list[str]
) -> None:
    dp = {"secagg-mode": "semi_honest", "dp-mode": "distributed"}
    cfg = _config(tmp_path, **dp, **{"dp-noise-multiplier": 1.0})
    with pytest.raises(AbortError, match="released nothing"):
        simulate_analytics(cfg, SITES, site_policy={"policy-min-noise-multiplier": 2.0})
    assert any("policy-min-noise-multiplier=2.0 refuses" in line for line in server_log)
    noisy = simulate_analytics(
        cfg, SITES, site_policy={"policy-min-noise-multiplier": 0.5}
    )
    stats = noisy.statistics
    assert stats is not None
    assert stats.noise_multiplier == pytest.approx(1.0)
    assert stats.epsilon is not None
    assert 0 < stats.epsilon < 20
    tables = [simulated_table(SCHEMA, p, SITES) for p in range(SITES)]
    values = np.concatenate([t.values for t in tables])
    exact = [
        np.histogram(values[:, j], bins=f.edges())[0].tolist()
        for j, f in enumerate(SCHEMA.features)
    ]
    released = [list(c.histogram) for c in stats.features]
    assert released != exact  # every count carries noise (σ >= 4 per site)


def test_training_with_the_federations_statistics() -> None:
    cfg = RunConfig.from_mapping(
        {
            "num-server-rounds": 2,
            "standardise": "global",
            "secagg-mode": "semi_honest",
        }
    )
    history = simulate(cfg, SITES)
    assert history.statistics is not None
    assert history.statistics.sites == SITES
    # the statistics round set up the key set: training rounds need no set-up
    assert [r.extra["round_trips"] for r in history.rounds] == [2, 2]
    assert history.final.accuracy >= 0.9
