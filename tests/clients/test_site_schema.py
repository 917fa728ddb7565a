"""A site reads its table with the request's schema, or refuses it for its pinned one;
its statistics handlers apply its policy (plain mode, DP, survivors at unmasking)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from flwr.app import ConfigRecord, Context, Message, RecordDict

from clients.analytics_handlers import plain_statistics
from clients.secagg_handlers import STATS_STATE_KEY, _check_statistics_release
from clients.site_config import SIM_SITES_ENV
from clients.site_data import load_site, request_schema
from fedsec.analytics.layout import Layout
from fedsec.analytics.local import site_quantities
from fedsec.analytics.noise import StatsNoise
from fedsec.config import DataConfig, RunConfig
from fedsec.data import Schema, shipped_schema, simulated_table
from fedsec.errors import ConfigError, PolicyError
from fedsec.flower.analytics import SCHEMA_KEY, STATISTICS_RECORD
from fedsec.policy import SitePolicy
from fedsec.secagg.messages import UnmaskRequest
from tests.data.test_schema import clinic

NODE: dict[str, Any] = {"partition-id": 2, "num-partitions": 4}
DATA = DataConfig()


@pytest.fixture(autouse=True)
def _no_simulated_sites(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SIM_SITES_ENV, raising=False)


def test_the_request_schema_unless_the_site_pinned_another(tmp_path: Path) -> None:
    asked = Schema.from_mapping(clinic())
    config = {SCHEMA_KEY: asked.to_json()}
    assert request_schema(config, {}, DATA) == asked
    assert request_schema({}, {}, DATA) == shipped_schema("breast_cancer")
    pin = tmp_path / "ours.yaml"
    pin.write_text(yaml.safe_dump(clinic()))
    assert request_schema(config, {"data-schema": str(pin)}, DATA) == asked
    other = Schema.from_mapping(clinic(name="wider"))
    with pytest.raises(ConfigError) as info:
        request_schema({SCHEMA_KEY: other.to_json()}, {"data-schema": str(pin)}, DATA)
    assert "node config data-schema=" in str(info.value)
    assert "'wider'" in str(info.value)


def test_a_site_file_with_the_global_scaling(tmp_path: Path) -> None:
    path = tmp_path / "site.csv"
    from fedsec.data.embedded import embedded_frame

    schema = shipped_schema("breast_cancer")
    embedded_frame(schema).iloc[:80].to_csv(path, index=False)
    own = load_site({"data-path": str(path)}, DATA, schema)
    np.testing.assert_allclose(own.train.x.mean(axis=0), 0.0, atol=1e-5)
    from fedsec.data import Scaling

    flat = Scaling(tuple([0.0] * 30), tuple([1.0] * 30), tuple([0.0] * 30))
    raw = load_site({"data-path": str(path)}, DATA, schema, flat)
    assert raw.train.x[:, 3].mean() > 100  # mean_area left in its units


def _context(**policy: Any) -> Context:
    node = NODE | {f"policy-{k.replace('_', '-')}": v for k, v in policy.items()}
    return Context(
        run_id=1, node_id=1, node_config=node, state=RecordDict(), run_config={}
    )


def _plain_request() -> Message:
    cfg = RunConfig.from_mapping({"mode": "analytics"})
    config = ConfigRecord(
        {**cfg.client_mapping(), SCHEMA_KEY: shipped_schema("breast_cancer").to_json()}
    )
    return Message(
        content=RecordDict({"config": config}),
        dst_node_id=1,
        message_type="query.analytics_plain",
    )


@pytest.mark.usefixtures("task_identity")
def test_plain_statistics_in_the_clear_only_where_the_policy_allows() -> None:
    reply = plain_statistics(_plain_request(), _context())
    assert not reply.has_error()
    schema = shipped_schema("breast_cancer")
    layout = Layout.of(schema, 20, 1_000_000)
    expected = site_quantities(simulated_table(schema, 2, 4), layout)
    assert list(reply.content[STATISTICS_RECORD]["values"]) == expected.tolist()
    refused = plain_statistics(_plain_request(), _context(modes="semi_honest"))
    assert refused.has_error()
    assert "policy-modes=semi_honest refuses plain" in refused.error.reason
    no_dp = plain_statistics(_plain_request(), _context(require_dp=True))
    assert "policy-require-dp=True refuses" in no_dp.error.reason


def _unmask(survivors: int) -> UnmaskRequest:
    nodes = tuple(range(1, survivors + 1))
    return UnmaskRequest(1, 1, 0, nodes, (), (), ())


def test_unmasking_statistics_checks_survivors_and_their_noise() -> None:
    ctx = _context()
    policy = SitePolicy(min_sites=3, min_noise_multiplier=1.5)
    _check_statistics_release(_unmask(2), ctx, policy)  # not a statistics round
    ctx.state[STATS_STATE_KEY] = ConfigRecord(StatsNoise().to_config())
    with pytest.raises(PolicyError, match="refuses 2 sites in the released statistics"):
        _check_statistics_release(_unmask(2), ctx, policy)
    _check_statistics_release(_unmask(3), ctx, SitePolicy(min_sites=3))
    ctx.state[STATS_STATE_KEY] = ConfigRecord(StatsNoise(2.0, 8).to_config())
    # 4 of the 8 expected survive: z_eff = 2 · sqrt(4/8) = 1.41 < 1.5
    with pytest.raises(PolicyError, match=r"min-noise-multiplier=1\.5 refuses"):
        _check_statistics_release(_unmask(4), ctx, policy)
    _check_statistics_release(_unmask(5), ctx, policy)  # 2 · sqrt(5/8) = 1.58
