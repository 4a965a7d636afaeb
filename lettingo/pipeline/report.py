"""Stage 7: the run's report: results.json, report.md and report.html.

One model of the run (:func:`lettingo.reporting.model.build_report`: every file read once, every
number computed once), written out as results.json and rendered to Markdown and HTML.
"""

from __future__ import annotations

from lettingo.reporting.html import render_html
from lettingo.reporting.markdown import render_markdown
from lettingo.reporting.model import build_report
from lettingo.store import write_atomic, write_json


def run(ctx, cfg, store) -> dict:
    report = build_report(ctx, cfg, store)
    write_json(store.path("results.json"), report.results)
    write_atomic(store.path("report.md"), render_markdown(report))
    write_atomic(store.path("report.html"), render_html(report))
    return {"results": report.results}
