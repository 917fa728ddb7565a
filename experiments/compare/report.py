"""``docs/comparison.md`` from the results document: tables, fits, figures.

Pure formatting: :func:`render` reads only the results (and the approach
table), so the page can be rebuilt from ``docs/comparison/results.json``
and tested on synthetic results.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from experiments.compare.approaches import Approach, ExternalResults, by_key
from experiments.compare.fit import PowerLaw, power_law

FIGURES = {
    "comm_n": "comparison/bytes_vs_n.png",
    "latency_n": "comparison/latency_vs_n.png",
    "latency_d": "comparison/latency_vs_d.png",
    "dropouts": "comparison/dropouts.png",
    "accuracy_time": "comparison/accuracy_vs_time.png",
}
FAMILY_TITLES = {
    "plain": "plain FL",
    "secagg_semi_honest": "secure aggregation",
    "secagg_active": "secure aggregation, active",
    "mpc": "MPC clip-and-sum",
}
DASH = "–"
MARKS = "¹²³⁴⁵⁶⁷⁸⁹"


def cell(value: Any, spec: str = "", unit: str = "") -> str:
    """A table cell: ``–`` for a missing value."""
    if value is None:
        return DASH
    return f"{format(value, spec)}{unit}"


def kb(value: float | None) -> str:
    """Bytes as kB with one decimal (three significant digits below 1 kB)."""
    if value is None:
        return DASH
    return f"{value / 1e3:.1f}" if value >= 1e3 else f"{value / 1e3:.3g}"


def table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def exponent(fit: PowerLaw | None) -> str:
    """``n^0.93 (5–200)``, or a dash."""
    if fit is None:
        return DASH
    b = round(fit.exponent, 2) + 0.0  # no "-0.00"
    return f"n^{b:.2f} ({fit.n_min:.0f}–{fit.n_max:.0f})"


# ------------------------------------------------------------------------ fits


def sim_fits(rows: Sequence[Mapping[str, Any]], key: str) -> dict[str, PowerLaw | None]:
    """Per family, ``key`` against n over the simulation sweep."""
    by: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in rows:
        if r.get(key) is not None:
            by[r["family"]].append((r["clients"], r[key]))
    return {f: power_law([n for n, _ in p], [y for _, y in p]) for f, p in by.items()}


def protocol_fits(
    rows: Sequence[Mapping[str, Any]], key: str = "bytes_per_client_per_round"
) -> dict[str, PowerLaw | None]:
    """Per protocol and graph (``secagg_semi_honest/complete``), ``key`` against n."""
    by: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in rows:
        if r.get(key) is not None:
            by[_series(r)].append((r["clients"], r[key]))
    return {s: power_law([n for n, _ in p], [y for _, y in p]) for s, p in by.items()}


def _series(row: Mapping[str, Any]) -> str:
    graph = row.get("graph")
    return f"{row['protocol']}/{graph}" if graph else str(row["protocol"])


def growth(family: str, results: Mapping[str, Any]) -> str:
    """How a family's bytes per site and round grow with n, fitted."""
    sim = sim_fits(results.get("n_sweep", []), "bytes_up_per_site_per_round")
    proto = protocol_fits(results.get("protocol_n", []))
    parts = []
    if sim.get(family):
        parts.append(f"sim {exponent(sim[family])}")
    if family in ("secagg_semi_honest", "secagg_active"):
        for graph in ("complete", "sparse"):
            fit = proto.get(f"{family}/{graph}")
            if fit:
                parts.append(f"{graph} {exponent(fit)}")
    if family == "mpc" and proto.get("mpc_clip_and_sum"):
        parts.append(f"protocol {exponent(proto['mpc_clip_and_sum'])}")
    return "; ".join(parts) or DASH


# ------------------------------------------------------------------ the tables


def guarantees_table(approaches: Sequence[Approach]) -> str:
    """Who learns what, against whom, with which dropouts: stated from the code."""
    return table(
        ["approach", "partition", "who learns what", "threat model", "dropouts"],
        ([a.title, a.partition, a.learns, a.threat, a.dropouts] for a in approaches),
    )


def _dropped_cell(row: Mapping[str, Any]) -> str:
    done = f"{row['completed_rounds']} of {row['rounds']}"
    if row.get("dropped"):
        return f"{done} ({row['dropped']} dropping at `{row['drop_stage']}`)"
    return done


def costs_table(
    approaches: Sequence[Approach], results: Mapping[str, Any], num_clients: int
) -> str:
    """The measured columns, one row per approach."""
    measured = results.get("approaches", {})
    external = results.get("external", {})
    latency = sim_fits(results.get("n_sweep", []), "seconds_steady")
    target = next(
        (r["target_accuracy"] for r in measured.values() if "target_accuracy" in r),
        None,
    )
    head = [
        "approach",
        "accuracy",
        "ε (δ = 1e−5)",
        f"s to accuracy ≥ {cell(target, 'g')}",
        "s/round",
        "first round s",
        f"kB sent per site per round (n = {num_clients})",
        "bytes per site per round ∝",
        "s/round ∝ (sim)",
        "rounds completed",
    ]
    rows = []
    notes: list[str] = []
    for a in approaches:
        title = a.title
        if a.note:
            notes.append(a.note)
            title += MARKS[len(notes) - 1]
        if isinstance(a.source, ExternalResults):
            rows.append(
                [
                    title,
                    *_external_cells(a.source, external.get(a.key), len(head) - 1),
                ]
            )
            continue
        r = measured.get(a.key)
        if r is None:
            rows.append(
                [title, "not measured (not in compare.approaches / parts)"]
                + [DASH] * (len(head) - 2)
            )
            continue
        if "error" in r:
            rows.append([title, f"error: {r['error']}"] + [DASH] * (len(head) - 2))
            continue
        ttt = r.get("time_to_target")
        rows.append(
            [
                title,
                cell(r.get("accuracy"), ".4f"),
                cell(r.get("epsilon"), ".3g"),
                cell(ttt, ".2f") if ttt is not None else f"not in {r['rounds']} rounds",
                cell(r.get("seconds_per_round"), ".2f"),
                cell(r.get("first_round_seconds"), ".2f"),
                kb(r.get("bytes_up_per_site_per_round")),
                growth(a.family, results),
                exponent(latency.get(a.family)),
                _dropped_cell(r),
            ]
        )
    footnotes = "".join(f"\n{MARKS[k]} {n}.\n" for k, n in enumerate(notes))
    return table(head, rows) + footnotes


def _external_cells(
    source: ExternalResults, found: Mapping[str, Any] | None, width: int
) -> list[str]:
    if not found or found.get("missing"):
        return [
            f"not measured: run `{source.command}`, then "
            "`python -m experiments.compare compare.replot=true`"
        ] + [DASH] * (width - 1)
    total = found.get("seconds_total")
    return [
        cell(found.get("accuracy"), ".4f"),
        DASH,
        DASH,
        DASH,
        f"{total:.1f} end to end" if total is not None else DASH,
        f"parties: {kb(found.get('parties_bytes'))} in all"
        if found.get("parties_bytes") is not None
        else DASH,
        DASH,
        DASH,
        DASH,
    ][:width]


def n_sweep_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Bytes and seconds per site and round against n, one line per n."""
    families = [f for f in FAMILY_TITLES if any(r["family"] == f for r in rows)]
    by = {(r["family"], r["clients"]): r for r in rows}
    sizes = sorted({r["clients"] for r in rows})
    head = (
        ["n"]
        + [f"{FAMILY_TITLES[f]}: kB/site/round" for f in families]
        + [f"{FAMILY_TITLES[f]}: s/round" for f in families]
        + ["load"]
    )
    out = []
    for n in sizes:
        line = [str(n)]
        for key, fmt in (
            ("bytes_up_per_site_per_round", None),
            ("seconds_steady", ".2f"),
        ):
            for f in families:
                r = by.get((f, n), {})
                if "error" in r:
                    line.append("error")
                elif fmt is None:
                    line.append(kb(r.get(key)))
                else:
                    line.append(cell(r.get(key), fmt))
        loads = [by[(f, n)].get("load_average") for f in families if (f, n) in by]
        line.append(cell(max((x for x in loads if x is not None), default=None), ".1f"))
        out.append(line)
    return table(head, out)


SERIES_TITLES = {
    "secagg_semi_honest/complete": "SecAgg, complete graph",
    "secagg_semi_honest/sparse": "SecAgg+, sparse graph",
    "secagg_active/complete": "active, complete",
    "secagg_active/sparse": "active, sparse",
    "mpc_clip_and_sum": "MPC clip-and-sum",
}


PROTOCOL_TITLES = {
    "secagg_semi_honest": "secure aggregation, semi-honest",
    "secagg_active": "secure aggregation, active",
    "mpc_clip_and_sum": "MPC clip-and-sum",
}


def series_title(series: str) -> str:
    """A protocol-only series as the page names it."""
    return SERIES_TITLES.get(series, series)


def protocol_table(rows: Sequence[Mapping[str, Any]], seconds: bool = False) -> str:
    """Protocol only, against n: bytes per client and round, or seconds per round.

    Seconds: secure aggregation's server plus its slowest client (what a
    deployment whose sites run in parallel waits for), the MPC parties'
    session (steady).
    """
    order = list(SERIES_TITLES)
    series = sorted(
        {_series(r) for r in rows},
        key=lambda s: order.index(s) if s in order else len(order),
    )
    by = {(_series(r), r["clients"]): r for r in rows}
    sizes = sorted({r["clients"] for r in rows})
    head = ["n"] + [series_title(s) for s in series]
    if not seconds and any("parties_bytes_per_client" in r for r in rows):
        head.append("MPC parties' traffic per client")
    out = []
    for n in sizes:
        line = [str(n)]
        for s in series:
            r = by.get((s, n))
            if seconds:
                line.append(cell(_protocol_seconds(r), ".3f"))
            else:
                line.append(cell(r and r.get("bytes_per_client_per_round"), ",.0f"))
        if len(head) > len(line):
            r = by.get(("mpc_clip_and_sum", n))
            line.append(cell(r and r.get("parties_bytes_per_client"), ",.0f"))
        out.append(line)
    return table(head, out)


def _protocol_seconds(r: Mapping[str, Any] | None) -> float | None:
    if not r:
        return None
    if "parties_seconds" in r:
        return float(r["parties_seconds"])
    return float(r["server_seconds"]) + float(r["client_seconds_max"])


def d_table(
    sim: Sequence[Mapping[str, Any]], proto: Sequence[Mapping[str, Any]]
) -> str:
    """Latency against the model size: simulation and protocol only."""
    sim_by = {(r["impl"], r["dim"]): r for r in sim}
    proto_by = {(r["protocol"], r["dim"]): r for r in proto}
    dims = sorted({d for _, d in sim_by} | {d for _, d in proto_by})
    head = [
        "d",
        "plain s/round (sim)",
        "secagg s/round (sim)",
        "secagg / plain",
        "secagg protocol s (server + slowest client)",
        "MPC parties s",
        "load",
    ]
    out = []
    for d in dims:
        p, f = sim_by.get(("plain", d)), sim_by.get(("fedsec", d))
        ratio = f["seconds_per_round"] / p["seconds_per_round"] if p and f else None
        load = f.get("load_average") if f else None
        out.append(
            [
                f"{d:,}",
                cell(p and p["seconds_per_round"], ".3f"),
                cell(f and f["seconds_per_round"], ".3f"),
                cell(ratio, ".2f", "×"),
                cell(_protocol_seconds(proto_by.get(("secagg_semi_honest", d))), ".3f"),
                cell(_protocol_seconds(proto_by.get(("mpc_clip_and_sum", d))), ".3f"),
                cell(load, ".1f"),
            ]
        )
    return table(head, out)


def dropout_summary(rows: Sequence[Mapping[str, Any]]) -> str:
    """Per protocol and stage: the largest rate that stayed exact, the first abort."""
    by: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        by[(r["protocol"], r["stage"])].append(r)
    out = []
    for (proto, stage), cases in by.items():
        cases = sorted(cases, key=lambda r: r["rate"])
        ok = [
            r["rate"]
            for r in cases
            if r["completed_rounds"] == r["rounds"] == r["exact_rounds"]
        ]
        failed = [r for r in cases if r["completed_rounds"] < r["rounds"]]
        first = failed[0] if failed else None
        out.append(
            [
                PROTOCOL_TITLES.get(proto, proto),
                f"`{stage}`",
                str(cases[0]["clients"]),
                str(cases[0]["threshold"]),
                cell(max(ok) if ok else None, ".0%"),
                cell(first and first["rate"], ".0%"),
                (first or {}).get("abort_reason", "") or DASH,
            ]
        )
    return table(
        [
            "protocol",
            "sites drop at",
            "n",
            "t",
            "every round completed and exact up to",
            "first rate with an aborted round",
            "why",
        ],
        out,
    )


def expansion_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Bonawitz et al.'s figures against fedsec's."""
    return table(
        ["users", "dimensions", "paper", "fedsec", "ring bits", "how"],
        (
            [
                f"2^{int(r['clients']).bit_length() - 1}",
                f"2^{int(r['dim']).bit_length() - 1}",
                f"{r['paper']:.2f}×",
                f"**{r['expansion']:.2f}×**",
                str(r["ring_bits"]),
                str(r["method"]),
            ]
            for r in rows
        ),
    )


# -------------------------------------------------------------------- the page


def render(results: Mapping[str, Any], approaches: Sequence[str] = ()) -> str:
    """The whole page: a row for each of ``approaches`` (default: those the
    run measured, ``meta.approaches``; all of them if it does not say)."""
    meta = results.get("meta", {})
    chosen = by_key(tuple(approaches or meta.get("approaches", ())))
    n = int(meta.get("num_clients", 10))
    parts = [
        _header(meta),
        headline(results),
        "## What each approach guarantees\n",
        _GUARANTEES_INTRO,
        guarantees_table(chosen),
        _costs_section(chosen, results, meta, n),
    ]
    if results.get("n_sweep") or results.get("protocol_n"):
        parts.append(_comm_section(results))
    if results.get("d_sweep") or results.get("protocol_d") or results.get("n_sweep"):
        parts.append(_latency_section(results))
    if results.get("dropouts"):
        parts.append(_dropout_section(results))
    if results.get("expansion"):
        parts.append(_expansion_section(results["expansion"]))
    parts.append(_method_section(results, meta))
    return "\n".join(p.rstrip() + "\n" for p in parts)


def headline(results: Mapping[str, Any]) -> str:
    """The page's findings in a few bullets, each computed from the results."""
    out = []
    sim = {(r["impl"], r["dim"]): r for r in results.get("d_sweep", [])}
    dims = sorted(d for impl, d in sim if impl == "fedsec" and ("plain", d) in sim)
    if dims:
        d = dims[-1]
        p, f = sim[("plain", d)], sim[("fedsec", d)]
        out.append(
            f"Secure aggregation's round takes "
            f"{f['seconds_per_round'] / p['seconds_per_round']:.2f}× plain FedAvg's "
            f"at n = {f['clients']}, d = {d:,} in Flower's simulation "
            f"({f['seconds_per_round']:.2f} s against {p['seconds_per_round']:.2f} s)."
        )
    proto = protocol_fits(results.get("protocol_n", []))
    growth_parts = [
        f"{label} {exponent(proto[key])}"
        for key, label in (
            ("secagg_semi_honest/complete", "complete graph (SecAgg)"),
            ("secagg_semi_honest/sparse", "sparse graph (SecAgg+)"),
            ("mpc_clip_and_sum", "MPC clip-and-sum"),
        )
        if proto.get(key)
    ]
    if growth_parts:
        out.append(
            "A site's bytes per round grow as "
            + ", ".join(growth_parts)
            + " (protocol only, set-up spread over a key set)."
        )
    drops = results.get("dropouts", [])
    tolerance = _tolerance(drops)
    if tolerance:
        top = max(r["rate"] for r in drops)
        named = {
            "secagg_semi_honest": "semi-honest secure aggregation",
            "secagg_active": "the active variant",
            "mpc_clip_and_sum": "MPC clip-and-sum",
        }
        out.append(
            "Whatever the stage at which sites drop, every round completes exactly "
            "with up to "
            + ", ".join(
                f"{v:.0%}{' (the most measured)' if v >= top else ''} of them "
                f"dropping for {named.get(k, k)}"
                for k, v in tolerance
            )
            + "; with more, secure aggregation aborts and reveals nothing."
        )
    rows = results.get("approaches", {})
    accs = {k: r["accuracy"] for k, r in rows.items() if r.get("accuracy") is not None}
    if accs:
        titles = {a.key: a.title for a in by_key(())}
        lo, hi = min(accs, key=accs.__getitem__), max(accs, key=accs.__getitem__)
        out.append(
            f"Accuracy on the default data ranges from {accs[lo]:.4f} "
            f"({titles.get(lo, lo)}) to {accs[hi]:.4f} ({titles.get(hi, hi)})."
        )
    exp = results.get("expansion", [])
    if exp:
        out.append(
            "Bonawitz et al.'s expansion reproduced: "
            + ", ".join(f"{r['expansion']:.2f}× (paper {r['paper']:.2f}×)" for r in exp)
            + "."
        )
    return "".join(f"- {line}\n" for line in out)


def _tolerance(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, float]]:
    """Per protocol, the largest rate at which every stage stayed exact."""
    by: dict[str, dict[str, float]] = defaultdict(dict)
    for r in rows:
        exact = r["completed_rounds"] == r["rounds"] == r["exact_rounds"]
        stages = by[r["protocol"]]
        best = stages.get(r["stage"], -1.0)
        if exact:
            stages[r["stage"]] = max(best, r["rate"])
        else:
            stages.setdefault(r["stage"], -1.0)
    return [
        (p, min(st.values())) for p, st in by.items() if st and min(st.values()) >= 0
    ]


def _header(meta: Mapping[str, Any]) -> str:
    loads = meta.get("load_averages") or []
    load = (
        f"1-minute load average {min(loads):.1f}–{max(loads):.1f}"
        if loads
        else "load not recorded"
    )
    wall = meta.get("wall_seconds")
    return (
        "# MPC versus FL, measured\n\n"
        "What each way of training together costs and guarantees, one row per "
        "approach, every number measured by one command:\n\n"
        "```bash\n"
        "python -m experiments.compare                      # measure, write this\n"
        "python -m experiments.compare compare.replot=true  # rebuild from results\n"
        "```\n\n"
        f"This page: measured {meta.get('finished', '?')} at commit "
        f"`{meta.get('commit', '?')}` in {cell(wall and wall / 60, '.1f')} minutes on "
        f"{meta.get('cores', '?')} cores ({load}; the machine is shared, so "
        "absolute times vary run to run, ratios within one simulation less). "
        f"Seed {meta.get('seed', '?')}; the full config is "
        "[comparison/config.yaml](comparison/config.yaml) (measure again with it: "
        "`python -m experiments.compare --config-path $PWD/docs/comparison "
        "--config-name config`), every measured value "
        "[comparison/results.json](comparison/results.json).\n"
    )


_GUARANTEES_INTRO = (
    "Stated from the code and [threat-model.md](threat-model.md) (`t`: the "
    "secret-sharing threshold of a site's neighbourhood; `n`: sites; every "
    "site also enforces its own policy floors, whatever the server asks).\n\n"
)


def _costs_section(
    chosen: Sequence[Approach],
    results: Mapping[str, Any],
    meta: Mapping[str, Any],
    n: int,
) -> str:
    rounds = meta.get("num_rounds", "?")
    drop = meta.get("drop", 0)
    return (
        "## What each approach costs and gives\n\n"
        f"{meta.get('task', 'breast_cancer')} (the default data), "
        f"{meta.get('model', 'logreg')} "
        f"({meta.get('model_parameters', '?')} parameters), "
        f"{n} sites, {rounds} rounds of FedAvg in Flower's simulation, "
        f"{drop} site{'s' if drop != 1 else ''} dropping every round at its "
        "mode's own stage "
        "(after training: before its masked input, its MPC shares, or its update; "
        "the vertical run has no site beyond its holders and parties to lose). "
        '"s/round" is the median of the rounds after the first; the first round '
        "holds the approach's own set-up (keys, finding the compute parties), not "
        "Ray's start-up. Time to target adds up the rounds until the global model "
        "first reaches the target accuracy on the server's test split. kB are what a "
        "site sends (mean over sites and rounds). The growth columns are the "
        "exponents fitted below (communication against n, latency against n).\n\n"
        + costs_table(chosen, results, n)
        + "\nOne run per approach: the DP rows move by a point or two from run to run "
        "(their noise is secret, so not seeded).\n"
    )


def _comm_section(results: Mapping[str, Any]) -> str:
    text = (
        "## Communication per site and round against n\n\n"
        f"![bytes per site per round against n]({FIGURES['comm_n']})\n\n"
        "Set-up (key agreement, finding the compute parties) is spread over a key "
        "set's life, 5 rounds (`secagg-rounds-per-key-set`). In the simulation "
        "(no dropouts, "
    )
    task = next(
        (r.get("task") for r in results.get("n_sweep", []) if r.get("task")), "digits"
    )
    text += (
        f"{task}: enough rows for 200 sites) secure aggregation uses its default graph "
        "(complete below 32 sites, SecAgg+'s sparse graph from 32), hence the kink. "
        "Protocol only, the same protocol parameters run in one process "
        "(`fedsec.secagg.local`, `fedsec.mpc.party.SimulatedParties`) up to "
        "1000 sites.\n\n"
    )
    if results.get("n_sweep"):
        text += "Flower simulation:\n\n" + n_sweep_table(results["n_sweep"]) + "\n"
    if results.get("protocol_n"):
        d = results["protocol_n"][0].get("dim")
        text += (
            f"Protocol only (d = {d}), bytes per client and round:\n\n"
            + protocol_table(results["protocol_n"])
            + "\nand seconds per round (secure aggregation: the server plus the "
            "slowest client, as a deployment with parallel sites waits for; MPC: "
            "the parties' session after the first):\n\n"
            + protocol_table(results["protocol_n"], seconds=True)
            + "\n"
        )
        fits = protocol_fits(results["protocol_n"])
        fits_setup = protocol_fits(results["protocol_n"], "setup_bytes_per_client")
        fits_parties = protocol_fits(results["protocol_n"], "parties_bytes_per_client")
        sim = sim_fits(results.get("n_sweep", []), "bytes_up_per_site_per_round")
        rows = [
            [
                f"sim: {FAMILY_TITLES.get(f, f)}",
                exponent(fit),
                cell(fit and fit.r2, ".3f"),
            ]
            for f, fit in sim.items()
        ]
        rows += [
            [series_title(s), exponent(fit), cell(fit and fit.r2, ".3f")]
            for s, fit in fits.items()
        ]
        rows += [
            [
                f"{series_title(s)}: key set-up alone",
                exponent(fit),
                cell(fit and fit.r2, ".3f"),
            ]
            for s, fit in fits_setup.items()
        ]
        rows += [
            [
                f"{series_title(s)}: parties' traffic per client",
                exponent(fit),
                cell(fit and fit.r2, ".3f"),
            ]
            for s, fit in fits_parties.items()
        ]
        text += (
            "Fitted `bytes ≈ c · n^b` (the key set-up of the complete graph grows "
            "linearly, a share for every other site; spread over its rounds beside "
            "the d-sized masked input, the per-round exponent is smaller over "
            "these n):\n\n"
        ) + table(["series", "b (range of n)", "R²"], rows)
    return text


def _latency_section(results: Mapping[str, Any]) -> str:
    text = "## Latency per round against n and d\n\n"
    if results.get("n_sweep") or results.get("protocol_n"):
        fits = sim_fits(results.get("n_sweep", []), "seconds_steady")
        text += (
            f"![seconds per round against n]({FIGURES['latency_n']})\n\n"
            "Steady rounds in the simulation (table above): "
            + "; ".join(
                f"{FAMILY_TITLES.get(f, f)} {exponent(fit)}" for f, fit in fits.items()
            )
            + ". On 2 cores the simulated sites take turns, so a round's time "
            "grows with n whatever the protocol (the fitted exponents stay below 1 "
            "where a round's fixed costs still weigh at small n); the protocol-only "
            "seconds (server plus the slowest client, as a deployment with parallel "
            "sites would wait for) are in the protocol table.\n\n"
        )
    if results.get("d_sweep") or results.get("protocol_d"):
        sim = results.get("d_sweep", [])
        n = sim[0]["clients"] if sim else "?"
        text += (
            f"![seconds per round against d]({FIGURES['latency_d']})\n\n"
            f"{n} sites; the simulation columns are `experiments.bench_secagg_sim` "
            "(synthetic updates of d parameters, 10 % of the sites dropping after "
            "masking, medians of the steady rounds, plain and secure aggregation in "
            "one simulation); the protocol columns one process:\n\n"
            + d_table(sim, results.get("protocol_d", []))
        )
    return text


def _dropout_section(results: Mapping[str, Any]) -> str:
    return (
        "## Dropout resilience\n\n"
        f"![completed rounds against the dropout rate]({FIGURES['dropouts']})\n\n"
        "Protocol only: a fresh federation loses that fraction of its sites at "
        "that stage (random sites, every round for the round stages, once at the "
        "key set-up for the set-up stages); a round is exact when the released sum "
        "equals the plaintext weighted sum of the sites it includes, within the "
        "quantisation bound (`experiments/bench_fields.py`). Plain FL and the DP "
        "modes on top of it use whoever replies. In the Flower runs above every "
        "approach completed the rounds counted in its last column with a site "
        "dropping every round.\n\n" + dropout_summary(results["dropouts"])
    )


def _expansion_section(rows: Sequence[Mapping[str, Any]]) -> str:
    return (
        "## Bonawitz et al.'s expansion, reproduced\n\n"
        "A client's bytes sent in one round, key set-up included, over its 16-bit "
        "vector in the clear (Bonawitz et al., CCS 2017, Section 7):\n\n"
        "```bash\npython -m experiments.expansion\n```\n\n"
        + expansion_table(rows)
        + "\nA protocol-only run at these sizes does not fit on two cores (10^6 mask "
        "expansions of 4 MB at n = 2^10), so the figures are computed from fedsec's "
        "measured per-message sizes (`experiments/expansion.py`).\n"
    )


def _method_section(results: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    errors = results.get("errors", [])
    text = (
        "## How this was measured\n\n"
        "- Every Flower measurement runs the real ServerApp and ClientApp in "
        "Flower's simulation engine (`experiments.simulate.simulate_many`): Ray "
        "starts once per simulation, approaches share simulations (one "
        "secure-aggregation run per simulation), and a one-round plain warm-up "
        "comes first. Every simulation gives Ray 3 logical CPUs (the MPC runs "
        "need the three compute parties at once), one per ClientApp.\n"
        "- Bytes are Flower record payloads (`fedsec.flower.records.content_bytes`; "
        "protocol only: `SecAggClient.bytes_sent`, the packages' lengths), the "
        "same count every benchmark uses.\n"
        "- The seed fixes the data split, the model's initial weights and the "
        "synthetic updates; DP noise and every key are drawn from secret sources "
        "and are not reproducible by design.\n"
        "- Step times and the load average after each step are in "
        "`comparison/results.json` (`step_seconds`, `load_averages`).\n"
    )
    if errors:
        text += "\nSteps that failed in this run:\n\n" + "".join(
            f"- {e['step']}: {e['error']}\n" for e in errors
        )
    return text
