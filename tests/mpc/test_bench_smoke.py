"""The benchmark's fedsec cases run and agree with the plaintext reference."""

from __future__ import annotations

import pytest

from experiments import bench_mpc
from fedsec.mpc.clip_and_sum import ClipSumConfig

CFG = ClipSumConfig(clip_norm=bench_mpc.CLIP, max_weight=bench_mpc.MAX_WEIGHT)


def _error_of_the_average(row: dict, n: int, d: int) -> float:
    # both errors, named as in every benchmark: the average's is the sum's
    # over the total clamped weight (weights here are below the clamp)
    _, w = bench_mpc.make_data(n, d)
    assert "max_abs_error" not in row
    assert row["max_abs_error_average"] == pytest.approx(
        row["max_abs_error_sum"] / float(w.sum())
    )
    return float(row["max_abs_error_average"])


@pytest.mark.parametrize("signed", [False, True])
def test_inproc_case_reports_small_error(signed: bool) -> None:
    row = bench_mpc.run_inproc(4, 300, 1, CFG, signed)
    assert _error_of_the_average(row, 4, 300) < 1e-4
    # 1 agree, 2 range check, 1 norms, 8 A2B, 6 suffix OR, 2 injection, 1
    # mantissa, guess and weights, 2 x 4 Newton, 2 scale, 1 final product: the
    # weight clamp rides along
    assert row["rounds"] == 32
    assert row["bytes_between_parties"] > 0
    # the protocol proper excludes opening the packages
    assert 0 < row["seconds_protocol"] < row["seconds"]


@pytest.mark.slow
@pytest.mark.parametrize("signed", [False, True])
def test_tcp_case_runs_three_party_processes(signed: bool) -> None:
    row = bench_mpc.run_tcp(3, 200, 1, CFG, signed)
    assert _error_of_the_average(row, 3, 200) < 1e-4
    assert row["bytes_output"] == 2 * 8 * 201
    assert 0 < row["seconds_protocol"] < row["seconds"]


def test_ratio_row_divides_mpyc_by_each_fedsec_time() -> None:
    mine = {"channel": "tcp", "clients": 10, "dim": 7}
    mine |= {"seconds": 0.04, "seconds_protocol": 0.025}
    row = bench_mpc.ratio_row(mine, {"seconds": 2.0})
    assert row["impl"] == "ratio"
    assert row["channel"] == "tcp"
    assert row["mpyc_over_fedsec"] == pytest.approx(50.0)
    assert row["mpyc_over_fedsec_protocol"] == pytest.approx(80.0)


def test_missing_mpyc_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench_mpc, "mpyc_available", lambda: False)
    with pytest.raises(SystemExit) as stop:
        bench_mpc.main(["--clients", "3", "--dim", "10", "--anchor", "mpyc"])
    assert stop.value.code == 2
    assert "pip install -e '.[mpyc]'" in capsys.readouterr().err
