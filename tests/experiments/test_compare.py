"""The comparison report: fits, plan, protocol-only measurements, the page.

The page and its figures are built from synthetic results here; the slow
test at the end runs a very small ``python -m experiments.compare`` end to
end.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from experiments.compare import protocol, simulation
from experiments.compare.approaches import (
    APPROACHES,
    Approach,
    ExternalResults,
    FlowerRun,
    by_key,
)
from experiments.compare.fit import power_law
from experiments.compare.measure import read_external
from experiments.compare.plots import plot_all
from experiments.compare.progress import Progress, clock
from experiments.compare.report import costs_table, dropout_summary, render
from experiments.compare.settings import CompareSettings
from experiments.simulate import ROOT, merged_node_configs
from fedsec.config import RunConfig
from fedsec.errors import ConfigError
from fedsec.secagg.stages import Stage
from strategies.loop import History, RoundRecord

from .hydra_runs import run_experiment

BASE = RunConfig.from_mapping({}).to_mapping()


# ----------------------------------------------------------------------- fits


def test_the_power_law_fit_recovers_the_exponent() -> None:
    ns = [5, 10, 20, 50, 200, 1000]
    fit = power_law(ns, [3.0 * n**0.5 for n in ns])
    assert fit is not None
    assert fit.exponent == pytest.approx(0.5)
    assert fit.coefficient == pytest.approx(3.0)
    assert fit.r2 == pytest.approx(1.0)
    assert (fit.n_min, fit.n_max, fit.points) == (5, 1000, 6)
    assert fit.at(100) == pytest.approx(30.0)
    flat = power_law([5, 50, 500], [7.0, 7.0, 7.0])
    assert flat is not None
    assert flat.exponent == pytest.approx(0.0, abs=1e-12)


def test_the_fit_needs_two_sizes_and_skips_empty_points() -> None:
    assert power_law([10, 10], [1.0, 2.0]) is None
    assert power_law([10], [1.0]) is None
    fit = power_law([10, 20, 40], [0.0, 4.0, 16.0])  # zero: no log, skipped
    assert fit is not None
    assert fit.points == 2
    assert fit.exponent == pytest.approx(2.0)
    noisy = power_law([1, 2, 4, 8], [1.0, 2.2, 3.8, 8.4])
    assert noisy is not None
    assert 0.9 < noisy.exponent < 1.1
    assert noisy.r2 < 1.0


# ---------------------------------------------------------------- the plan


def test_every_issue_approach_has_a_row() -> None:
    keys = [a.key for a in APPROACHES]
    assert keys == [
        "plain",
        "secagg_semi_honest",
        "secagg_active",
        "local_dp",
        "central_dp",
        "secagg_distributed_dp",
        "mpc",
        "mpc_dp",
        "vertical_mpc",
    ]
    vertical = by_key(("vertical_mpc",))[0]
    assert vertical.partition == "vertical"
    assert isinstance(vertical.source, FlowerRun)
    assert not vertical.source.drops  # no site outside the holders to lose
    with pytest.raises(ValueError, match="fhe"):
        by_key(("plain", "fhe"))


def test_a_simulation_holds_at_most_one_secure_aggregation_run() -> None:
    runs = simulation.approach_runs(BASE, list(APPROACHES), drop=1, num_clients=10)
    assert [k for k, _, _ in runs] == [a.key for a in APPROACHES]
    groups = simulation.groups([(k, cfg) for k, _, cfg in runs])
    assert sorted(k for g in groups for k, _ in g) == sorted(k for k, _, _ in runs)
    for g in groups:
        assert sum(cfg.secagg.enabled for _, cfg in g) <= 1
    # everything without secure aggregation rides in the first simulation
    first = {k for k, _ in groups[0]}
    assert first >= {"plain", "local_dp", "central_dp", "mpc", "vertical_mpc"}
    assert len(groups) == 3
    for key, _, cfg in runs:  # the highest partition drops at its mode's stage
        assert list(cfg.faults.drops()) == ([] if key == "vertical_mpc" else [9]), key


def test_sites_of_a_shared_simulation_agree_to_every_run() -> None:
    cfgs = [
        RunConfig.from_mapping({}),
        RunConfig.from_mapping({"secagg-mode": "semi_honest"}),
        RunConfig.from_mapping(
            {"mpc-mode": "clip_and_sum", "mpc-tls-dir": "/x", "mpc-max-weight": 5000}
        ),
    ]
    nodes = merged_node_configs(cfgs, 4)
    assert set(nodes[0]["policy-modes"].split(",")) == {"plain", "semi_honest", "mpc"}
    assert nodes[0]["mpc-tls-dir"] == "/x"  # a compute party
    assert nodes[3]["mpc-ca-file"] == "/x/ca.pem"  # a site checks the parties
    assert nodes[3]["policy-max-weight"] == 5000
    assert (
        merged_node_configs(cfgs, 4, {"policy-min-sites": 4})[2]["policy-min-sites"]
        == 4
    )


def _history(accuracies: list[float], seconds: float = 2.0) -> History:
    rounds = [
        RoundRecord(i + 1, a, 0.1, seconds, 100 * (i + 1), 300, {})
        for i, a in enumerate(accuracies)
    ]
    return History(initial=None, rounds=rounds, arrays=None)  # type: ignore[arg-type]


def test_time_to_target_adds_up_the_rounds_until_the_target() -> None:
    h = _history([0.80, 0.90, 0.96, 0.97])
    assert simulation.time_to_target(h, 0.95) == pytest.approx(6.0)
    assert simulation.time_to_target(h, 0.80) == pytest.approx(2.0)
    assert simulation.time_to_target(h, 0.99) is None


def test_settings_refuse_unknown_parts_and_approaches() -> None:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("compare")
    s = CompareSettings.from_mapping(cfg.compare)
    assert max(s.sparse_sizes) == 1000
    assert min(s.n_sizes) == 5
    assert max(s.n_sizes) == 200
    for key, value, match in (
        ("parts", ["approaches", "fhe"], "parts"),
        ("approaches", ["plain", "fhe"], "approaches"),
    ):
        bad = {**cfg.compare, key: value}
        with pytest.raises(ConfigError, match=match):
            CompareSettings.from_mapping(bad)


# ------------------------------------------------------------- protocol only


def test_secagg_cost_spreads_the_key_set_up_over_its_rounds() -> None:
    row = protocol.secagg_cost(6, 200, "semi_honest", "complete", seed=1)
    assert row["graph"] == "complete"
    assert row["setup_bytes_per_client"] > 0
    assert row["round_bytes_per_client"] > 0
    assert row["bytes_per_client_per_round"] == pytest.approx(
        row["round_bytes_per_client"]
        + row["setup_bytes_per_client"] / row["rounds_per_key_set"]
    )
    bigger = protocol.secagg_cost(12, 200, "semi_honest", "complete", seed=1)
    # every site shares with every other: the set-up grows with n
    assert bigger["setup_bytes_per_client"] > 1.8 * row["setup_bytes_per_client"]


def test_mpc_cost_is_constant_per_client_and_exact() -> None:
    small = protocol.mpc_cost(4, 300, seed=1)
    large = protocol.mpc_cost(12, 300, seed=1)
    assert small["bytes_per_client_per_round"] == large["bytes_per_client_per_round"]
    assert large["max_abs_error_sum"] < 1e-2


def test_dropouts_complete_exactly_up_to_n_minus_t_and_abort_beyond() -> None:
    kept = protocol.secagg_dropouts(
        "semi_honest", Stage.MASKED_INPUT, 0.4, n=10, dim=50, rounds=2, seed=1
    )
    assert kept["threshold"] == 5
    assert kept["completed_rounds"] == kept["exact_rounds"] == 2
    lost = protocol.secagg_dropouts(
        "semi_honest", Stage.MASKED_INPUT, 0.6, n=10, dim=50, rounds=2, seed=1
    )
    assert lost["completed_rounds"] == 0
    assert "threshold" in lost["abort_reason"]
    setup = protocol.secagg_dropouts(
        "active", Stage.ADVERTISE_KEYS, 0.4, n=10, dim=50, rounds=2, seed=1
    )
    assert setup["completed_rounds"] == 0  # t = 7 of 10: six left
    mpc = protocol.mpc_dropouts(0.5, n=10, dim=50, seed=1)
    assert mpc["completed_rounds"] == mpc["exact_rounds"] == 1
    too_few = protocol.mpc_dropouts(0.9, n=10, dim=50, seed=1)
    assert too_few["completed_rounds"] == 0
    assert "min-sites" in too_few["abort_reason"]


# ------------------------------------------------------ the page, synthetic


def _approach_row(key: str, accuracy: float, eps: float | None) -> dict[str, Any]:
    per_round = [
        {"round": r, "accuracy": accuracy - 0.02 * (3 - r), "seconds": 0.5}
        for r in (1, 2, 3)
    ]
    return {
        "name": key,
        "accuracy": accuracy,
        "epsilon": eps,
        "seconds_per_round": 0.5,
        "first_round_seconds": 0.9,
        "bytes_up_per_site_per_round": 1500.0,
        "dropped": 1,
        "drop_stage": "train",
        "rounds": 3,
        "completed_rounds": 3,
        "target_accuracy": 0.95,
        "time_to_target": 1.0 if accuracy >= 0.97 else None,
        "per_round": per_round,
    }


def synthetic_results() -> dict[str, Any]:
    """Results as a run would write them, with known power laws."""
    approaches = {
        a.key: _approach_row(a.key, 0.97, 8.4 if "dp" in a.key else None)
        for a in APPROACHES
    }
    approaches["secagg_active"] = {"name": "secagg_active", "error": "AbortError: x"}
    sizes = [5, 20, 50, 200]
    n_sweep = [
        {
            "family": fam,
            "clients": n,
            "task": "digits",
            "bytes_up_per_site_per_round": c * n**b,
            "seconds_steady": 0.01 * n,
            "load_average": 2.0,
        }
        for fam, c, b in (
            ("plain", 3000.0, 0.0),
            ("secagg_semi_honest", 2000.0, 0.3),
            ("mpc", 15000.0, 0.0),
        )
        for n in sizes
    ]
    protocol_n = [
        {
            "protocol": "secagg_semi_honest",
            "graph": "complete",
            "clients": n,
            "dim": 1000,
            "bytes_per_client_per_round": 100.0 * n,
            "server_seconds": 0.001 * n,
            "client_seconds_max": 0.001,
        }
        for n in (5, 10, 20, 50, 100, 200)
    ] + [
        {
            "protocol": "mpc_clip_and_sum",
            "clients": n,
            "dim": 1000,
            "bytes_per_client_per_round": 16515.0,
            "parties_bytes_per_client": 15440.0,
            "parties_seconds": 0.002 * n,
        }
        for n in (5, 100, 1000)
    ]
    d_sweep = [
        {"impl": impl, "clients": 10, "dim": d, "seconds_per_round": s * d / 1e5}
        for impl, s in (("plain", 0.1), ("fedsec", 0.13))
        for d in (100_000, 1_000_000)
    ]
    dropouts = [
        {
            "protocol": "secagg_semi_honest",
            "stage": "masked_input",
            "rate": rate,
            "clients": 20,
            "threshold": 10,
            "rounds": 2,
            "completed_rounds": 2 if rate <= 0.5 else 0,
            "exact_rounds": 2 if rate <= 0.5 else 0,
            "abort_reason": "" if rate <= 0.5 else "fewer survivors than the threshold",
        }
        for rate in (0.0, 0.3, 0.5, 0.6)
    ]
    expansion = [
        {
            "clients": 1024,
            "dim": 1 << 20,
            "paper": 1.73,
            "expansion": 1.711,
            "ring_bits": 26,
            "method": "computed",
        },
        {
            "clients": 16384,
            "dim": 1 << 24,
            "paper": 1.98,
            "expansion": 1.961,
            "ring_bits": 30,
            "method": "computed",
        },
    ]
    return {
        "approaches": approaches,
        "n_sweep": n_sweep,
        "d_sweep": d_sweep,
        "protocol_n": protocol_n,
        "protocol_d": [],
        "dropouts": dropouts,
        "expansion": expansion,
        "external": {},
        "meta": {
            "num_clients": 10,
            "num_rounds": 3,
            "drop": 1,
            "seed": 42,
            "cores": 2,
            "load_averages": [1.5, 3.0],
            "wall_seconds": 900.0,
            "commit": "abc1234",
        },
    }


def test_the_page_has_a_row_per_approach_and_every_section() -> None:
    page = render(synthetic_results())
    guarantees = page.split("## What each approach guarantees")[1].split("## ")[0]
    costs = page.split("## What each approach costs")[1].split("## ")[0]
    for a in APPROACHES:
        assert guarantees.count(f"| {a.title} | {a.partition} |") == 1, a.title
        mark = "¹" if a.note else ""  # a footnote to the measured row
        assert costs.count(f"| {a.title}{mark} |") == 1, a.title
    assert "error: AbortError: x" in page  # a failed run says so
    assert "| MPC training, vertically partitioned¹ | 0.9700 |" in costs
    assert "\n¹ one Flower round is the whole training" in costs
    # fitted exponents: linear protocol bytes, constant MPC, the sim's 0.3
    assert "n^1.00 (5–200)" in page
    assert "n^0.30 (5–200)" in page
    assert "protocol n^0.00 (5–1000)" in page
    # latency against d: secure aggregation over plain, in the same simulation
    assert "| 1,000,000 | 1.000 | 1.300 | 1.30× |" in page
    # dropouts: exact up to 50 %, the first abort at 60 % and why
    assert "| 50% | 60% | fewer survivors than the threshold |" in page
    # Bonawitz et al.'s expansion with the command that gives it
    assert "python -m experiments.expansion" in page
    assert "**1.71×**" in page
    assert "**1.96×**" in page
    assert "8.4" in page  # ε of the DP rows
    assert "15.0 minutes" in page
    # the findings on top, computed from the same results
    assert "takes 1.30× plain FedAvg's at n = 10, d = 1,000,000" in page
    assert "up to 50% of them dropping for semi-honest secure aggregation" in page
    assert "complete graph (SecAgg) n^1.00 (5–200)" in page
    assert "load average 1.5–3.0" in page


def test_the_page_renders_with_only_some_parts() -> None:
    results = synthetic_results()
    for part in ("n_sweep", "d_sweep", "protocol_n", "dropouts", "expansion"):
        results[part] = []
    page = render(results, ("plain", "mpc"))
    assert "## Dropout resilience" not in page
    assert "## Bonawitz" not in page
    assert "## Communication" not in page
    assert page.count("| plain FL (FedAvg) |") == 2  # guarantees and costs
    assert "secure aggregation" not in page.split("## What each approach costs")[1]


def test_dropout_summary_names_the_first_failing_rate() -> None:
    text = dropout_summary(synthetic_results()["dropouts"])
    assert "`masked_input` | 20 | 10 | 50% | 60% |" in text


def test_figures_are_written_for_synthetic_results(tmp_path: Path) -> None:
    written = plot_all(synthetic_results(), tmp_path)
    names = sorted(p.name for p in written)
    assert names == [
        "accuracy_vs_time.png",
        "bytes_vs_n.png",
        "dropouts.png",
        "latency_vs_d.png",
        "latency_vs_n.png",
    ]
    for p in written:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_external_results_fill_a_row_or_say_how_to(tmp_path: Path) -> None:
    source = ExternalResults(
        path="out/vertical.jsonl",
        command="python -m experiments.vertical > out/vertical.jsonl",
        fields={
            "accuracy": "accuracy_mpc",
            "seconds_total": "seconds_end_to_end",
            "parties_bytes": "bytes_between_parties",
        },
        match={"case": "breast_cancer"},
    )
    entry = Approach(
        "vertical_tls", "vertical, 3 processes over mTLS", "vertical", "-", "-", "-",
        "vertical", source,
    )  # fmt: skip
    missing = read_external(source, tmp_path)
    assert missing["missing"]
    text = costs_table([entry], {"external": {"vertical_tls": missing}}, 10)
    assert "not measured: run `python -m experiments.vertical > out/" in text
    path = tmp_path / source.path
    path.parent.mkdir(parents=True)
    rows = [
        {"case": "scale", "seconds_per_epoch": 16.2},
        {
            "case": "breast_cancer",
            "accuracy_mpc": 0.9823,
            "seconds_end_to_end": 13.7,
            "bytes_between_parties": 52_700_000,
        },
        {"case": "scale", "seconds_per_epoch": 17.0},
    ]
    path.write_text("not json\n" + "\n".join(json.dumps(r) for r in rows) + "\n")
    found = read_external(source, tmp_path)
    assert found["accuracy"] == 0.9823
    assert found["seconds_total"] == 13.7
    text = costs_table([entry], {"external": {"vertical_tls": found}}, 10)
    line = text.strip().splitlines()[-1]
    assert line.startswith("| vertical, 3 processes over mTLS | 0.9823 |")
    assert "13.7 end to end" in line
    assert "not measured" not in text


# ---------------------------------------------------------------- progress


def test_progress_prints_a_line_per_step_with_elapsed_and_eta() -> None:
    import io

    now = [0.0]
    out = io.StringIO()
    p = Progress(["a", "b", "c"], [10, 30, 60], out, now=lambda: now[0], use_tqdm=False)
    now[0] = 20.0  # twice as slow as expected
    p.done(0, "first")
    now[0] = 80.0
    p.done(1)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("compare [1/3] ##")
    assert "10%" in lines[0]
    assert "20s elapsed, ETA ~3m00s  a: first" in lines[0]
    assert "[2/3]" in lines[1]
    assert "40%" in lines[1]
    assert "1m20s elapsed, ETA ~2m00s  b" in lines[1]
    assert clock(3700) == "1h01m40s"
    assert math.isclose(p.total, 100)


# ------------------------------------------------------------- end to end


@pytest.mark.slow
def test_a_tiny_comparison_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "docs"
    proc = run_experiment(
        "compare",
        tmp_path / "run",
        f"compare.out_dir={out}",
        "num_rounds=2",
        "num_clients=4",
        "compare.target_accuracy=0.5",
        "compare.parts=[approaches,n_sweep,protocol,dropouts,expansion,external]",
        "compare.approaches=[plain,secagg_semi_honest,mpc,vertical_mpc]",
        "compare.n_sweep.sizes=[5]",
        "compare.protocol.complete=[4,8]",
        "compare.protocol.sparse=[40]",
        "compare.protocol.active=[4]",
        "compare.protocol.mpc=[4,8]",
        "compare.protocol.dims=[100]",
        "compare.protocol.dim=100",
        "compare.dropouts.clients=6",
        "compare.dropouts.rates=[0.0,0.5]",
        "compare.dropouts.rounds=1",
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the terminal shows progress lines, Flower's output went to the log
    assert re.search(r"^compare \[(\d+)/\1\] #{20} 100%", proc.stdout, re.M)
    assert "configure_train" not in proc.stdout
    assert (tmp_path / "run" / "compare.log").stat().st_size > 0
    results = json.loads((out / "comparison" / "results.json").read_text())
    assert "errors" not in results
    rows = results["approaches"]
    assert set(rows) == {"plain", "secagg_semi_honest", "mpc", "vertical_mpc"}
    for key, row in rows.items():
        assert row["accuracy"] >= 0.9, key
        assert row["time_to_target"] is not None  # 0.5 is reached at once
        if key != "vertical_mpc":
            assert row["completed_rounds"] == 2, key
            assert row["dropped"] == 1
    assert rows["secagg_semi_honest"]["drop_stage"] == "masked_input"
    # vertical: one Flower round is the whole training, nobody drops
    assert rows["vertical_mpc"]["completed_rounds"] == 1
    assert rows["vertical_mpc"]["dropped"] == 0
    families = {r["family"] for r in results["n_sweep"]}
    assert families == {"plain", "secagg_semi_honest", "mpc"}
    assert all("error" not in r for r in results["n_sweep"])
    page = (out / "comparison.md").read_text()
    assert "| MPC clip-and-sum |" in page
    assert "| MPC training, vertically partitioned¹ |" in page
    assert "**1.71×**" in page
    for name in ("bytes_vs_n", "latency_vs_n", "dropouts", "accuracy_vs_time"):
        assert (out / "comparison" / f"{name}.png").is_file()
    config = (out / "comparison" / "config.yaml").read_text()
    assert "seed: 42" in config
    # the page can be rebuilt from what was written beside it
    (out / "comparison.md").unlink()
    again = run_experiment(
        "compare", tmp_path / "run2", f"compare.out_dir={out}", "compare.replot=true"
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert (out / "comparison.md").read_text() == page
