"""`lettingo compare`: one table across a sweep's jobs, and the paper's published numbers beside ours."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lettingo import cli, paper
from lettingo.compare import (PAPER_HEADER, NoJobsError, collect, display_table, interval, render_html,
                              render_markdown, write_comparison)
from lettingo.testing import tiny_overrides

# A run's resolved config, trimmed to what compare reads (manifest.json "config"; .hydra/config.yaml).
CONFIG = {
    "dataset": {"name": "movielens", "path": None, "like_min": 4, "dislike_max": 2, "rating_scale": None},
    "protocol": {"profile_window": 30, "recent_window": 10, "train_users": 40, "test_users": 40},
    "llm": {"name": "transformers", "model": "smollm2-135m-instruct"},
    "prompt": {"name": "lettingo", "system": None},
    "recommender": {"name": "llm_sentiment", "batch_size": 8},
    "aligner": {"name": "dpo", "beta": 0.1, "epochs": 1},
    "seed": 0,
    "run_dir": None,
}
STAGES = ["prepare", "explore", "evaluate", "pair", "align", "test", "report"]
SENTIMENT_METHODS = ["10H (no profile)", "kar profiles (base model)", "base profiles", "LettinGo (aligned)",
                     "random (baseline)", "majority (baseline)"]


def _metric(value: float, width: float = 0.05) -> dict:
    return {"value": value, "ci": [value - width, value + width]}


def _results(task_type: str = "sentiment", shift: float = 0.0) -> dict:
    """results.json as the report stage writes it (the parts compare reads, and some it does not)."""
    methods = {}
    for i, name in enumerate(SENTIMENT_METHODS):
        v = 0.40 + 0.03 * i + shift
        if task_type == "sentiment":
            row = {"accuracy": _metric(v), "macro_f1": _metric(v - 0.1), "weighted_f1": _metric(v - 0.05),
                   "confusion": {"rows": ["like", "neutral", "dislike"],
                                 "columns": ["like", "neutral", "dislike", "<invalid>"],
                                 "counts": [[10, 1, 1, 0], [3, 2, 1, 0], [1, 0, 1, 0]]}}
        else:  # rating
            row = {"mae": _metric(1.2 - v), "rmse": _metric(1.5 - v), "accuracy": _metric(v)}
        methods[name] = {**row, "n": 20, "invalid_rate": 0.05 if "aligned" in name else 0.0}
    return {"task_type": task_type, "recommender": "llm_sentiment", "methods": methods,
            "paired_tests": [{"a": "LettinGo (aligned)", "b": "base profiles", "metric": "accuracy",
                              "difference": 0.03, "ci": [-0.1, 0.16], "p_value": 0.6, "n": 20}],
            "recommender_diagnostics": {}, "stages": {}, "usage": [], "profile_stats": {}}


def _apply(config: dict, override: str) -> None:
    key, _, value = override.lstrip("+").partition("=")
    node = config
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    if isinstance(node.get(last), dict):  # a group option: aligner=sft
        node[last] = {"name": value}
    else:
        node[last] = yaml.safe_load(value) if value[:1] not in "<" else value


def make_job(root: Path, name: str, overrides: list[str], results: dict | None = None,
             stages: dict[str, str] | None = None, hydra: bool = True, config: dict | None = None) -> Path:
    """A job directory as `lettingo run -m` leaves it: .hydra/{overrides,config}.yaml, manifest.json,
    and results.json when the run finished."""
    job = root / name
    job.mkdir(parents=True)
    cfg = copy.deepcopy(config or CONFIG)
    for override in overrides:
        _apply(cfg, override)
    if hydra:
        (job / ".hydra").mkdir()
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    if stages is None:
        stages = dict.fromkeys(STAGES, "done") if results is not None else {}
    if stages or results is not None:
        manifest = {"config": cfg, "config_hash": "0" * 64, "versions": {}, "seeds": {}, "created": "",
                    "stages": {s: {"fingerprint": "f", "inputs": {}, "status": st} for s, st in stages.items()}}
        (job / "manifest.json").write_text(json.dumps(manifest))
    if results is not None:
        (job / "results.json").write_text(json.dumps(results))
    return job


COMMON = ["llm.model=/models/tiny", "protocol.test_users=20"]


@pytest.fixture
def sweep(tmp_path) -> Path:
    root = tmp_path / "multirun" / "2025-01-01" / "12-00-00"
    make_job(root, "0", COMMON + ["protocol.profile_window=30"], _results())
    make_job(root, "1", COMMON + ["protocol.profile_window=50", "aligner=sft"], _results(shift=0.1))
    make_job(root, "10", COMMON + ["protocol.profile_window=70"], _results(shift=0.2))
    (root / "multirun.yaml").write_text("hydra: {}\n")
    return root


def test_settings_are_the_overrides_that_differ(sweep):
    df = collect(sweep)
    assert list(dict.fromkeys(df["job"])) == ["0", "1", "10"]  # natural order, not "0", "10", "1"
    settings = list(dict.fromkeys(df["setting"]))
    # job 1 alone overrides the aligner: the others show their config's aligner
    assert settings == ["protocol.profile_window=30, aligner=dpo", "protocol.profile_window=50, aligner=sft",
                        "protocol.profile_window=70, aligner=dpo"]
    assert df.attrs["common"] == {"llm.model": "/models/tiny", "protocol.test_users": "20"}
    assert df.attrs["setting_keys"] == ["protocol.profile_window", "aligner"]
    assert list(df.loc[df["job"] == "1", "aligner"].unique()) == ["sft"]
    # rows: setting x method, in the report's method order
    assert len(df) == 3 * len(SENTIMENT_METHODS)
    assert list(df.loc[df["job"] == "0", "method"]) == SENTIMENT_METHODS
    assert df.attrs["missing"] == []


def test_metrics_are_shown_with_their_intervals_headline_first(sweep):
    assert interval(0.53, 0.48, 0.58) == "0.530 [0.480, 0.580]"
    assert interval(0.53, float("nan"), float("nan")) == "0.530"
    assert interval(float("nan"), 0.1, 0.2) == ""
    df = collect(sweep)
    assert df.attrs["metrics"] == ["accuracy", "macro_f1", "weighted_f1"]
    table = display_table(df)
    assert list(table.columns) == ["job", "setting", "method", "accuracy", "macro_f1", "weighted_f1", "n", "invalid",
                                   PAPER_HEADER]
    first = table.iloc[0]
    assert first["accuracy"] == "0.400 [0.350, 0.450]" and first["n"] == "20" and first["invalid"] == "0.0%"
    assert table.iloc[1]["job"] == "" and table.iloc[1]["setting"] == ""  # a job's setting is said once
    md = render_markdown(df)
    assert f"| job | setting | method | accuracy | macro_f1 | weighted_f1 | n | invalid | {PAPER_HEADER} |" in md
    assert "| 0 | protocol.profile_window=30, aligner=dpo | 10H (no profile) | 0.400 [0.350, 0.450] |" in md


def test_rating_metrics_lead_with_mae_and_say_lower_is_better(tmp_path):
    make_job(tmp_path, "0", ["recommender=llm_rating", "seed=0"], _results("rating"))
    make_job(tmp_path, "1", ["recommender=llm_rating", "seed=1"], _results("rating"))
    df = collect(tmp_path)
    assert df.attrs["metrics"] == ["mae", "rmse", "accuracy"]
    assert "mae (lower is better)" in display_table(df).columns


def test_paper_numbers_beside_movielens_sentiment_rows(sweep):
    df = collect(sweep).set_index(["job", "method"])
    dpo, sft = df.loc["0"], df.loc["1"]
    assert "44.95%" in dpo.loc["10H (no profile)", "paper"] and "ML-10M" in dpo.loc["10H (no profile)", "paper"]
    assert dpo.loc["10H (no profile)", "paper_accuracy"] == pytest.approx(0.4495)
    aligned = dpo.loc["LettinGo (aligned)", "paper"]
    assert "53.00% (LettinGo row)" in aligned and "53.0% (ablation: DPO)" in aligned
    assert "LLaMA3-8B judge" in aligned and "2,000 test users" in aligned
    assert dpo.loc["LettinGo (aligned)", "paper_accuracy"] == pytest.approx(0.53)
    # with SFT: the 10H row still, and the ablation's SFT row, not the headline DPO number
    assert sft.loc["LettinGo (aligned)", "paper"].startswith("accuracy 51.1% (ablation: SFT)")
    assert pd.isna(sft.loc["LettinGo (aligned)", "paper_accuracy"])
    assert sft.loc["LettinGo (aligned)", "paper_ablation_accuracy"] == pytest.approx(0.511)
    for method in ("base profiles", "kar profiles (base model)", "random (baseline)"):
        assert dpo.loc[method, "paper"] == ""
    md = render_markdown(collect(sweep))
    assert f"**{PAPER_HEADER}**" in md and "second-hand" in md


def test_no_paper_numbers_for_rating_tasks_or_amazon_outside_books(tmp_path):
    make_job(tmp_path, "rating", ["recommender=llm_rating"], _results("rating"))
    make_job(tmp_path, "beauty", ["dataset=amazon", "+dataset.path=/data/amazon/beauty",
                                  "+dataset.category=All_Beauty"], _results())
    make_job(tmp_path, "books", ["dataset=amazon", "+dataset.path=/data/amazon",
                                 "+dataset.category=Books"], _results())
    df = collect(tmp_path)
    assert (df.loc[df["job"].isin(["rating", "beauty"]), "paper"] == "").all()
    books = df[df["job"] == "books"].set_index("method")
    assert "48.15% (10H row)" in books.loc["10H (no profile)", "paper"] and "Amazon Books" in books.loc[
        "10H (no profile)", "paper"]
    assert "70.75%" in books.loc["LettinGo (aligned)", "paper"]


def test_published_matches_dataset_task_method_and_aligner():
    texts = lambda *args, **kw: [e.text for e in paper.published(*args, **kw)]  # noqa: E731
    assert texts("movielens", "sentiment", "none", "dpo", "accuracy") == ["44.95"]
    assert texts("movielens", "sentiment", "none", "sft", "accuracy") == ["44.95"]  # 10H: any aligner
    assert texts("movielens", "sentiment", "aligned", "dpo", "accuracy") == ["53.00", "53.0"]
    assert texts("yelp", "sentiment", "aligned", "dpo", "accuracy") == ["70.70", "70.4"]
    assert texts("yelp", "sentiment", "aligned", "sft", "accuracy") == ["66.2"]
    assert texts("movielens", "sentiment", "base", "none", "accuracy") == ["50.9"]  # ablation: no DPO
    assert texts("movielens", "sentiment", "base", "dpo", "accuracy") == []
    assert texts("movielens", "sentiment", "aligned", "dpo", "macro_f1") == []  # the notes give no F1
    assert texts("movielens", "rating", "none", "dpo", "accuracy") == []
    assert texts("movielens", "ranking", "aligned", "dpo", None) == []
    assert texts("jsonl", "sentiment", "none", "dpo", "accuracy") == []
    assert texts("amazon", "sentiment", "none", "dpo", "accuracy") == []  # no config: cannot tell Books
    assert texts("amazon", "sentiment", "none", "dpo", "accuracy",
                 dataset_config={"path": "/data/amazon_books", "category": "Kindle"}) == ["48.15"]
    assert texts("amazon", "sentiment", "aligned", "orpo", "accuracy", dataset_config={"category": "Books"}) == []
    entry = paper.published("movielens", "sentiment", "aligned", "dpo", "accuracy")[0]
    assert entry.value == pytest.approx(0.53) and entry.paper_dataset == "ML-10M" and entry.table == "headline"
    assert entry.label() == "accuracy 53.00% (LettinGo row; ML-10M, LLaMA3-8B judge, 2,000 test users)"
    assert "second-hand" in paper.__doc__ and "docs/paper.md" in paper.__doc__
    assert (Path(__file__).parents[1] / "docs" / "paper.md").read_text().count("53.00") == 1


def test_jobs_without_results_are_listed_not_fatal(sweep):
    make_job(sweep, "2", COMMON + ["protocol.profile_window=90"],
             stages={"prepare": "done", "explore": "done", "evaluate": "running"})
    make_job(sweep, "3", COMMON + ["protocol.profile_window=110"], stages={})  # died before its first stage
    df = collect(sweep)
    assert set(df["job"]) == {"0", "1", "10"}
    missing = {m["job"]: m for m in df.attrs["missing"]}
    assert set(missing) == {"2", "3"}
    assert missing["2"]["dir"] == str(sweep / "2")
    assert "stages done: prepare, explore" in missing["2"]["state"]
    assert "evaluate running (interrupted or failed)" in missing["2"]["state"]
    assert "no manifest.json" in missing["3"]["state"]
    md = render_markdown(df)
    assert "## Jobs without results" in md
    assert f"`2` ({sweep / '2'}): no results.json; stages done: prepare, explore" in md
    assert "3 jobs with results, 2 without" in md
    # the settings still cover the unfinished jobs' overrides: 90 and 110 are not among the rows
    assert "protocol.profile_window=90" not in set(df["setting"])


def test_a_sweep_whose_jobs_all_failed_still_reports(tmp_path):
    make_job(tmp_path, "0", ["seed=0"], stages={"prepare": "running"})
    df = collect(tmp_path)
    assert df.empty and len(df.attrs["missing"]) == 1
    assert "No job has results yet." in render_markdown(df) and "No job has results yet." in render_html(df)
    assert {p.name for p in write_comparison(df, tmp_path / "out")} == {"compare.md", "compare.csv", "compare.html"}


def test_a_directory_without_jobs_is_a_clear_error(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(NoJobsError, match="holds no job of a sweep.*results.json.*overrides.yaml") as info:
        collect(tmp_path)
    assert str(tmp_path) in str(info.value)
    with pytest.raises(NoJobsError, match="is not a directory"):
        collect(tmp_path / "absent")


def test_html_escapes_a_hostile_override(tmp_path):
    hostile = '<script>alert("x")</script>|&'
    make_job(tmp_path, "0", [f"prompt.system={hostile}"], _results())
    make_job(tmp_path, "1", ["prompt.system=plain"], _results())
    df = collect(tmp_path)
    page = render_html(df)
    assert "<script>" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;|&amp;" in page
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page  # self-contained
    assert f'<th class="paper">{PAPER_HEADER}</th>' in page
    md = render_markdown(df)
    assert "alert(\"x\")</script>\\|&" in md  # a pipe in a value does not split the Markdown row


def test_csv_holds_numbers_for_machines(sweep, tmp_path):
    paths = write_comparison(collect(sweep), tmp_path / "out", ["csv"])
    assert [p.name for p in paths] == ["compare.csv"]
    table = pd.read_csv(paths[0])
    for metric in ("accuracy", "macro_f1", "weighted_f1"):
        for column in (metric, f"{metric}_lo", f"{metric}_hi"):
            assert pd.api.types.is_float_dtype(table[column]), column
    assert pd.api.types.is_integer_dtype(table["n"]) and pd.api.types.is_float_dtype(table["invalid_rate"])
    row = table[(table["job"] == 0) & (table["method"] == "10H (no profile)")].iloc[0]
    assert (row["accuracy"], row["accuracy_lo"], row["accuracy_hi"]) == pytest.approx((0.40, 0.35, 0.45))
    assert row["paper_accuracy"] == pytest.approx(0.4495)
    assert list(table["protocol.profile_window"].unique()) == [30, 50, 70]


def test_settings_from_manifests_when_hydra_files_are_gone(tmp_path):
    make_job(tmp_path, "a", ["protocol.profile_window=30"], _results(), hydra=False)
    make_job(tmp_path, "b", ["protocol.profile_window=50"], _results(), hydra=False)
    df = collect(tmp_path)
    assert list(dict.fromkeys(df["setting"])) == ["protocol.profile_window=30", "protocol.profile_window=50"]


def test_shards_writing_one_run_dir_are_one_job(tmp_path):
    run = tmp_path / "runs" / "books"
    make_job(tmp_path, "runs/books", [], _results(), hydra=False)
    for i in range(3):
        job = make_job(tmp_path / "sweep", str(i), ["shard.count=3", f"shard.index={i}", f"run_dir={run}"])
        assert not (job / "results.json").exists()
    df = collect(tmp_path / "sweep")
    assert set(df["job"]) == {"0,1,2"} and df.attrs["missing"] == []
    assert "write into one run directory" in df.attrs["notes"][0]


def test_cli_prints_the_table_and_writes_the_files(sweep, tmp_path, capsys):
    cli.main(["compare", str(sweep), "--out", str(tmp_path / "out"), "--format", "md"])
    out = capsys.readouterr().out
    assert "| 0 | protocol.profile_window=30, aligner=dpo |" in out and "44.95%" in out
    assert f"wrote: {tmp_path / 'out' / 'compare.md'}" in out
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["compare.md"]
    cli.main(["compare", str(sweep)])
    assert {p.name for p in sweep.glob("compare.*")} == {"compare.md", "compare.csv", "compare.html"}
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["compare", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "holds no job of a sweep" in capsys.readouterr().err

# A real sweep compared end to end: tests/test_experiments.py (paper_table2 and paper_ablation).


def test_the_held_out_pair_accuracy_of_each_job_stands_on_its_aligned_row(tmp_path):
    root = tmp_path / "sweep"
    for name, lr, accuracy in (("0", "5e-5", 0.48), ("1", "5e-4", 0.71)):
        results = _results()
        results["pair_check"] = {"heldout": {"pairs": 30, "users": 30, "reward_accuracy": _metric(accuracy, 0.1)},
                                 "train": {}, "verdict": "..."}
        make_job(root, name, COMMON + [f"aligner.learning_rate={lr}"], results)
    df = collect(root)
    aligned = df[df["method"] == "LettinGo (aligned)"]
    assert list(aligned["held-out pair accuracy"]) == [0.48, 0.71]
    assert list(aligned["held-out pair accuracy_lo"]) == pytest.approx([0.38, 0.61])
    assert df[df["method"] != "LettinGo (aligned)"]["held-out pair accuracy"].isna().all()
    text = render_markdown(df)
    header = next(line for line in text.splitlines() if line.startswith("| job |"))
    assert header.split(" | ")[-4] == "held-out pair accuracy"
    assert "0.710 [0.610, 0.810]" in text and "never trained on" in text
