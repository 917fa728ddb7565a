"""Secure aggregation in Flower's simulation engine: real Ray backend, real crypto."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.simulate import simulate
from fedsec.config import RunConfig
from fedsec.flower.records import flatten, record_to_weights

pytestmark = pytest.mark.slow


def _final(history) -> np.ndarray:
    return flatten(record_to_weights(history.arrays))


def test_dropouts_at_two_stages_give_fedavg_over_the_survivors() -> None:
    base = {"num-server-rounds": 3, "secagg-bits": 24, "secagg-clip": 2.0}
    # site 1 drops after training (no masked input); site 4 drops at unmasking,
    # after its masked input was received: its input still counts.
    secure = simulate(
        RunConfig.from_mapping(
            {
                **base,
                "secagg-mode": "semi_honest",
                "faults-drop": "1:masked_input,4:unmask",
            }
        ),
        num_clients=10,
    )
    plain = simulate(
        RunConfig.from_mapping({**base, "faults-drop": "1:train"}), num_clients=10
    )
    for record in secure.rounds:
        assert record.extra["survivors"] == 9
        assert record.extra["dropped"] == 1
        assert "aborted" not in record.extra
    # set-up (2 round trips) once, then 2 per secure round
    assert [r.extra["round_trips"] for r in secure.rounds] == [4, 2, 2]
    # equal to FedAvg over the same nine sites, within the quantisation error
    np.testing.assert_allclose(_final(secure), _final(plain), atol=2e-3)
    assert secure.final.accuracy >= 0.9


def test_too_many_dropouts_abort_and_keep_the_model() -> None:
    cfg = RunConfig.from_mapping(
        {
            "num-server-rounds": 2,
            "secagg-mode": "semi_honest",
            "secagg-threshold": 0.8,
            "faults-drop": "0:masked_input,1:masked_input",
        }
    )
    history = simulate(cfg, num_clients=5)
    for record in history.rounds:
        assert record.extra["aborted"] == 1
    assert history.rounds[-1].accuracy == history.initial.accuracy


def test_active_variant_signs_and_checks_consistency(tmp_path) -> None:
    cfg = RunConfig.from_mapping(
        {
            "num-server-rounds": 2,
            "secagg-mode": "active",
            "secagg-threshold": 0.67,
            "secagg-keys-dir": str(tmp_path / "keys"),
            "faults-drop": "2:unmask",
        }
    )
    history = simulate(cfg, num_clients=5)
    # set-up + masked input + consistency check + unmask; then 3 per round
    assert [r.extra["round_trips"] for r in history.rounds] == [5, 3]
    assert [r.extra["survivors"] for r in history.rounds] == [5, 5]
    assert history.final.accuracy >= 0.9
    # only the public registry and the sites' own keys exist: the server reads
    # the registry, each simulated site its own key
    assert (tmp_path / "keys" / "registry.json").is_file()


def test_a_site_sending_garbage_shares_is_left_out_of_the_next_key_set(
    tmp_path,
) -> None:
    """Site 2 sends garbage share ciphertexts, signed (a malicious site).

    Every honest site names it with proof instead of blaming the server; round
    1 cannot complete (its shares are missing everywhere) and the model stays
    as it was; the server leaves site 2 out of the next key set, and rounds 2
    and 3 complete with the other five sites.
    """
    secure = simulate(
        RunConfig.from_mapping(
            {
                "num-server-rounds": 3,
                "secagg-mode": "active",
                "secagg-keys-dir": str(tmp_path / "keys"),
                "faults-corrupt-shares": "2",
            }
        ),
        num_clients=6,
    )
    first, *rest = secure.rounds
    assert first.extra["aborted"] == 1
    assert first.accuracy == secure.initial.accuracy
    for record in rest:
        assert record.extra["survivors"] == 5
        assert record.extra["excluded"] == 1
        assert "aborted" not in record.extra
    assert secure.final.accuracy >= 0.9
