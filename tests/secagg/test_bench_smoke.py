"""The protocol-only benchmark runs and reports every promised field."""

from __future__ import annotations

import json

import pytest

from experiments import bench_secagg

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
    "plaintext_float32_bytes",
    "max_abs_error_sum",
    "max_abs_error_average",
    "ring_bits",
    "sum_error_bound",
    "cores",
}


def test_protocol_only_prints_one_json_object_per_case(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bench_secagg.main(
        [
            "--protocol-only",
            "--clients",
            "6",
            "--dim",
            "1000",
            "--dropout",
            "0.2",
            "--graph",
            "complete",
            "sparse",
            "--rounds",
            "2",
        ]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        case = json.loads(line)
        assert set(case) >= FIELDS
        assert case["impl"] == "fedsec"
        assert case["upload_bytes_per_client"] < case["plaintext_float32_bytes"]
        assert case["max_abs_error_sum"] < 0.05  # 5 clients' rounding, weights <= 10
        assert case["max_abs_error_sum"] <= case["sum_error_bound"]
        assert case["max_abs_error_average"] < case["max_abs_error_sum"]
