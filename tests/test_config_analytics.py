"""Run-config keys of the analytics mode, the schema and the scaling source."""

from __future__ import annotations

import pytest

from fedsec.config import ClientSettings, RunConfig
from fedsec.errors import ConfigError


def test_defaults_train_with_the_shipped_schema_and_site_scaling() -> None:
    cfg = RunConfig()
    assert (cfg.mode, cfg.data.task_schema, cfg.data.standardise) == (
        "train",
        "",
        "site",
    )
    assert cfg.analytics.frac_bits == 20
    mapping = cfg.client_mapping()
    assert mapping["analytics-max-rows"] == 1_000_000
    assert ClientSettings.from_mapping(mapping).analytics == cfg.analytics


@pytest.mark.parametrize(
    ("mapping", "problem"),
    [
        ({"mode": "explore"}, "mode must be one of train, analytics"),
        ({"standardise": "local"}, "standardise must be one of site, global"),
        ({"analytics-frac-bits": 31}, "analytics-frac-bits must lie in [1, 30]"),
        ({"analytics-max-rows": 0}, "analytics-max-rows must be positive"),
        (
            {"analytics-frac-bits": 25, "analytics-max-rows": 10**6},
            "needs 2·frac-bits + log2(max-rows) <= 62 bits",
        ),
        ({"analytics-out": ""}, "analytics-out must name a folder"),
        (
            {"mode": "analytics", "mpc-mode": "clip_and_sum"},
            "not by MPC; set mpc-mode='none'",
        ),
        (
            {"mode": "analytics", "dp-mode": "central"},
            "inside the secure sum (dp-mode='distributed' with a secagg-mode)",
        ),
        ({"mode": "analytics", "dp-mode": "distributed"}, "needs secure aggregation"),
    ],
)
def test_bad_values_are_refused_naming_the_key(mapping: dict, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        RunConfig.from_mapping(mapping)
    assert problem in str(info.value)


def test_analytics_with_secure_aggregation_and_noise_is_accepted() -> None:
    cfg = RunConfig.from_mapping(
        {
            "mode": "analytics",
            "secagg-mode": "semi_honest",
            "dp-mode": "distributed",
            "task-schema": "/site/federation.yaml",
        }
    )
    assert cfg.data.task_schema == "/site/federation.yaml"
    assert RunConfig.from_mapping(cfg.to_mapping()) == cfg
