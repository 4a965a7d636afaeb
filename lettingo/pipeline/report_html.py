"""report.html: the run's results, plots, training curves and a profile browser in one page.

The page is self-contained, so it opens from a laptop, a mail attachment or an offline cluster:
every plot is a matplotlib PNG embedded as a ``data:`` URI, the CSS and the small script are
inline, and the browser's data is one JSON block in the page. Nothing is fetched at view time.

Profile texts, item titles and reviews are untrusted (LLM output, user data): everything put into
HTML goes through ``html.escape``, the embedded JSON has ``<``, ``>`` and ``&`` escaped so no text
can close its ``<script>``, and the script writes text with ``textContent`` only.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from omegaconf import OmegaConf

from lettingo import metrics
from lettingo.pipeline.prepare import load_items, load_tasks
from lettingo.pipeline.report import is_oracle, method_name, method_of
from lettingo.store import read_jsonl, write_atomic
from lettingo.types import Profile

MAX_BROWSER_USERS = 300  # test users embedded in the profile browser
MAX_PAIRS = 200  # preference pairs embedded in the pair browser
MAX_HISTORY = 100  # most recent items of a profile window shown per user
MAX_TEXT = 4000  # characters of a profile text embedded (longer ones are cut, and say so)
MAX_REVIEW = 300  # characters of a review shown under a history item
MAX_LOG_ROWS = 500  # training-log rows in the (collapsed) table; the plots use every row
LOG_CURVES = (("loss", "loss"), ("rewards/margins", "reward margin"), ("rewards/accuracies", "reward accuracy"))
ROUND_CURVES = ("explore_accuracy", "explore_mean_score", "train_loss", "reward_margin", "reward_accuracy")
COLORS = {"none": "#9e9e9e", "base": "#1f77b4", "aligned": "#d62728", "raw_history": "#8c564b"}
OTHER_COLORS = ("#9467bd", "#2ca02c", "#ff7f0e", "#17becf", "#e377c2", "#bcbd22", "#7f7f7f")


def write_html_report(ctx, store, results: dict) -> Path:
    """Write ``report.html`` in the run directory (atomically) and return its path."""
    cfg = ctx.cfg
    main_style = str(_select(cfg, "prompt.name", ""))
    tasks = load_tasks(store)
    items = load_items(ctx, store)
    test_profiles = [Profile.from_dict(r) for r in read_jsonl(store.path("test_profiles.jsonl"))]
    test_judgements = {r["profile_id"]: r for r in read_jsonl(store.path("test_judgements.jsonl"))}
    explore_profiles = [Profile.from_dict(r) for r in read_jsonl(store.path("profiles.jsonl"))]
    sections = [
        _results_section(results, int(_select(cfg, "report.bootstrap_resamples", 1000))),
        _charts_section(results),
        _training_section(store, str(_select(cfg, "aligner.name", ""))),
        _lengths_section(test_profiles, explore_profiles, main_style),
        _browser_section(tasks, items, test_profiles, test_judgements, main_style, results.get("task_type", "")),
        _pairs_section(store, tasks),
        _run_section(results),
    ]
    page = _page(_header(cfg, store), sections)
    path = store.path("report.html")
    write_atomic(path, page)
    return path


# -- helpers ---------------------------------------------------------------------------------------

def _select(cfg, key: str, default: Any = None) -> Any:
    value = OmegaConf.select(cfg, key, default=default) if OmegaConf.is_config(cfg) else default
    return default if value is None else value


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _fmt(value: Any, digits: int = 3) -> str:
    number = _finite(value)
    return "—" if number is None else f"{number:.{digits}f}"


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN and infinities (which JSON.parse rejects) become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def script_json(obj: Any) -> str:
    """JSON that is safe between ``<script type="application/json">`` and ``</script>``."""
    text = json.dumps(_clean(obj), ensure_ascii=False, separators=(",", ":"))
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _cut(text: Any, limit: int) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[:limit] + f" … [cut: {len(text) - limit} more characters]"


def natural_key(key: str) -> list:
    """Sort key that puts "user-2" before "user-10" (also used by ``lettingo compare``)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", key) if part]


def _label(text: Any) -> str:
    """A plot label: matplotlib would read ``$...$`` as mathtext."""
    return str(text).replace("$", r"\$")


def _color(method: str, index: int) -> str:
    return COLORS.get(method) or OTHER_COLORS[index % len(OTHER_COLORS)]


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


def _img(uri: str, alt: str, caption: str = "") -> str:
    figcaption = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{uri}" alt="{esc(alt)}">{figcaption}</figure>'


def _table(headers: Iterable[str], rows: Iterable[Iterable[Any]], table_id: str = "", cls: str = "") -> str:
    """A table of already-escaped cells."""
    attrs = (f' id="{esc(table_id)}"' if table_id else "") + (f' class="{esc(cls)}"' if cls else "")
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _method_key(name: str) -> str:
    """The method behind a results row name (for its colour)."""
    for key, label in (("none", method_name("none")), ("base", method_name("base")),
                       ("aligned", method_name("aligned")), ("raw_history", method_name("raw_history"))):
        if name == label:
            return key
    return name


# -- header ------------------------------------------------------------------------------------------

def _header(cfg, store) -> str:
    manifest = store.manifest()
    parts = [("dataset", _select(cfg, "dataset.name", "?")),
             ("generator", f"{_select(cfg, 'llm.name', '?')}:{_select(cfg, 'llm.model', '?')}"),
             ("prompt", _select(cfg, "prompt.name", "?")),
             ("recommender", _select(cfg, "recommender.name", "?")),
             ("pair selector", _select(cfg, "pair_selector.name", "?")),
             ("aligner", _select(cfg, "aligner.name", "?"))]
    config = " · ".join(f"{esc(k)} <code>{esc(v)}</code>" for k, v in parts)
    nav = " ".join(f'<a href="#{key}">{esc(title)}</a>' for key, title in (
        ("results", "Results"), ("charts", "Charts"), ("training", "Training"), ("lengths", "Profile lengths"),
        ("browser", "Profile browser"), ("pairs", "Preference pairs"), ("run", "Run")))
    return (f"<header><h1>lettingo report</h1>"
            f'<p class="config" id="config-line">{config}</p>'
            f'<p class="meta">Run directory <code>{esc(store.dir)}</code> · config hash '
            f"<code>{esc(str(manifest.get('config_hash', ''))[:12])}</code> · created "
            f"{esc(manifest.get('created', '?'))}</p><nav>{nav}</nav></header>")


# -- 1. results --------------------------------------------------------------------------------------

def _metric_names(rows: dict) -> list[str]:
    names: list[str] = []
    for row in rows.values():
        for key, value in row.items():
            if isinstance(value, dict) and "value" in value and key not in names:
                names.append(key)
    return names


def _cell(metric: dict | None) -> str:
    if not isinstance(metric, dict):
        return ""
    ci = metric.get("ci")
    value = esc(_fmt(metric.get("value")))
    if ci and len(ci) == 2:
        return f'{value} <span class="ci">[{esc(_fmt(ci[0]))}, {esc(_fmt(ci[1]))}]</span>'
    return value


def _results_section(results: dict, n_boot: int) -> str:
    rows = results.get("methods") or {}
    names = _metric_names(rows)
    best = {}
    for name in names:
        values = [_finite(row[name]["value"]) for method, row in rows.items()
                  if isinstance(row.get(name), dict) and not is_oracle(method)]  # a ceiling, not a method
        values = [v for v in values if v is not None]
        if values:
            best[name] = min(values) if name in metrics.LOWER_IS_BETTER else max(values)
    body = []
    for method, row in rows.items():
        cells = []
        for name in names:
            metric = row.get(name)
            is_best = isinstance(metric, dict) and name in best and _finite(metric.get("value")) == best[name]
            cells.append(f'<td class="best">{_cell(metric)}</td>' if is_best else f"<td>{_cell(metric)}</td>")
        invalid = _finite(row.get("invalid_rate"))
        cls = ' class="baseline"' if method.endswith("(baseline)") else ' class="oracle"' if is_oracle(method) else ""
        body.append(f'<tr{cls}><th scope="row">{esc(method)}</th>{"".join(cells)}'
                    f"<td>{esc(row.get('n', ''))}</td>"
                    f"<td>{'' if invalid is None else esc(f'{invalid:.1%}')}</td></tr>")
    head = "".join(f"<th>{esc(n)}</th>" for n in ["method", *names, "n", "invalid"])
    table = (f'<table id="results-table" class="results"><thead><tr>{head}</tr></thead>'
             f"<tbody>{''.join(body)}</tbody></table>") if rows else "<p>No results.</p>"
    split = results.get("split", "test")
    out = [f'<section id="results"><h2>Results on held-out users ({esc(split)} split)</h2>'
           f'<p class="task">Task type <code>{esc(results.get("task_type", "?"))}</code>, recommender '
           f'<code>{esc(results.get("recommender", "?"))}</code>.</p>', table,
           "<p class=\"note\">Each cell: value [95% bootstrap confidence interval over users]; the best value "
           "of each column is bold. With several profiles per user a row is the mean over the samples, and a "
           "best-of-N row (an oracle that knows the answer: a ceiling, not a method) picks each user's "
           "best-judged sample. <code>invalid</code> is the share of recommender outputs that could not be "
           "parsed (counted as wrong). MAE and RMSE: lower is better.</p>"]
    tests = results.get("paired_tests") or []
    if tests:
        rows_html = []
        for t in tests:
            p = _finite(t.get("p_value"))
            p_text = "—" if p is None else (f"< {1 / max(n_boot, 1):.3g}" if p == 0 else f"{p:.3g}")
            diff = _finite(t.get("difference"))
            sign = -1 if t.get("metric") in metrics.LOWER_IS_BETTER else 1
            better = "no evidence"
            if p is not None and diff is not None and p < 0.05 and diff != 0:
                better = "A" if sign * diff > 0 else "B"
            ci = t.get("ci") or [None, None]
            rows_html.append([esc(t.get("a")), esc(t.get("b")), esc(t.get("metric")),
                              esc("—" if diff is None else f"{diff:+.3f}"),
                              esc(f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"), esc(p_text), esc(better)])
        out += ["<h3>Is one method better than another?</h3>",
                "<p class=\"note\">Paired bootstrap over the same test users (each method's mean over a user's "
                "sampled profiles; users resampled with all their samples; base and aligned share sampling seeds): "
                "the difference A − B with its 95% interval and a two-sided p-value.</p>",
                _table([esc(h) for h in ("A", "B", "metric", "A − B", "95% CI", "p", "better")], rows_html,
                       table_id="paired-table")]
    return "".join(out) + "</section>"


# -- 2. charts ---------------------------------------------------------------------------------------

def _charts_section(results: dict) -> str:
    rows = results.get("methods") or {}
    task_type = results.get("task_type", "")
    figures = []
    for metric in metrics.HEADLINE.get(task_type, ()):
        bars = [(method, row[metric]) for method, row in rows.items()
                if isinstance(row.get(metric), dict) and _finite(row[metric].get("value")) is not None]
        if not bars:
            continue
        fig = _figure(7.0, 0.45 * len(bars) + 1.3)
        ax = fig.add_subplot()
        values = [_finite(m["value"]) for _, m in bars]
        low, high = [], []
        for (_, m), value in zip(bars, values):
            ci = m.get("ci") or [value, value]
            lo, hi = _finite(ci[0]), _finite(ci[1])
            low.append(max(0.0, value - lo) if lo is not None else 0.0)
            high.append(max(0.0, hi - value) if hi is not None else 0.0)
        positions = list(range(len(bars)))[::-1]  # first method on top
        colors = [("#cfcfcf" if method.endswith("(baseline)") else _color(_method_key(method), i))
                  for i, (method, _) in enumerate(bars)]
        ax.barh(positions, values, xerr=[low, high], color=colors, capsize=4, height=0.6,
                error_kw={"elinewidth": 1.2, "ecolor": "#333333"})
        ax.set_yticks(positions, [_label(method) for method, _ in bars])
        for y, value, hi in zip(positions, values, high):
            ax.text(value + hi, y, f" {value:.3f}", va="center", fontsize=8)
        direction = "lower is better" if metric in metrics.LOWER_IS_BETTER else "higher is better"
        ax.set_xlabel(f"{_label(metric)} ({direction}); error bars: 95% CI")
        ax.set_title(_label(metric))
        ax.margins(x=0.15)
        ax.grid(axis="x", alpha=0.3)
        figures.append(_img(_png(fig), f"{metric} by method", f"{metric} per method with its 95% bootstrap interval"))
    body = "".join(figures) or "<p>No headline metric to plot.</p>"
    return f'<section id="charts"><h2>Headline metrics</h2><div class="figures">{body}</div></section>'


# -- 3. training -------------------------------------------------------------------------------------

def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    except (OSError, ValueError):
        return None


def _training_plot(steps: list[dict]) -> str:
    from matplotlib.ticker import MaxNLocator

    curves = [(key, title) for key, title in LOG_CURVES if any(_finite(r.get(key)) is not None for r in steps)]
    fig = _figure(4.2 * len(curves), 3.2)
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    rounds = sorted({r["round"] for r in steps if "round" in r}, key=lambda r: natural_key(str(r)))
    groups = [(f"round {r}", [s for s in steps if s.get("round") == r]) for r in rounds] or [("", steps)]
    if rounds and any("round" not in s for s in steps):
        groups.append(("no round", [s for s in steps if "round" not in s]))
    for ax, (key, title) in zip(axes, curves):
        for i, (name, rows) in enumerate(groups):
            points = [(_finite(r.get("step", n)), _finite(r.get(key))) for n, r in enumerate(rows, start=1)]
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


def _rounds_plot(rounds: list[dict]) -> str | None:
    from matplotlib.ticker import MaxNLocator

    keys = [k for k in ROUND_CURVES if any(_finite(r.get(k)) is not None for r in rounds)]
    if not keys:
        return None
    fig = _figure(min(3.0 * len(keys), 15.0), 2.8)
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    for ax, key in zip(axes, keys):
        points = [(_finite(r.get("round", n)), _finite(r.get(key))) for n, r in enumerate(rounds, start=1)]
        points = [(x, y) for x, y in points if x is not None and y is not None]
        ax.plot([x for x, _ in points], [y for _, y in points], marker="o", color="#d62728")
        ax.set_title(key.replace("_", " "), fontsize=9)
        ax.set_xlabel("round")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    return _png(fig)


def _pair_check_html(check: dict | None) -> str:
    """Implicit-reward accuracy on training pairs and on held-out users' pairs, and the verdict."""
    if not isinstance(check, dict):
        return ""
    keys = ("reward_accuracy", "reward_margin", "likelihood_preference_before", "likelihood_preference_after")
    rows = []
    for split, label in (("train", "training (sample)"), ("heldout", "held-out users")):
        row = check.get(split) or {}
        rows.append([esc(label), esc(row.get("pairs", 0)), esc(row.get("users", 0)), *(_cell(row.get(k)) for k in keys)])
    return ("<h3>Did alignment learn? (held-out pairs)</h3>"
            f'<p class="verdict"><strong>{esc(check.get("verdict", ""))}</strong></p>'
            '<p class="note">Reward accuracy: share of pairs whose chosen profile gets the higher implicit '
            "reward (trained policy against the model training started from; a tie counts half). Likelihood "
            "preference: share of pairs in which the model gives the chosen profile the higher log-probability. "
            "Held-out pairs come from training users whose pairs never trained. Intervals resample users.</p>"
            + _table([esc(h) for h in ("pairs", "n pairs", "users", "reward accuracy", "reward margin",
                                       "likelihood preference before", "likelihood preference after")],
                     rows, table_id="pair-check"))


def _training_section(store, aligner_name: str) -> str:
    aligned_dir = store.path("aligned")
    out = ['<section id="training"><h2>Alignment</h2>']
    aligned = _read_json(aligned_dir / "aligned_model.json")
    if isinstance(aligned, dict):
        rows = [[esc(k), f"<code>{esc(aligned.get(k))}</code>"] for k in ("aligner", "base", "adapter_path")
                if k in aligned]
        for key, value in (aligned.get("metrics") or {}).items():
            if key in ("pair_check", "rounds"):  # shown as tables of their own
                continue
            shown = (f"{value:.4g}" if math.isfinite(value) else "—") if isinstance(value, float) else value
            rows.append([esc(key), esc(shown)])
        out += ["<h3>Aligned model</h3>", _table(["", "value"], rows, table_id="aligned-model")]
        out.append(_pair_check_html((aligned.get("metrics") or {}).get("pair_check")))
    steps = [r for r in read_jsonl(aligned_dir / "training_log.jsonl") if isinstance(r, dict) and "loss" in r]
    if steps:
        what = "loss, reward margin and accuracy (DPO)" if any("rewards/margins" in r for r in steps) else "loss"
        per_round = " One line per alignment round." if any("round" in r for r in steps) else ""
        out += ["<h3>Training curves</h3>", f'<p class="note">{esc(what)} per logged step.{per_round}</p>',
                _img(_training_plot(steps), "training curves")]
        keys = ["round"] if any("round" in r for r in steps) else []
        keys += ["step"] + [k for k, _ in LOG_CURVES if any(k in r for r in steps)]
        shown = steps[:MAX_LOG_ROWS]
        rows = [[esc(r.get(k, "")) if k in ("round", "step") else esc(_fmt(r.get(k), 4)) for k in keys]
                for r in shown]
        capped = f" (the first {MAX_LOG_ROWS} of {len(steps)})" if len(steps) > MAX_LOG_ROWS else ""
        out.append(f"<details><summary>Training log: {len(steps)} steps{esc(capped)}</summary>"
                   f"{_table([esc(k) for k in keys], rows, table_id='training-log')}</details>")
    elif aligner_name == "none":
        out.append('<p class="empty">no training (aligner none)</p>')
    else:
        out.append(f'<p class="empty">No training log (<code>aligned/training_log.jsonl</code>) for aligner '
                   f"<code>{esc(aligner_name or '?')}</code>.</p>")
    rounds = _read_json(aligned_dir / "rounds.json")
    if isinstance(rounds, list) and rounds and all(isinstance(r, dict) for r in rounds):
        keys = ["round"] if any("round" in r for r in rounds) else []
        for r in rounds:
            keys += [k for k in r if k not in keys and k != "pair_check"]
        rows = [[esc(f"{r[k]:.4g}" if isinstance(r.get(k), float) else r.get(k, "")) for k in keys]
                for r in rounds]
        if any(r.get("pair_check") for r in rounds):
            keys.append("held-out reward accuracy")
            for row, r in zip(rows, rounds):
                row.append(_cell(((r.get("pair_check") or {}).get("heldout") or {}).get("reward_accuracy")))
        out += ["<h3>Alignment rounds</h3>", _table([esc(k) for k in keys], rows, table_id="rounds-table")]
        plot = _rounds_plot(rounds)
        if plot:
            out.append(_img(plot, "per-round alignment", "per round"))
    return "".join(out) + "</section>"


# -- 4. profile lengths ----------------------------------------------------------------------------------

def _words(text: str) -> int:
    return len(str(text or "").split())


def _lengths_section(test_profiles: list[Profile], explore_profiles: list[Profile], main_style: str) -> str:
    test_groups: dict[str, list[int]] = defaultdict(list)
    for p in test_profiles:
        test_groups[method_of(p.profile_id, main_style)].append(_words(p.text))
    explore_groups: dict[str, list[int]] = defaultdict(list)
    for p in explore_profiles:
        explore_groups[p.generator].append(_words(p.text))
    panels = [("test profiles, by method", {method_name(m): v for m, v in sorted(
                  test_groups.items(), key=lambda kv: ("base", "aligned").index(kv[0])
                  if kv[0] in ("base", "aligned") else -1)}),
              ("explored profiles (train users), by generator", dict(sorted(explore_groups.items())))]
    panels = [(title, groups) for title, groups in panels if groups]
    out = ['<section id="lengths"><h2>Profile lengths</h2>',
           '<p class="note">Length in words (whitespace-separated), not tokens; report.md gives token counts.</p>']
    if not panels:
        return "".join(out) + '<p class="empty">No profiles.</p></section>'
    import numpy as np

    fig = _figure(6.0 * len(panels), 3.4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, groups) in zip(axes, panels):
        values = [v for vs in groups.values() for v in vs]
        bins = np.histogram_bin_edges(values, bins=min(30, max(5, len(set(values)))))
        for i, (name, lengths) in enumerate(groups.items()):
            ax.hist(lengths, bins=bins, histtype="step", linewidth=1.6, label=_label(f"{name} (n={len(lengths)})"),
                    color=_color(_method_key(name), i))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("words per profile")
        ax.set_ylabel("profiles")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    rows = []
    for title, groups in panels:
        where = "test" if title.startswith("test") else "explore"
        for name, lengths in groups.items():
            rows.append([esc(where), esc(name), esc(len(lengths)), esc(f"{np.mean(lengths):.1f}"),
                         esc(f"{np.median(lengths):.0f}"), esc(min(lengths)), esc(max(lengths))])
    out += [_img(_png(fig), "profile length histograms", "words per profile"),
            _table([esc(h) for h in ("profiles", "group", "n", "mean words", "median", "min", "max")], rows,
                   table_id="lengths-table")]
    return "".join(out) + "</section>"


# -- 5. profile browser ------------------------------------------------------------------------------

def _item(items: dict, interaction) -> dict:
    item = items.get(interaction.item_id)
    out = {"title": item.title if item else f"item {interaction.item_id}", "rating": _finite(interaction.rating)}
    if interaction.text:
        out["review"] = _cut(interaction.text, MAX_REVIEW)
    return out


def _verdict(judgement: dict | None, target_id: str | None) -> dict | None:
    if not judgement:
        return None
    out = {"score": _finite(judgement.get("score")), "correct": bool(judgement.get("correct")),
           "valid": bool(judgement.get("valid", True))}
    prediction = judgement.get("prediction")
    if isinstance(prediction, list):
        if target_id is not None:
            out["prediction"] = (f"target ranked {prediction.index(target_id) + 1} of {len(prediction)}"
                                 if target_id in prediction else f"target not among the {len(prediction)} ranked")
    elif prediction is not None:
        out["prediction"] = "prediction: " + _cut(prediction, 200)
    return out


def _browser_section(tasks, items, test_profiles, judgements, main_style: str, task_type: str) -> str:
    judged = {p.task_id for p in test_profiles}  # the evaluated split's users (test, or validation)
    test = sorted((t for t in tasks.values() if t.task_id in judged), key=lambda t: natural_key(t.task_id))
    by_task: dict[str, list[Profile]] = defaultdict(list)
    for p in test_profiles:
        by_task[p.task_id].append(p)
    shown = test[:MAX_BROWSER_USERS]
    users, options = [], []
    for task in shown:
        target_id = task.target.item_id
        main, others = {}, []
        for p in sorted(by_task.get(task.task_id, []), key=lambda p: (p.prompt_style, p.generator, p.sample)):
            card = {"method": method_name(method_of(p.profile_id, main_style)), "id": p.profile_id,
                    "model": p.model, "text": _cut(p.text, MAX_TEXT),
                    "verdict": _verdict(judgements.get(p.profile_id), target_id)}
            if p.prompt_style == main_style and p.sample == 0 and p.generator in ("base", "aligned"):
                main[p.generator] = card
            else:
                others.append(card)
        history = task.profile_window[-MAX_HISTORY:]
        users.append({
            "id": task.task_id, "user": task.user_id, "label": task.label,
            "history": [_item(items, i) for i in history],
            "history_total": len(task.profile_window),
            "recent": [_item(items, i) for i in task.recent_window],
            "target": _item(items, task.target),
            "no_profile": _verdict(judgements.get(f"{task.task_id}/none"), target_id),
            "base": main.get("base"), "aligned": main.get("aligned"), "others": others,
        })
        scores = " · ".join(f"{g} {_fmt((main[g]['verdict'] or {}).get('score'), 2)}"
                            for g in ("base", "aligned") if g in main and main[g].get("verdict"))
        options.append(f'<option value="{esc(task.task_id)}">{esc(task.task_id)} ({esc(task.label)})'
                       f"{esc(' — ' + scores) if scores else ''}</option>")
    out = ['<section id="browser"><h2>Profile browser</h2>']
    if not users:
        return "".join(out) + '<p class="empty">No test users.</p></section>'
    capped = (f" Showing the first {len(shown)} of {len(test)} test users (the page keeps at most "
              f"{MAX_BROWSER_USERS}).") if len(test) > len(shown) else ""
    score_note = {"ranking": "score: NDCG@10 of the target", "sentiment": "score: P(true label)",
                  "rating": "score: the recommender's graded score"}.get(task_type, "score: the recommender's score")
    data = {"users": users, "main_style": main_style, "task_type": task_type}
    out += [f'<p class="note">A test user\'s history, target and profiles, each with the recommender\'s verdict '
            f"({esc(score_note)}). Base and aligned profiles use the run's prompt <code>{esc(main_style)}</code>; "
            f"other prompts' profiles are listed below them. Link to a user with <code>#user=&lt;task id&gt;</code>."
            f"{esc(capped)}</p>",
            '<label for="user-select">Test user </label>'
            f'<select id="user-select">{"".join(options)}</select>',
            f'<div id="user-panel" class="panel" data-user="{esc(users[0]["id"])}">'
            f'<p class="empty">Select a user (the browser needs JavaScript).</p></div>',
            f'<script type="application/json" id="browser-data">{script_json(data)}</script>']
    return "".join(out) + "</section>"


# -- 6. preference pairs -----------------------------------------------------------------------------

def _pairs_section(store, tasks: dict) -> str:
    pairs = read_jsonl(store.path("pairs.jsonl"))
    out = ['<section id="pairs"><h2>Preference pairs</h2>']
    if not pairs:
        return "".join(out) + '<p class="empty">No preference pairs in this run.</p></section>'
    judged = {r["profile_id"]: r for r in read_jsonl(store.path("judgements.jsonl")) if "profile_id" in r}
    by_user: dict[str, list[dict]] = defaultdict(list)
    for pair in pairs:
        by_user[str(pair.get("user_id", ""))].append(pair)
    users, kept = [], 0
    for user_id in sorted(by_user, key=natural_key):
        if kept >= MAX_PAIRS:
            break
        rows = []
        for pair in by_user[user_id][: MAX_PAIRS - kept]:
            chosen, rejected = judged.get(pair.get("chosen_id", "")), judged.get(pair.get("rejected_id", ""))
            task = tasks.get(pair.get("task_id", ""))
            target_id = task.target.item_id if task else None
            rows.append({"task": pair.get("task_id", ""), "margin": _finite(pair.get("margin")),
                         "chosen": {"id": pair.get("chosen_id", ""), "text": _cut(pair.get("chosen"), MAX_TEXT),
                                    "verdict": _verdict(chosen, target_id)},
                         "rejected": {"id": pair.get("rejected_id", ""), "text": _cut(pair.get("rejected"), MAX_TEXT),
                                      "verdict": _verdict(rejected, target_id)}})
        kept += len(rows)
        users.append({"id": user_id, "pairs": rows, "total": len(by_user[user_id])})
    capped = (f" Showing {kept} of {len(pairs)} pairs (the page keeps at most {MAX_PAIRS})."
              if kept < len(pairs) else "")
    options = "".join(f'<option value="{esc(u["id"])}">user {esc(u["id"])} ({len(u["pairs"])} '
                      f'pair{"s" if len(u["pairs"]) != 1 else ""})</option>' for u in users)
    out += [f'<p class="note">{len(pairs)} pairs from {len(by_user)} training users: the profile chosen '
            f"(the recommender did better with it) against the one rejected, each with its judgement; margin is "
            f"the difference of their scores.{esc(capped)}</p>",
            '<label for="pair-user-select">Training user </label>'
            f'<select id="pair-user-select">{options}</select>',
            f'<div id="pair-panel" class="panel" data-user="{esc(users[0]["id"])}">'
            f'<p class="empty">Select a user (the browser needs JavaScript).</p></div>',
            f'<script type="application/json" id="pairs-data">{script_json({"users": users})}</script>']
    return "".join(out) + "</section>"


# -- run: stages and usage ---------------------------------------------------------------------------

def _run_section(results: dict) -> str:
    out = ['<section id="run"><h2>Run</h2>']
    stages = results.get("stages") or {}
    if stages:
        out.append(_table(["stage", "seconds"], [[esc(name), esc(s.get("seconds", ""))]
                                                 for name, s in stages.items()], table_id="stages-table"))
    usage = results.get("usage") or []
    if usage:
        rows = [[esc(r.get("stage")), esc(r.get("model")), esc(r.get("requests")), esc(r.get("cache_hits")),
                 esc(int(r.get("prompt_tokens") or 0)), esc(int(r.get("completion_tokens") or 0)),
                 esc(_fmt(r.get("cost_usd"), 4))] for r in usage]
        total = sum(_finite(r.get("cost_usd")) or 0.0 for r in usage)
        out += ["<h3>LLM usage</h3>",
                _table([esc(h) for h in ("stage", "model", "requests", "cache hits", "prompt tokens",
                                         "completion tokens", "cost (USD)")], rows, table_id="usage-table"),
                f'<p class="note">Total cost ${total:.4f}. results.json and report.md hold the same results.</p>']
    return "".join(out) + "</section>"


# -- page --------------------------------------------------------------------------------------------

CSS = """
:root { --fg: #1d1d1f; --muted: #666; --line: #ddd; --base: #1f77b4; --aligned: #d62728; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1280px; padding: 0 24px 48px; }
header { border-bottom: 1px solid var(--line); padding: 16px 0 8px; }
h1 { margin: 0 0 4px; font-size: 24px; }
h2 { margin-top: 32px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
nav a { margin-right: 12px; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; background: #f4f4f4; padding: 0 3px;
       border-radius: 3px; overflow-wrap: anywhere; }
.meta, .note, .empty { color: var(--muted); }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
thead th { background: #f6f6f6; }
td.best { font-weight: 700; background: #eef7ee; }
tbody th { font-weight: 600; background: #fbfbfb; }
tr.baseline { color: var(--muted); }
tr.oracle { color: var(--muted); font-style: italic; }
.ci { color: var(--muted); font-size: 12px; }
figure { margin: 8px 0; display: inline-block; vertical-align: top; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: var(--muted); font-size: 12px; }
select { font-size: 14px; margin: 6px 0 10px; max-width: 100%; }
.panel { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; }
.cols { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 12px 24px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 12px; margin: 8px 0; }
.card { border: 1px solid var(--line); border-left: 4px solid #999; border-radius: 4px; padding: 6px 10px; }
.card.base { border-left-color: var(--base); } .card.aligned { border-left-color: var(--aligned); }
.card.chosen { border-left-color: #2ca02c; } .card.rejected { border-left-color: #7f7f7f; }
.card h4 { margin: 2px 0; }
.verdict { font-size: 12px; color: var(--muted); }
.ok { color: #2ca02c; font-weight: 600; } .bad { color: var(--aligned); font-weight: 600; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; margin: 6px 0; }
ol.items { margin: 4px 0; padding-left: 28px; max-height: 320px; overflow: auto; }
ol.items .rating { color: var(--muted); } .review { color: var(--muted); font-size: 12px; }
details { margin: 6px 0; }
"""

JS = r"""
(function () {
  "use strict";
  function readData(id) {
    var node = document.getElementById(id);
    if (!node) return null;
    try { return JSON.parse(node.textContent); } catch (e) { return null; }
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function num(x, digits) { return (typeof x === "number") ? x.toFixed(digits === undefined ? 3 : digits) : "—"; }
  function rating(x) { return (typeof x === "number") ? String(Math.round(x * 10) / 10) : "?"; }
  function verdictNode(v) {
    var p = el("p", "verdict");
    if (!v) { p.textContent = "not judged"; return p; }
    p.appendChild(el("span", v.correct ? "ok" : "bad", v.correct ? "correct" : "wrong"));
    var rest = " · score " + num(v.score);
    if (!v.valid) rest += " · output could not be parsed";
    if (v.prediction) rest += " · " + v.prediction;
    p.appendChild(document.createTextNode(rest));
    return p;
  }
  function card(cls, heading, profile, extra) {
    var box = el("div", "card " + cls);
    box.appendChild(el("h4", null, heading));
    if (!profile) { box.appendChild(el("p", "empty", "no profile")); return box; }
    box.appendChild(verdictNode(profile.verdict));
    if (extra) box.appendChild(el("p", "verdict", extra));
    box.appendChild(el("div", "text", profile.text === "" ? "(empty profile)" : profile.text));
    if (profile.id) box.appendChild(el("p", "verdict", profile.id + (profile.model ? " · " + profile.model : "")));
    return box;
  }
  function itemList(items) {
    var list = el("ol", "items");
    items.forEach(function (it) {
      var li = el("li");
      li.appendChild(el("span", "title", it.title));
      li.appendChild(el("span", "rating", " — rated " + rating(it.rating)));
      if (it.review) li.appendChild(el("div", "review", it.review));
      list.appendChild(li);
    });
    return list;
  }
  function setHash(id) {
    try { history.replaceState(null, "", "#user=" + encodeURIComponent(id)); } catch (e) { /* file: URLs */ }
  }
  function hashUser() {
    var m = /^#user=(.*)$/.exec(window.location.hash);
    if (!m) return null;
    try { return decodeURIComponent(m[1]); } catch (e) { return m[1]; }
  }

  var browser = readData("browser-data");
  var select = document.getElementById("user-select"), panel = document.getElementById("user-panel");
  if (browser && select && panel) {
    var users = {};
    browser.users.forEach(function (u) { users[u.id] = u; });
    var showUser = function (id) {
      var u = users[id];
      if (!u) return false;
      select.value = id;
      panel.setAttribute("data-user", id);
      clear(panel);
      panel.appendChild(el("h3", null, u.id + " (user " + u.user + ")"));
      var cols = el("div", "cols"), left = el("div"), right = el("div");
      var more = u.history_total > u.history.length ? " (the last " + u.history.length + ")" : "";
      left.appendChild(el("h4", null, "Profile window: " + u.history_total + " items, oldest first" + more));
      left.appendChild(itemList(u.history));
      right.appendChild(el("h4", null, "Recent window: " + u.recent.length + " items"));
      right.appendChild(itemList(u.recent));
      right.appendChild(el("h4", null, "Target"));
      var target = el("p");
      target.appendChild(el("strong", null, u.target.title));
      target.appendChild(document.createTextNode(" — rated " + rating(u.target.rating) + ", label " + u.label));
      right.appendChild(target);
      if (u.no_profile) {
        right.appendChild(el("h4", null, "Without a profile (10H)"));
        right.appendChild(verdictNode(u.no_profile));
      }
      cols.appendChild(left); cols.appendChild(right); panel.appendChild(cols);
      var cards = el("div", "cards");
      cards.appendChild(card("base", "base profile", u.base));
      cards.appendChild(card("aligned", "aligned profile (LettinGo)", u.aligned));
      panel.appendChild(cards);
      if (u.others.length) {
        panel.appendChild(el("h4", null, "Other profiles (baseline prompts, further samples)"));
        var others = el("div", "cards");
        u.others.forEach(function (p) { others.appendChild(card("other", p.method, p)); });
        panel.appendChild(others);
      }
      return true;
    };
    select.addEventListener("change", function () { showUser(select.value); setHash(select.value); });
    var fromHash = function () {
      var id = hashUser();
      if (id === null) return false;
      if (showUser(id)) return true;
      panel.insertBefore(el("p", "empty", "User " + id + " from the address is not in this page."), panel.firstChild);
      return false;
    };
    window.addEventListener("hashchange", fromHash);
    if (!showUser(select.value)) showUser(browser.users[0].id);
    if (fromHash()) document.getElementById("browser").scrollIntoView();
  }

  var pairs = readData("pairs-data");
  var pairSelect = document.getElementById("pair-user-select"), pairPanel = document.getElementById("pair-panel");
  if (pairs && pairSelect && pairPanel) {
    var pairUsers = {};
    pairs.users.forEach(function (u) { pairUsers[u.id] = u; });
    var showPairs = function (id) {
      var u = pairUsers[id];
      if (!u) return;
      pairPanel.setAttribute("data-user", id);
      clear(pairPanel);
      var head = "user " + u.id + ": " + u.total + " pair" + (u.total === 1 ? "" : "s");
      if (u.pairs.length < u.total) head += " (" + u.pairs.length + " shown)";
      pairPanel.appendChild(el("h3", null, head));
      u.pairs.forEach(function (p, i) {
        pairPanel.appendChild(el("h4", null, "Pair " + (i + 1) + " · " + p.task + " · margin " + num(p.margin)));
        var cards = el("div", "cards");
        cards.appendChild(card("chosen", "chosen", p.chosen));
        cards.appendChild(card("rejected", "rejected", p.rejected));
        pairPanel.appendChild(cards);
      });
    };
    pairSelect.addEventListener("change", function () { showPairs(pairSelect.value); });
    showPairs(pairSelect.value);
  }
})();
"""


def _page(header: str, sections: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            # No network at view time, even if some text slipped through: images only as data: URIs.
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
            f"<title>lettingo report</title><style>{CSS}</style></head><body>{header}"
            + "".join(sections)
            + f"<script>{JS}</script></body></html>\n")
