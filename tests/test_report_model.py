"""The report model and its renderers against a golden report.

``fixtures/report-run`` holds the files of one tiny whole run (judgements written before they
recorded their method); ``fixtures/report-golden`` holds the results.json and report.md that the
report code before the model/renderer split wrote from them. The model must reproduce both exactly,
and report.md and report.html must show the same numbers.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from lettingo import api, metrics
from lettingo.components import Context
from lettingo.pipeline import report as report_stage
from lettingo.reporting.html import render_html
from lettingo.reporting.markdown import render_markdown
from lettingo.reporting.model import build_report
from lettingo.reporting.naming import method_of
from lettingo.store import RunStore, read_jsonl
from lettingo.testing import rounded
from lettingo.types import Judgement

FIXTURES = Path(__file__).parent / "fixtures"
RUN, GOLDEN = FIXTURES / "report-run", FIXTURES / "report-golden"


def _copy(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(RUN, run_dir)
    return run_dir


def _context(run_dir: Path):
    return Context(run_dir, cache=None), api.load_config(run_dir), RunStore(run_dir)


@pytest.fixture(scope="module")
def golden_run(tmp_path_factory):
    """The report stage on a copy of the fixture run; the report model of it, built once."""
    run_dir = _copy(tmp_path_factory.mktemp("golden"))
    report_stage.run(*_context(run_dir))
    return run_dir, build_report(*_context(run_dir))



def test_report_stage_reproduces_the_golden_results_and_markdown(golden_run):
    run_dir, _ = golden_run
    written = json.loads((run_dir / "results.json").read_text(encoding="utf-8").replace(str(run_dir), "<run>"))
    golden = json.loads((GOLDEN / "results.json").read_text(encoding="utf-8"))
    assert rounded(written) == rounded(golden), "results.json differs from the golden one"
    written_md = (run_dir / "report.md").read_text(encoding="utf-8").replace(str(run_dir), "<run>")
    assert written_md == (GOLDEN / "report.md").read_text(encoding="utf-8"), "report.md differs from the golden one"


def test_old_judgements_without_a_method_load_and_fall_back_to_the_profile_id():
    rows = read_jsonl(RUN / "test_judgements.jsonl")
    assert rows and all("method" not in r for r in rows)
    assert all(Judgement.from_dict(r).method == "" for r in rows)


def test_recorded_methods_give_the_same_results(tmp_path, golden_run):
    """Judgements that record their method (as the test stage now writes them) give the same numbers."""
    run_dir = _copy(tmp_path)
    main_style = api.load_config(run_dir).prompt.name
    rows = [{**r, "method": method_of(r["profile_id"], main_style)} for r in read_jsonl(run_dir / "test_judgements.jsonl")]
    (run_dir / "test_judgements.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = build_report(*_context(run_dir))
    assert report.results["methods"] == golden_run[1].results["methods"]
    assert report.results["paired_tests"] == golden_run[1].results["paired_tests"]


def _html_row(page: str, name: str) -> str:
    body = page.split('id="results-table"', 1)[1].split("</tbody>", 1)[0]
    return next(row for row in body.split("<tr")[1:] if f">{name}<" in row)


def test_markdown_and_html_show_the_same_numbers(golden_run):
    _, report = golden_run
    markdown, page = render_markdown(report), render_html(report)
    task_type = report.results["task_type"]
    assert report.rows and report.paired
    for row in report.rows:
        md_row = next(line for line in markdown.splitlines() if line.startswith(f"| {row.name} |"))
        html_row = _html_row(page, row.name)
        for metric in metrics.HEADLINE[task_type]:
            cell = row.metric(metric)
            if cell is None:
                continue
            value, (low, high) = f"{cell['value']:.3f}", (f"{c:.3f}" for c in cell["ci"])
            assert f"{value} [{low}, {high}]" in md_row, (row.name, metric)
            assert value in html_row and f"[{low}, {high}]" in html_row, (row.name, metric)
        assert ('class="oracle"' in html_row) == (row.kind == "oracle")
    paired_html = page.split('id="paired-table"', 1)[1].split("</table>", 1)[0]
    paired_md = markdown.split("## Is one method better than another?", 1)[1].split("\n## ", 1)[0]
    for test in report.paired:
        assert f"| {test.difference:+.3f} |" in paired_md and f">{test.difference:+.3f}<" in paired_html
        assert f"| {test.better} |" in paired_md and f">{test.better}<" in paired_html
    assert paired_md.count("\n| ") - 1 == len(report.paired) == paired_html.count("<tr>") - 1
    # held-out pair accuracy: the alignment check in both, and the per-round one of the rounds table
    heldout = report.training.pair_check["heldout"]["reward_accuracy"]
    accuracy = f"{heldout['value']:.3f}"
    assert f"| held-out users | 1 | 1 | {accuracy} [" in markdown
    check = page.split('id="pair-check"', 1)[1].split("</table>", 1)[0]
    assert re.search(rf"<td>held-out users</td><td>1</td><td>1</td><td>{re.escape(accuracy)} <span", check)
    assert 'id="rounds-table"' in page and "### Rounds (iterative alignment)" in markdown


def test_renderers_read_no_files(golden_run, monkeypatch):
    """The renderers format the model alone (once the templates are loaded)."""
    _, report = golden_run
    render_html(report)  # loads and caches the templates: package data, not run files

    def refuse(*args, **kwargs):
        raise AssertionError("a renderer read a file")

    for name in ("read_text", "read_bytes", "open"):
        monkeypatch.setattr(Path, name, refuse)
    monkeypatch.setattr("builtins.open", refuse)
    assert "# lettingo report" in render_markdown(report) and 'id="browser-data"' in render_html(report)
