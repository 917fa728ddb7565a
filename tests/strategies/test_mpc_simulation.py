"""MPC clip-and-sum in Flower's simulation engine, against a poisoning site."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.simulate import _with_site_keys, simulate, site_node_configs
from fedsec.config import RunConfig
from fedsec.identity import load_registry, load_signing_key

# a boosted sign-flip: the site sends start − 100·(trained − start)
POISON = {"num-server-rounds": 2, "faults-poison": "5", "faults-poison-scale": -100.0}


def test_simulated_mpc_sites_get_the_consortiums_keys(tmp_path: Path) -> None:
    """Every site, parties included, gets the key folder: its key and the registry.

    Keys are only ever added: a second run with more sites keeps the first
    sites' keys (simulations sharing the folder never see a key change).
    """
    from fedsec.crypto.signatures import verify_key_of

    keys = tmp_path / "keys"
    cfg = RunConfig.from_mapping(
        {"mpc-mode": "clip_and_sum", "secagg-keys-dir": str(keys)}
    )
    configs = site_node_configs(_with_site_keys(cfg, 4), 4)
    assert [c["secagg-keys-dir"] for c in configs.values()] == [str(keys)] * 4
    assert [c["secagg-site"] for c in configs.values()] == [
        f"site{i}" for i in range(4)
    ]
    first = load_registry(keys)
    assert sorted(first) == [f"site{i}" for i in range(4)]
    for site, verify_key in first.items():
        assert verify_key_of(load_signing_key(keys, site)) == verify_key
    _with_site_keys(cfg, 6)
    second = load_registry(keys)
    assert sorted(second) == [f"site{i}" for i in range(6)]
    assert {s: second[s] for s in first} == first
    # a run without a key folder (not through simulate) shares unsigned
    plain = site_node_configs(RunConfig.from_mapping({"mpc-mode": "clip_and_sum"}), 3)
    assert not any("secagg-keys-dir" in c for c in plain.values())


@pytest.mark.slow
def test_mpc_clipping_keeps_the_model_accurate_plain_fedavg_does_not() -> None:
    mpc = simulate(
        RunConfig.from_mapping(
            {**POISON, "mpc-mode": "clip_and_sum", "mpc-clip-norm": 1.0}
        ),
        num_clients=10,
    )
    plain = simulate(RunConfig.from_mapping(POISON), num_clients=10)
    # every site's shares were used, the poisoned one clipped to norm C; the
    # three parties counted registered sites (signed packages), not packages
    assert [r.extra["included"] for r in mpc.rounds] == [10, 10]
    assert [r.extra["mpc_parties_checking_sites"] for r in mpc.rounds] == [3, 3]
    assert all(r.extra["mpc_bytes_between_parties"] > 0 for r in mpc.rounds)
    assert mpc.final.accuracy >= 0.9
    assert plain.final.accuracy < 0.7
    assert plain.final.loss > 3 * mpc.final.loss


@pytest.mark.slow
def test_mpc_noise_is_accounted_like_central_dp_with_unit_weights() -> None:
    """With noise inside the MPC, ε is reported per round; weights are clamped to 1.

    Every site claims its example count as weight; the parties clamp it to 1
    so one site moves the sum by at most C, which is what the accountant
    assumes. The same z, q and δ give central DP's ε.
    """
    from fedsec.dp.accounting import epsilon

    cfg = RunConfig.from_mapping(
        {
            "num-server-rounds": 2,
            "mpc-mode": "clip_and_sum",
            "mpc-clip-norm": 1.0,
            "mpc-noise-multiplier": 1.0,
            "dp-accountant": "rdp",
        }
    )
    history = simulate(cfg, num_clients=10)
    eps = [r.extra["epsilon"] for r in history.rounds]
    want = [epsilon(k, 1.0, 1.0, cfg.dp.delta, "rdp") for k in (1, 2)]
    assert eps == pytest.approx(want)
    assert eps[0] < eps[1]
    assert [r.extra["included"] for r in history.rounds] == [10, 10]
    assert history.final.accuracy >= 0.75  # noise z·C on a mean of 10 clipped updates


@pytest.mark.slow
def test_local_dp_sites_report_their_epsilon_through_mpc() -> None:
    """Sites training with DP-SGD send their ε with their packages; the max is shown."""
    cfg = RunConfig.from_mapping(
        {
            "num-server-rounds": 1,
            "mpc-mode": "clip_and_sum",
            "dp-mode": "local_opacus",
            "dp-noise-multiplier": 1.0,
            "local-epochs": 1,
        }
    )
    history = simulate(cfg, num_clients=3)
    (round_,) = history.rounds
    assert round_.extra["included"] == 3
    assert round_.extra["epsilon"] > 0
