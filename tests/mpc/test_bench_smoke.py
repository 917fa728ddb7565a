"""The benchmark's fedsec cases run and agree with the plaintext reference."""

from __future__ import annotations

import pytest

from experiments import bench_mpc
from fedsec.mpc.clip_and_sum import ClipSumConfig

CFG = ClipSumConfig(clip_norm=bench_mpc.CLIP, max_weight=bench_mpc.MAX_WEIGHT)


def test_inproc_case_reports_small_error() -> None:
    row = bench_mpc.run_inproc(4, 300, 1, CFG)
    assert row["max_abs_error"] < 5e-3
    assert row["rounds"] == 51
    assert row["bytes_between_parties"] > 0


@pytest.mark.slow
def test_tcp_case_runs_three_party_processes() -> None:
    row = bench_mpc.run_tcp(3, 200, 1, CFG)
    assert row["max_abs_error"] < 5e-3
    assert row["bytes_output"] == 2 * 8 * 201
