"""The vertical benchmark end to end: PSI, sharing, three party processes over mTLS."""

from __future__ import annotations

import json

from experiments import vertical


def test_breast_cancer_case_matches_float64_training(capsys) -> None:
    vertical.main(["--holders", "3", "--epochs", "2", "--repeats", "1"])
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["channel"] == "tcp+mtls"
    assert row["rows_intersection"] > 400
    assert abs(row["accuracy_mpc"] - row["accuracy_plain_spline"]) <= 0.01
    assert row["max_coef_diff_vs_spline"] < 0.034  # 2T * 2^-f, docs/vertical.md
    assert row["accuracy_mpc"] > 0.9
