"""The report's figures (matplotlib, no display), from the results document."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from experiments.compare.fit import power_law
from experiments.compare.report import (
    FAMILY_TITLES,
    FIGURES,
    _protocol_seconds,
    _series,
    series_title,
)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(name: str, ns: Sequence[float], ys: Sequence[float]) -> str:
    fit = power_law(ns, ys)
    return f"{name} (n^{round(fit.exponent, 2) + 0.0:.2f})" if fit else name


def _series_points(
    rows: Sequence[Mapping[str, Any]], group: str, key: str
) -> dict[str, tuple[list[float], list[float]]]:
    out: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for r in sorted(rows, key=lambda r: r["clients"]):
        value = r.get(key)
        if value is None:
            continue
        name = r["family"] if group == "family" else series_title(_series(r))
        out[name][0].append(r["clients"])
        out[name][1].append(float(value))
    return out


def plot_comm(results: Mapping[str, Any], path: Path) -> None:
    """Bytes per site per round against n, log-log, fitted exponents in the legend."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for fam, (ns, ys) in _series_points(
        results.get("n_sweep", []), "family", "bytes_up_per_site_per_round"
    ).items():
        ax.plot(
            ns, ys, "o-", label=_label(f"sim: {FAMILY_TITLES.get(fam, fam)}", ns, ys)
        )
    proto = results.get("protocol_n", [])
    for name, (ns, ys) in _series_points(
        proto, "series", "bytes_per_client_per_round"
    ).items():
        ax.plot(ns, ys, "s--", ms=3, label=_label(f"protocol: {name}", ns, ys))
    for name, (ns, ys) in _series_points(
        proto, "series", "parties_bytes_per_client"
    ).items():
        ax.plot(ns, ys, "^:", ms=3, label=_label(f"{name}: parties per client", ns, ys))
    ax.set(
        xscale="log", yscale="log", xlabel="sites n", ylabel="bytes per site per round"
    )
    ax.set_title("Communication per site and round")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_latency_n(results: Mapping[str, Any], path: Path) -> None:
    """Seconds per steady round against n (simulation) and protocol compute."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for fam, (ns, ys) in _series_points(
        results.get("n_sweep", []), "family", "seconds_steady"
    ).items():
        ax.plot(
            ns, ys, "o-", label=_label(f"sim: {FAMILY_TITLES.get(fam, fam)}", ns, ys)
        )
    by: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for r in sorted(results.get("protocol_n", []), key=lambda r: r["clients"]):
        by[series_title(_series(r))][0].append(r["clients"])
        by[series_title(_series(r))][1].append(_protocol_seconds(r) or 0.0)
    for name, (ns, ys) in by.items():
        ax.plot(ns, ys, "s--", ms=3, label=_label(f"protocol: {name}", ns, ys))
    ax.set(xscale="log", yscale="log", xlabel="sites n", ylabel="seconds per round")
    ax.set_title("Latency per round (protocol: server + slowest client, or parties)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_latency_d(results: Mapping[str, Any], path: Path) -> None:
    """Seconds per round against the model size d."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sim: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for r in sorted(results.get("d_sweep", []), key=lambda r: r["dim"]):
        sim[r["impl"]][0].append(r["dim"])
        sim[r["impl"]][1].append(r["seconds_per_round"])
    names = {"plain": "sim: plain FL", "fedsec": "sim: secure aggregation"}
    for impl, (ds, ys) in sim.items():
        ax.plot(ds, ys, "o-", label=names.get(impl, impl))
    proto: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for r in sorted(results.get("protocol_d", []), key=lambda r: r["dim"]):
        proto[r["protocol"]][0].append(r["dim"])
        proto[r["protocol"]][1].append(_protocol_seconds(r) or 0.0)
    for name, (ds, ys) in proto.items():
        ax.plot(ds, ys, "s--", ms=3, label=f"protocol: {name}")
    ax.set(
        xscale="log", yscale="log", xlabel="model size d", ylabel="seconds per round"
    )
    ax.set_title("Latency per round against the model size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_dropouts(results: Mapping[str, Any], path: Path) -> None:
    """Completed (and exact) rounds against the dropout rate, per stage."""
    plt = _pyplot()
    rows = results.get("dropouts", [])
    protocols = list(dict.fromkeys(r["protocol"] for r in rows))
    fig, axes = plt.subplots(
        1,
        max(len(protocols), 1),
        figsize=(4 * max(len(protocols), 1), 3.6),
        sharey=True,
        squeeze=False,
    )
    for ax, proto in zip(axes[0], protocols, strict=False):
        stages: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for r in rows:
            if r["protocol"] == proto:
                stages[r["stage"]].append(r)
        for k, (stage, cases) in enumerate(stages.items()):
            cases.sort(key=lambda r: r["rate"])
            rates = [r["rate"] for r in cases]
            done = [r["exact_rounds"] / r["rounds"] for r in cases]
            ax.plot(rates, [v + 0.015 * k for v in done], "o-", ms=3, label=stage)
        first = next(r for r in rows if r["protocol"] == proto)
        tolerable = 1 - first["threshold"] / first["clients"]
        ax.axvline(tolerable, color="grey", ls=":", lw=1, label="1 − t/n")
        ax.set(title=proto, xlabel="fraction of sites dropping", ylim=(-0.05, 1.15))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("rounds completed and exact (fraction)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_accuracy_time(results: Mapping[str, Any], path: Path) -> None:
    """The global model's accuracy against the training seconds, per approach."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    target = None
    for key, row in results.get("approaches", {}).items():
        per_round = row.get("per_round")
        if not per_round:
            continue
        target = row.get("target_accuracy", target)
        t, xs, ys = 0.0, [], []
        for r in per_round:
            t += r["seconds"]
            xs.append(t)
            ys.append(r["accuracy"])
        ax.plot(xs, ys, "o-", ms=3, label=key)
    if target is not None:
        ax.axhline(target, color="grey", ls=":", lw=1, label=f"target {target:g}")
    ax.set(xscale="log", xlabel="seconds of training rounds", ylabel="test accuracy")
    ax.set_title("Accuracy against time")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


PLOTS = {
    "comm_n": (plot_comm, ("n_sweep", "protocol_n")),
    "latency_n": (plot_latency_n, ("n_sweep", "protocol_n")),
    "latency_d": (plot_latency_d, ("d_sweep", "protocol_d")),
    "dropouts": (plot_dropouts, ("dropouts",)),
    "accuracy_time": (plot_accuracy_time, ("approaches",)),
}


def plot_all(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Every figure whose data is in ``results``; their paths."""
    written = []
    for name, (fn, needs) in PLOTS.items():
        if not any(results.get(k) for k in needs):
            continue
        path = out_dir / FIGURES[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        fn(results, path)
        written.append(path)
    return written
