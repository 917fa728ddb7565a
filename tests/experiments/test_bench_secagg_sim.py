"""The simulation benchmark: fedsec, Flower's SecAgg+ and plain FedAvg in one run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.bench_secagg_sim import (
    IMPLS,
    client_update,
    client_weight,
    reference_average,
    run_simulation_cases,
)

FIELDS = {
    "impl",
    "clients",
    "dim",
    "dropout",
    "graph",
    "seconds_per_round",
    "client_seconds",
    "server_seconds",
    "upload_bytes_per_client",
    "max_abs_error_sum",
    "max_abs_error_average",
    "rounds",
    "cores",
}


def _strict(token: str) -> float:
    raise ValueError(f"not JSON: {token}")


def test_synthetic_updates_are_deterministic_and_distinct() -> None:
    a = client_update(0, 7, 2, 100)
    np.testing.assert_array_equal(a, client_update(0, 7, 2, 100))
    assert not np.array_equal(a, client_update(0, 7, 3, 100))
    assert not np.array_equal(a, client_update(0, 8, 2, 100))
    assert a.dtype == np.float32
    assert client_weight(0, 7) == client_weight(0, 7)


def test_reference_is_the_weighted_average() -> None:
    nodes = [3, 11]
    w = [client_weight(1, u) for u in nodes]
    expected = sum(
        wi * client_update(1, u, 4, 10).astype(np.float64)
        for wi, u in zip(w, nodes, strict=True)
    ) / sum(w)
    np.testing.assert_allclose(reference_average(1, nodes, 4, 10), expected)


@pytest.mark.slow
def test_tiny_case_prints_one_valid_row_per_impl(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = run_simulation_cases([4], [1000], dropout=0.25, graph="complete", rounds=3)
    printed = [
        json.loads(line, parse_constant=_strict)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("{")
    ]
    assert printed == rows
    assert [r["impl"] for r in rows] == list(IMPLS)
    for row in rows:
        assert row.keys() >= FIELDS
        assert (row["clients"], row["dim"], row["rounds"]) == (4, 1000, 3)
        assert row["seconds_per_round"] > 0
        assert row["upload_bytes_per_client"] > 0
        assert row["client_seconds"] > 0
        assert row["server_seconds"] >= 0
    by_impl = {r["impl"]: r for r in rows}
    # one of four clients dropped after masking: its input still counts, and
    # the secure result equals the plaintext weighted average of all four
    assert by_impl["fedsec"]["dropped_clients"] == 1
    assert by_impl["fedsec"]["max_abs_error_average"] < 1e-4
    assert by_impl["plain"]["max_abs_error_average"] < 1e-6
    assert by_impl["flower-secaggplus"]["max_abs_error_average"] < 1e-3
    # fedsec's packed masked input is smaller than the float32 plaintext
    assert by_impl["fedsec"]["upload_bytes_per_client"] < 4 * 1000
