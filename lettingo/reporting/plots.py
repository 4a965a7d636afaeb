"""The report's plots: matplotlib (Agg, no pyplot state) PNGs as ``data:`` URIs, for report.html."""

from __future__ import annotations

import base64
import io

from lettingo import metrics
from lettingo.reporting.naming import natural_key
from lettingo.reporting.results import ResultRow, finite

LOG_CURVES = (("loss", "loss"), ("rewards/margins", "reward margin"), ("rewards/accuracies", "reward accuracy"))
ROUND_CURVES = ("explore_accuracy", "explore_mean_score", "train_loss", "reward_margin", "reward_accuracy")
COLORS = {"none": "#9e9e9e", "base": "#1f77b4", "aligned": "#d62728", "raw_history": "#8c564b"}
OTHER_COLORS = ("#9467bd", "#2ca02c", "#ff7f0e", "#17becf", "#e377c2", "#bcbd22", "#7f7f7f")
BASELINE_COLOR = "#cfcfcf"


def _label(text) -> str:
    """A plot label: matplotlib would read ``$...$`` as mathtext."""
    return str(text).replace("$", r"\$")


def color(method: str | None, index: int) -> str:
    return COLORS.get(method or "") or OTHER_COLORS[index % len(OTHER_COLORS)]


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)  # Agg, without pyplot's global state
    return fig


def _png(fig) -> str:
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=100)
    finally:
        fig.clear()
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def metric_chart(metric: str, rows: list[ResultRow]) -> str | None:
    """One bar per row with the metric, with its 95% interval as error bars; None when no row has it."""
    bars = [row for row in rows if row.metric(metric) and finite(row.metric(metric).get("value")) is not None]
    if not bars:
        return None
    fig = _figure(7.0, 0.45 * len(bars) + 1.3)
    ax = fig.add_subplot()
    values = [finite(row.metric(metric)["value"]) for row in bars]
    low, high = [], []
    for row, value in zip(bars, values):
        ci = row.metric(metric).get("ci") or [value, value]
        lo, hi = finite(ci[0]), finite(ci[1])
        low.append(max(0.0, value - lo) if lo is not None else 0.0)
        high.append(max(0.0, hi - value) if hi is not None else 0.0)
    positions = list(range(len(bars)))[::-1]  # first method on top
    colors = [BASELINE_COLOR if row.kind == "baseline" else color(row.method or row.name, i)
              for i, row in enumerate(bars)]
    ax.barh(positions, values, xerr=[low, high], color=colors, capsize=4, height=0.6,
            error_kw={"elinewidth": 1.2, "ecolor": "#333333"})
    ax.set_yticks(positions, [_label(row.name) for row in bars])
    for y, value, hi in zip(positions, values, high):
        ax.text(value + hi, y, f" {value:.3f}", va="center", fontsize=8)
    direction = "lower is better" if metric in metrics.LOWER_IS_BETTER else "higher is better"
    ax.set_xlabel(f"{_label(metric)} ({direction}); error bars: 95% CI")
    ax.set_title(_label(metric))
    ax.margins(x=0.15)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def training_plot(steps: list[dict]) -> str:
    from matplotlib.ticker import MaxNLocator

    curves = [(key, title) for key, title in LOG_CURVES if any(finite(r.get(key)) is not None for r in steps)]
    fig = _figure(4.2 * len(curves), 3.2)
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    rounds = sorted({r["round"] for r in steps if "round" in r}, key=lambda r: natural_key(str(r)))
    groups = [(f"round {r}", [s for s in steps if s.get("round") == r]) for r in rounds] or [("", steps)]
    if rounds and any("round" not in s for s in steps):
        groups.append(("no round", [s for s in steps if "round" not in s]))
    for ax, (key, title) in zip(axes, curves):
        for i, (name, rows) in enumerate(groups):
            points = [(finite(r.get("step", n)), finite(r.get(key))) for n, r in enumerate(rows, start=1)]
            points = [(x, y) for x, y in points if x is not None and y is not None]
            if points:
                ax.plot([x for x, _ in points], [y for _, y in points], marker="o", markersize=3,
                        color=OTHER_COLORS[i % len(OTHER_COLORS)] if rounds else "#1f77b4",
                        label=_label(name) if name else None)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if rounds:
            ax.legend(fontsize=7)
    return _png(fig)


def rounds_plot(rounds: list[dict]) -> str | None:
    from matplotlib.ticker import MaxNLocator

    keys = [k for k in ROUND_CURVES if any(finite(r.get(k)) is not None for r in rounds)]
    if not keys:
        return None
    fig = _figure(min(3.0 * len(keys), 15.0), 2.8)
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    for ax, key in zip(axes, keys):
        points = [(finite(r.get("round", n)), finite(r.get(key))) for n, r in enumerate(rounds, start=1)]
        points = [(x, y) for x, y in points if x is not None and y is not None]
        ax.plot([x for x, _ in points], [y for _, y in points], marker="o", color="#d62728")
        ax.set_title(key.replace("_", " "), fontsize=9)
        ax.set_xlabel("round")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    return _png(fig)


def lengths_plot(panels: list[tuple[str, dict[str, list[int]], list[str | None]]]) -> str:
    """Histograms of words per profile, a panel per (title, groups, each group's method)."""
    import numpy as np

    fig = _figure(6.0 * len(panels), 3.4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, groups, methods) in zip(axes, panels):
        values = [v for vs in groups.values() for v in vs]
        bins = np.histogram_bin_edges(values, bins=min(30, max(5, len(set(values)))))
        for i, ((name, lengths), method) in enumerate(zip(groups.items(), methods)):
            ax.hist(lengths, bins=bins, histtype="step", linewidth=1.6, label=_label(f"{name} (n={len(lengths)})"),
                    color=color(method or name, i))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("words per profile")
        ax.set_ylabel("profiles")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return _png(fig)
