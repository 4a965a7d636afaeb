"""report.html: the run's results, plots, training curves and a profile browser in one page, rendered
from a :class:`~lettingo.reporting.model.RunReport` with the Jinja2 templates in ``templates/``.

The page is self-contained, so it opens from a laptop, a mail attachment or an offline cluster:
every plot is a matplotlib PNG embedded as a ``data:`` URI, the CSS and the small script are
inline, and the browsers' data is one JSON block each. Nothing is fetched at view time.

Profile texts, item titles and reviews are untrusted (LLM output, user data): the templates
autoescape everything; the only values marked safe are the plots' ``data:`` URIs made here and the
embedded JSON, which has ``<``, ``>`` and ``&`` escaped so no text can close its ``<script>``; the
script writes text with ``textContent`` only.
"""

from __future__ import annotations

import functools
import json
import math
import statistics
from typing import Any

import jinja2
from markupsafe import Markup

from lettingo import metrics
from lettingo.preference_check import writers_text
from lettingo.reporting import plots
from lettingo.reporting.model import MAX_BROWSER_USERS, MAX_PAIRS, RunReport, targets_note
from lettingo.reporting.naming import METHOD_KEYS
from lettingo.reporting.results import finite, heldout_pair_accuracy, metric_names, p_text

MAX_LOG_ROWS = 500  # training-log rows in the (collapsed) table; the plots use every row
SCORE_NOTES = {"ranking": "score: NDCG@10 of the target", "sentiment": "score: P(true label)",
               "rating": "score: the recommender's graded score"}


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("lettingo.reporting", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.globals.update(fmt=fmt)
    return env


def render_html(report: RunReport) -> str:
    return environment().get_template("report.html.j2").render(
        report=report, results=results_view(report), targets_note=targets_note(report.results),
        charts=charts(report), training=training_view(report),
        lengths=lengths_view(report), browser=browser_view(report), pairs=pairs_view(report))


def fmt(value: Any, digits: int = 3) -> str:
    number = finite(value)
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


def script_json(obj: Any) -> Markup:
    """JSON that is safe between ``<script type="application/json">`` and ``</script>``."""
    text = json.dumps(_clean(obj), ensure_ascii=False, separators=(",", ":"))
    return Markup(text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
                  .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _figure(uri: str | None, alt: str, caption: str = "") -> dict | None:
    return {"src": Markup(uri), "alt": alt, "caption": caption} if uri else None  # a data: URI made here


def results_view(report: RunReport) -> dict:
    names = metric_names(report.rows)
    rows = []
    for row in report.rows:
        cells = []
        for name in names:
            metric = row.metric(name)
            best = metric is not None and name in report.best and finite(metric.get("value")) == report.best[name]
            cells.append({"metric": metric, "best": best})
        invalid = finite(row.values.get("invalid_rate"))
        rows.append({"name": row.name, "kind": row.kind, "cells": cells, "n": row.values.get("n", ""),
                     "invalid": "" if invalid is None else f"{invalid:.1%}"})
    paired = []
    for t in report.paired:
        low, high = t.ci or [None, None]
        paired.append({"a": t.a, "b": t.b, "metric": t.metric, "ci": f"[{fmt(low)}, {fmt(high)}]",
                       "difference": "—" if finite(t.difference) is None else f"{t.difference:+.3f}",
                       "p": p_text(t.p_value, report.n_boot), "better": t.better})
    return {"names": names, "rows": rows, "paired": paired}


def charts(report: RunReport) -> list[dict]:
    out = []
    for metric in metrics.HEADLINE.get(report.results.get("task_type", ""), ()):
        figure = _figure(plots.metric_chart(metric, report.rows), f"{metric} by method",
                         f"{metric} per method with its 95% bootstrap interval")
        if figure:
            out.append(figure)
    return out


def training_view(report: RunReport) -> dict:
    training = report.training
    aligned = None
    if training.aligned is not None:
        aligned = [(k, training.aligned.get(k), True) for k in ("aligner", "base", "adapter_path")
                   if k in training.aligned]
        for key, value in (training.aligned.get("metrics") or {}).items():
            if key in ("pair_check", "rounds"):  # shown as tables of their own
                continue
            shown = (f"{value:.4g}" if math.isfinite(value) else "—") if isinstance(value, float) else value
            aligned.append((key, shown, False))
    check = training.pair_check if isinstance(training.pair_check, dict) else None
    check_rows = [(label, check.get(split) or {}) for split, label in
                  (("train", "training (sample)"), ("heldout", "held-out users"))] if check else []
    steps, log = training.steps, None
    if steps:
        keys = ["round"] if any("round" in r for r in steps) else []
        keys += ["step"] + [k for k, _ in plots.LOG_CURVES if any(k in r for r in steps)]
        log = {"keys": keys, "total": len(steps), "capped": len(steps) > MAX_LOG_ROWS, "max": MAX_LOG_ROWS,
               "what": "loss, reward margin and accuracy (DPO)" if any("rewards/margins" in r for r in steps)
               else "loss", "per_round": "round" in keys,
               "plot": _figure(plots.training_plot(steps), "training curves"),
               "rows": [[r.get(k, "") if k in ("round", "step") else fmt(r.get(k), 4) for k in keys]
                        for r in steps[:MAX_LOG_ROWS]]}
    rounds = None
    if training.rounds:
        keys = ["round"] if any("round" in r for r in training.rounds) else []
        for r in training.rounds:
            keys += [k for k in r if k not in keys and k != "pair_check"]
        rows = [[{"text": f"{r[k]:.4g}" if isinstance(r.get(k), float) else r.get(k, "")} for k in keys]
                for r in training.rounds]
        heldout = any(r.get("pair_check") for r in training.rounds)
        if heldout:
            for row, r in zip(rows, training.rounds):
                row.append({"metric": heldout_pair_accuracy(r)})
        rounds = {"keys": keys + (["held-out reward accuracy"] if heldout else []), "rows": rows,
                  "plot": _figure(plots.rounds_plot(training.rounds), "per-round alignment", "per round")}
    writers = [writers_text(e) for e in (check or {}).get("heldout_between_writers") or []]
    return {"aligner": training.aligner, "aligned": aligned, "check": check, "check_rows": check_rows,
            "writers": writers,
            "log": log, "rounds": rounds}


def lengths_view(report: RunReport) -> dict:
    if not report.lengths:
        return {"plot": None, "rows": []}
    rows = []
    for title, groups in report.lengths:
        where = "test" if title.startswith("test") else "explore"
        for name, lengths in groups.items():
            rows.append([where, name, len(lengths), f"{statistics.fmean(lengths):.1f}",
                         f"{statistics.median(lengths):.0f}",
                         min(lengths), max(lengths)])
    panels = [(title, groups, [METHOD_KEYS.get(name, name) for name in groups]) for title, groups in report.lengths]
    return {"plot": _figure(plots.lengths_plot(panels), "profile length histograms", "words per profile"),
            "rows": rows}


def browser_view(report: RunReport) -> dict:
    users = report.browser["users"]
    options = []
    for u in users:
        scores = " · ".join(f"{g} {fmt((u[g]['verdict'] or {}).get('score'), 2)}"
                            for g in ("base", "aligned") if u.get(g) and u[g].get("verdict"))
        options.append((u["id"], f"{u['id']} ({u['label']})" + (f" — {scores}" if scores else "")))
    capped = (f" Showing the first {len(users)} of {report.browser_total} test users (the page keeps at most "
              f"{MAX_BROWSER_USERS}).") if report.browser_total > len(users) else ""
    return {"users": users, "options": options, "capped": capped, "main_style": report.browser["main_style"],
            "score_note": SCORE_NOTES.get(report.browser["task_type"], "score: the recommender's score"),
            "data": script_json(report.browser)}


def pairs_view(report: RunReport) -> dict:
    users = report.pair_browser["users"]
    kept, total, by_user = report.pair_counts
    return {"users": users, "total": total, "training_users": by_user,
            "capped": f" Showing {kept} of {total} pairs (the page keeps at most {MAX_PAIRS})." if kept < total else "",
            "options": [(u["id"], f"user {u['id']} ({len(u['pairs'])} pair{'s' if len(u['pairs']) != 1 else ''})")
                        for u in users],
            "data": script_json({"users": users})}
