"""Every Hydra config option composes into a valid typed run config."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from experiments.run import run_config_from_hydra
from experiments.simulate import ROOT

CONF = ROOT / "conf"
# options that only make sense together with another group's choice
COMPANIONS = {("dp", "distributed"): ["secagg=semi_honest"]}


def _options() -> list[tuple[str, str]]:
    return [
        (group.name, option.stem)
        for group in sorted(p for p in CONF.iterdir() if p.is_dir())
        for option in sorted(group.glob("*.yaml"))
    ]


@pytest.mark.parametrize(("group", "option"), _options())
def test_option_composes_into_run_config(group: str, option: str) -> None:
    overrides = [f"{group}={option}", *COMPANIONS.get((group, option), [])]
    with initialize_config_dir(str(Path(CONF)), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    run_config = run_config_from_hydra(cfg)
    if group in ("secagg", "dp", "mpc"):
        assert getattr(run_config, group).mode == cfg[group].mode
    if group == "strategy":
        assert run_config.strategy.name == option
    if group == "data":
        assert run_config.data.task == option


def test_defaults_compose_to_the_flower_app_defaults() -> None:
    from fedsec.config import RunConfig

    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config")
    assert run_config_from_hydra(cfg) == RunConfig()


@pytest.mark.parametrize(
    ("option", "graph"),
    [
        ("semi_honest", "auto"),
        ("active", "auto"),
        ("sparse", "sparse"),
        ("complete", "complete"),
    ],
)
def test_secagg_options_choose_their_graph(option: str, graph: str) -> None:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"secagg={option}"])
    assert run_config_from_hydra(cfg).secagg.graph == graph


@pytest.mark.parametrize(
    ("option", "threshold"),
    [("semi_honest", 0.5), ("sparse", 0.5), ("complete", 0.5), ("active", 2 / 3)],
)
def test_secagg_options_resolve_their_variant_threshold(
    option: str, threshold: float
) -> None:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"secagg={option}"])
    secagg = run_config_from_hydra(cfg).secagg
    assert secagg.effective_threshold == pytest.approx(threshold)
    assert secagg.protocol_config().threshold == pytest.approx(threshold)


def test_distributed_dp_option_sets_the_survivor_fraction() -> None:
    overrides = ["dp=distributed", *COMPANIONS[("dp", "distributed")]]
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[*overrides, "dp.survivor_fraction=0.8"])
    assert run_config_from_hydra(cfg).dp.survivor_fraction == 0.8
