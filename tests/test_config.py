"""The typed run config: defaults, parsing, refusal of bad values."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from fedsec.config import (
    ACTIVE_DEFAULT_THRESHOLD,
    FAULT_STAGES,
    SECAGG_GRAPHS,
    ClientSettings,
    RunConfig,
)
from fedsec.errors import ConfigError
from fedsec.secagg.config import GraphKind, Variant
from fedsec.secagg.stages import Stage

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
        ({"min-available-nodes": -1}, "min-available-nodes must be >= 0"),
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


def test_the_federation_waited_for_is_at_least_min_nodes() -> None:
    assert RunConfig.from_mapping({}).strategy.available_nodes == 2
    cfg = RunConfig.from_mapping({"min-nodes": 3, "min-available-nodes": 10})
    assert cfg.strategy.available_nodes == 10
    cfg = RunConfig.from_mapping({"min-nodes": 5, "min-available-nodes": 4})
    assert cfg.strategy.available_nodes == 5


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
    with pytest.raises(ConfigError, match=r"secagg-mode and mpc-mode: .* not both"):
        RunConfig.from_mapping(
            {"secagg-mode": "semi_honest", "mpc-mode": "clip_and_sum"}
        )
    with pytest.raises(ConfigError, match="dp-mode 'distributed' needs secure aggr"):
        RunConfig.from_mapping({"dp-mode": "distributed"})
    with pytest.raises(ConfigError, match="partition:stage"):
        RunConfig.from_mapping({"faults-drop": "two:unmask"})
    with pytest.raises(ConfigError, match="faults-poison"):
        RunConfig.from_mapping({"faults-poison": "x"})


def _refused(mapping: dict, *fragments: str) -> str:
    """Parse ``mapping``, expect one refusal on one line, naming ``fragments``."""
    with pytest.raises(ConfigError) as info:
        RunConfig.from_mapping(mapping)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def test_active_variant_defaults_to_its_safe_threshold() -> None:
    cfg = RunConfig.from_mapping({"secagg-mode": "active"})
    assert cfg.secagg.threshold == 0.0  # "the variant's default", as requested
    assert cfg.secagg.effective_threshold == pytest.approx(2 / 3)
    assert cfg.secagg.effective_threshold == ACTIVE_DEFAULT_THRESHOLD
    protocol = cfg.secagg.protocol_config()
    assert protocol.variant is Variant.ACTIVE
    assert protocol.threshold == pytest.approx(2 / 3)
    assert protocol.threshold_for(10) == 7
    # the flat mapping keeps the request (0), so both sides resolve it alike
    assert RunConfig.from_mapping(cfg.to_mapping()) == cfg
    site = ClientSettings.from_mapping(cfg.client_mapping())
    assert site.secagg.protocol_config() == protocol


def test_semi_honest_threshold_defaults_to_half_and_explicit_ones_stay() -> None:
    semi = RunConfig.from_mapping({"secagg-mode": "semi_honest"}).secagg
    assert semi.effective_threshold == 0.5
    assert semi.protocol_config().threshold == 0.5
    assert RunConfig().secagg.effective_threshold == 0.5
    for mode, t in (("semi_honest", 0.8), ("active", 0.67), ("active", 1.0)):
        cfg = RunConfig.from_mapping({"secagg-mode": mode, "secagg-threshold": t})
        assert cfg.secagg.effective_threshold == t
        assert cfg.secagg.protocol_config().threshold == t


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.01])
def test_explicit_active_threshold_at_most_half_is_refused(threshold: float) -> None:
    _refused(
        {"secagg-mode": "active", "secagg-threshold": threshold},
        f"secagg-threshold={threshold}",
        "needs threshold > 1/2",
    )
    # the same value is fine for the semi-honest variant
    RunConfig.from_mapping(
        {"secagg-mode": "semi_honest", "secagg-threshold": threshold}
    )


@pytest.mark.parametrize(
    ("mapping", "key"),
    [
        ({"secagg-threshold": -0.1}, "secagg-threshold"),
        ({"secagg-threshold": 1.5}, "secagg-threshold"),
        ({"secagg-bits": 40}, "secagg-bits=40"),
        ({"secagg-bits": 1}, "secagg-bits=1"),
        ({"secagg-bits": 0}, "secagg-bits=0"),
        ({"secagg-degree": 3}, "secagg-degree=3"),
        ({"secagg-degree": 1}, "secagg-degree=1"),
        ({"secagg-degree": -2}, "secagg-degree=-2"),
        ({"secagg-max-weight": 0}, "secagg-max-weight=0"),
        ({"secagg-max-weight": 2**32}, "secagg-max-weight=4294967296"),
        ({"secagg-rounds-per-key-set": 0}, "secagg-rounds-per-key-set=0"),
        ({"secagg-rounds-per-key-set": 1001}, "secagg-rounds-per-key-set=1001"),
        ({"secagg-clip": float("inf")}, "secagg-clip=inf"),
        ({"secagg-clip": 0.0}, "secagg-clip=0.0"),
    ],
)
def test_secagg_protocol_bounds_are_checked_at_parse(mapping: dict, key: str) -> None:
    for mode in ("semi_honest", "active"):
        _refused({"secagg-mode": mode, **mapping}, key)


def test_secagg_protocol_bounds_accept_their_edges() -> None:
    for mapping in (
        {"secagg-bits": 2},
        {"secagg-bits": 32},
        {"secagg-degree": 0},
        {"secagg-degree": 2},
        {"secagg-degree": 8},
        {"secagg-max-weight": 2**32 - 1},
        {"secagg-rounds-per-key-set": 1000},
        {"secagg-threshold": 1.0},
    ):
        cfg = RunConfig.from_mapping({"secagg-mode": "active", **mapping})
        cfg.secagg.protocol_config()  # what the parse promised


@pytest.mark.parametrize(
    ("privacy", "hint"),
    [
        ({"secagg-mode": "semi_honest"}, "dp-mode='distributed'"),
        ({"secagg-mode": "active"}, "dp-mode='distributed'"),
        ({"mpc-mode": "clip_and_sum"}, "mpc-noise-multiplier"),
    ],
)
def test_central_dp_is_refused_where_the_server_sees_no_update(
    privacy: dict, hint: str
) -> None:
    message = _refused({"dp-mode": "central", **privacy}, "dp-mode 'central'", hint)
    assert next(iter(privacy)) in message
    RunConfig.from_mapping({"dp-mode": "central"})  # alone it is fine


@pytest.mark.parametrize(
    "drop", ["1:unmsk", "1:Unmask", "1:seed-reveal", "2:masked_input,3:mask"]
)
def test_unknown_fault_stage_is_refused_listing_the_known_ones(drop: str) -> None:
    message = _refused({"faults-drop": drop}, "faults-drop", "unknown stage")
    for stage in FAULT_STAGES:
        assert stage in message


def test_fault_stages_cover_every_stage_a_site_can_drop_at() -> None:
    drop = ",".join(f"{pid}:{stage}" for pid, stage in enumerate(FAULT_STAGES))
    cfg = RunConfig.from_mapping({"faults-drop": drop})
    assert set(cfg.faults.drops().values()) == set(FAULT_STAGES)
    assert "seed_reveal" in FAULT_STAGES
    # every secure-aggregation stage a site handles (all but idle)
    assert {s.value for s in Stage} - {"idle"} <= set(FAULT_STAGES)
    _refused({"faults-drop": "1:train,1:unmask"}, "faults-drop", "partition 1 twice")


@pytest.mark.parametrize(
    ("mapping", "fragment"),
    [
        ({"dp-target-epsilon": 3.0}, "dp-target-epsilon"),
        ({"dp-mode": "central", "dp-target-epsilon": 3.0}, "dp-target-epsilon"),
        (
            {"secagg-mode": "semi_honest", "dp-mode": "distributed"}
            | {"dp-target-epsilon": 3.0},
            "dp-target-epsilon",
        ),
        ({"dp-epsilon-budget": 5.0}, "dp-epsilon-budget"),
        ({"dp-mode": "central", "dp-epsilon-budget": 5.0}, "dp-epsilon-budget"),
        ({"dp-target-epsilon": -1.0}, "dp-target-epsilon must be >= 0"),
        ({"dp-noise-multiplier": float("inf")}, "dp-noise-multiplier"),
        ({"dp-clip-norm": float("nan")}, "dp-clip-norm"),
        ({"dp-survivor-fraction": 0.0}, "dp-survivor-fraction must lie in (0, 1]"),
        ({"dp-survivor-fraction": 1.5}, "dp-survivor-fraction"),
        ({"dp-survivor-fraction": -0.5}, "dp-survivor-fraction"),
        ({"mpc-noise-multiplier": 1.0}, "mpc-noise-multiplier"),
        ({"mpc-frac-bits": 29}, "mpc-frac-bits=29"),
        ({"mpc-frac-bits": 0}, "mpc-frac-bits"),
        ({"mpc-mode": "clip_and_sum", "mpc-frac-bits": 28}, "mpc-frac-bits=28"),
        ({"mpc-max-weight": 2**31}, "mpc-max-weight=2147483648"),
        ({"mpc-mode": "clip_and_sum", "mpc-clip-norm": 1e-6}, "mpc-clip-norm=1e-06"),
        ({"mpc-clip-norm": float("inf")}, "mpc-clip-norm"),
        ({"strategy": "krum", "secagg-mode": "semi_honest"}, "strategy 'krum'"),
        ({"strategy": "fedmedian", "mpc-mode": "clip_and_sum"}, "mpc-mode"),
        ({"strategy": "fedtrimmedavg", "dp-mode": "central"}, "dp-mode='central'"),
    ],
)
def test_other_impossible_or_unsafe_values_are_refused(
    mapping: dict, fragment: str
) -> None:
    _refused(mapping, fragment)


def test_what_the_refusals_leave_alone() -> None:
    ok = [
        {"dp-mode": "local_opacus", "dp-target-epsilon": 3.0},
        {"dp-mode": "local_opacus", "dp-epsilon-budget": 5.0},
        {"dp-mode": "local_opacus", "secagg-mode": "active"},
        {"dp-mode": "central", "dp-mechanism": "skellam"},  # ignored, not unsafe
        {"secagg-mode": "semi_honest", "dp-mode": "distributed"}
        | {"dp-survivor-fraction": 0.5},
        {"mpc-mode": "clip_and_sum", "mpc-noise-multiplier": 1.0},
        # with noise every weight is clamped to 1, so 28 bits fit
        {"mpc-mode": "clip_and_sum", "mpc-noise-multiplier": 1.0}
        | {"mpc-frac-bits": 28},
        {"strategy": "krum"},
        {"strategy": "krum", "dp-mode": "local_opacus"},
    ]
    for mapping in ok:
        RunConfig.from_mapping(mapping)
    cfg = RunConfig.from_mapping(
        {"secagg-mode": "semi_honest", "dp-mode": "distributed"}
        | {"dp-survivor-fraction": 0.5}
    )
    assert cfg.dp.survivor_fraction == 0.5
    assert RunConfig().dp.survivor_fraction == 1.0
    assert ClientSettings.from_mapping(cfg.client_mapping()).dp == cfg.dp
