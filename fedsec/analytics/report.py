"""The federation's statistics as files: JSON, a Markdown table, a PNG of histograms."""

from __future__ import annotations

import itertools
from pathlib import Path

from fedsec.analytics.result import ColumnSummary, GlobalStatistics

_COLUMNS_PER_ROW = 5


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.6g}"


def markdown(stats: GlobalStatistics) -> str:
    """A Markdown report: provenance, one table of numeric and one of categorical."""
    lines = [
        f"# Federation statistics: {stats.schema}",
        "",
        f"- sites in the sum: {stats.sites} ({stats.mode}); rows: {stats.rows}; "
        f"rows dropped for missing values: {stats.dropped}",
        f"- fixed point: {stats.frac_bits} fractional bits over each feature's "
        "range (mean and std exact to the bound in the table)",
    ]
    if stats.noise_multiplier:
        lines.append(
            f"- distributed DP: noise multiplier {stats.noise_multiplier:.4g}, "
            f"ε = {_num(stats.epsilon)} at δ = {_num(stats.delta)}"
        )
    numeric = [c for c in (*stats.features, stats.target) if c.kind == "numeric"]
    other = [c for c in (*stats.features, stats.target) if c.kind != "numeric"]
    if numeric:
        lines += [
            "",
            "| column | count | missing | mean | std | q25 | median | q75 | ± |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for c in numeric:
            q = c.quartiles or (None, None, None)
            lines.append(
                f"| {c.name} | {c.count} | {c.missing} | {_num(c.mean)} | "
                f"{_num(c.std)} | {_num(q[0])} | {_num(q[1])} | {_num(q[2])} | "
                f"{_num(c.error_bound)} |"
            )
    if other:
        lines += [
            "",
            "| column | kind | count | missing | levels |",
            "| --- | --- | --- | --- | --- |",
        ]
        for c in other:
            levels = ", ".join(f"{k}: {v}" for k, v in c.levels.items())
            lines.append(
                f"| {c.name} | {c.kind} | {c.count} | {c.missing} | {levels} |"
            )
    lines += [
        "",
        "Quartiles are read from the global histogram (within one bin width); "
        "mean and std within ± of the pooled rows' own.",
    ]
    return "\n".join(lines) + "\n"


def _draw(ax: object, column: ColumnSummary) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    if column.kind == "numeric":
        edges = column.edges
        widths = [b - a for a, b in itertools.pairwise(edges)]
        ax.bar(
            edges[:-1],
            [max(h, 0) for h in column.histogram],
            width=widths,
            align="edge",
        )
    else:
        labels = list(column.levels)
        ax.bar(range(len(labels)), [max(v, 0) for v in column.levels.values()])
        ax.set_xticks(range(len(labels)), labels, fontsize=6, rotation=45)
    ax.set_title(column.name, fontsize=7)
    ax.tick_params(labelsize=6)


def plot(stats: GlobalStatistics, path: Path) -> Path:
    """Write a PNG with one histogram per feature and one for the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [*stats.features, stats.target]
    rows = (len(columns) + _COLUMNS_PER_ROW - 1) // _COLUMNS_PER_ROW
    fig, axes = plt.subplots(
        rows,
        _COLUMNS_PER_ROW,
        figsize=(2.4 * _COLUMNS_PER_ROW, 1.8 * rows),
        squeeze=False,
    )
    flat = [ax for row in axes for ax in row]
    for ax, column in zip(flat, columns, strict=False):
        _draw(ax, column)
    for ax in flat[len(columns) :]:
        ax.axis("off")
    fig.suptitle(
        f"{stats.schema}: {stats.rows} rows from {stats.sites} sites", fontsize=9
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_report(stats: GlobalStatistics, out_dir: Path) -> dict[str, Path]:
    """Write ``statistics.json``, ``statistics.md`` and ``histograms.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "statistics.json",
        "markdown": out_dir / "statistics.md",
        "png": out_dir / "histograms.png",
    }
    paths["json"].write_text(stats.to_json())
    paths["markdown"].write_text(markdown(stats))
    plot(stats, paths["png"])
    return paths
