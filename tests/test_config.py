"""The typed run config: defaults, parsing, refusal of bad values."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from fedsec.config import SECAGG_GRAPHS, ClientSettings, RunConfig
from fedsec.errors import ConfigError
from fedsec.secagg.config import GraphKind

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_equal_pyproject_run_config() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    flwr_config = pyproject["tool"]["flwr"]["app"]["config"]
    assert RunConfig.from_mapping(flwr_config) == RunConfig()
    assert set(flwr_config) == set(RunConfig().to_mapping())


def test_round_trip_through_flat_mapping() -> None:
    cfg = RunConfig.from_mapping(
        {"num-server-rounds": 3, "strategy": "fedprox", "task": "digits"}
    )
    assert cfg.num_rounds == 3
    assert cfg.strategy.name == "fedprox"
    assert RunConfig.from_mapping(cfg.to_mapping()) == cfg


def test_ints_are_accepted_for_floats() -> None:
    assert RunConfig.from_mapping({"learning-rate": 1}).train.learning_rate == 1.0


@pytest.mark.parametrize(
    ("mapping", "fragment"),
    [
        ({"num-server-round": 3}, "unknown run-config keys: num-server-round"),
        ({"task": "mnist"}, "task must be one of"),
        ({"num-server-rounds": "5"}, "num-server-rounds must be of type int"),
        ({"num-server-rounds": True}, "must be of type int"),
        ({"num-server-rounds": 0}, "must be positive"),
        ({"test-fraction": 1.5}, "test-fraction must lie in (0, 1)"),
        ({"fraction-train": 0.0}, "fraction-train"),
        ({"strategy": "bulyan"}, "strategy must be one of"),
        (
            {"secagg-graph": "ring"},
            "secagg-graph must be one of auto, complete, sparse; got 'ring'",
        ),
    ],
)
def test_bad_values_are_refused_with_the_key_named(
    mapping: dict, fragment: str
) -> None:
    with pytest.raises(
        ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")
    ):
        RunConfig.from_mapping(mapping)


def test_secagg_graph_defaults_to_auto_and_parses_every_kind() -> None:
    assert RunConfig().secagg.graph == "auto"
    assert set(SECAGG_GRAPHS) == {kind.value for kind in GraphKind}
    for name in SECAGG_GRAPHS:
        cfg = RunConfig.from_mapping(
            {"secagg-mode": "semi_honest", "secagg-graph": name}
        )
        assert cfg.secagg.protocol_config().graph is GraphKind(name)
    with pytest.raises(ConfigError) as info:
        RunConfig.from_mapping({"secagg-graph": "Auto"})
    message = str(info.value)
    assert message.startswith("secagg-graph must be one of")
    assert "\n" not in message


def test_client_settings_ignore_server_only_keys() -> None:
    cfg = RunConfig.from_mapping(
        {
            "model": "mlp",
            "local-epochs": 3,
            "dp-mode": "local_opacus",
            "faults-drop": "1:train",
        }
    )
    request = {**cfg.client_mapping(), "server-round": 2, "proximal-mu": 0.1}
    settings = ClientSettings.from_mapping(request)
    assert settings.train == cfg.train
    assert settings.data == cfg.data
    assert settings.dp == cfg.dp
    assert settings.faults == cfg.faults
    assert "strategy" not in cfg.client_mapping()


def test_privacy_sections_parse_and_conflicts_are_refused() -> None:
    cfg = RunConfig.from_mapping(
        {
            "secagg-mode": "active",
            "dp-mode": "distributed",
            "faults-drop": "2:unmask, 5:train",
        }
    )
    assert cfg.secagg.enabled
    assert cfg.faults.drops() == {2: "unmask", 5: "train"}
    with pytest.raises(ConfigError, match="not both"):
        RunConfig.from_mapping(
            {"secagg-mode": "semi_honest", "mpc-mode": "clip_and_sum"}
        )
    with pytest.raises(ConfigError, match="needs secure aggregation"):
        RunConfig.from_mapping({"dp-mode": "distributed"})
    with pytest.raises(ConfigError, match="partition:stage"):
        RunConfig.from_mapping({"faults-drop": "two:unmask"})
    with pytest.raises(ConfigError, match="faults-poison"):
        RunConfig.from_mapping({"faults-poison": "x"})
