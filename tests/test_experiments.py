"""The paper's experiments as real `lettingo run -m` sweeps on the tiny model, compared in one table.

The experiment files are run as written (their sweeps over profile windows and aligners); only the
model, the number of users and the sampling lengths are made tiny, and the pairs are best_vs_worst:
the random tiny judge gives the same verdict to all of a user's profiles, so right-vs-wrong pairs
(the experiments' correct_vs_incorrect) would be none.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lettingo.compare import collect
from lettingo.testing import tiny_overrides

pytestmark = pytest.mark.slow

KEEP_FROM_EXPERIMENT = ("protocol.profile_window", "aligner.max_length")  # the experiment sets these


def sweep(tmp_path: Path, tiny_model: str, experiment: str, *extra: str) -> list[Path]:
    tiny = [o for o in tiny_overrides(tiny_model, train=6, test=4) if not o.startswith(KEEP_FROM_EXPERIMENT)]
    if experiment == "paper_ablation":  # the sweep includes aligner=none, which has no training keys
        tiny = [o.replace("aligner.", "++aligner.", 1) if o.startswith("aligner.") else o for o in tiny]
    sweep_dir = tmp_path / experiment
    env = {**os.environ, "LETTINGO_LOAD_PLUGINS": "transformers,trl", "LETTINGO_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "lettingo.cli", "run", "-m", f"experiment={experiment}", *tiny,
         "report.embedding_model=null", "pair_selector=best_vs_worst", f"hydra.sweep.dir={sweep_dir}", *extra],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return sorted(p.parent for p in sweep_dir.glob("*/results.json"))


def compare(sweep_dir: Path) -> tuple[str, list[dict]]:
    done = subprocess.run([sys.executable, "-m", "lettingo.cli", "compare", str(sweep_dir)],
                          env={**os.environ, "LETTINGO_LOAD_PLUGINS": ""}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(sweep_dir / "compare.csv", newline="") as f:
        return done.stdout, list(csv.DictReader(f))


def test_paper_table2_sweeps_the_three_profile_windows_with_every_row(tmp_path, tiny_model):
    jobs = sweep(tmp_path, tiny_model, "paper_table2")
    assert len(jobs) == 3
    windows, test_users = [], []
    for job in jobs:
        config = json.loads((job / "manifest.json").read_text())["config"]
        windows.append(config["protocol"]["profile_window"])
        assert config["recommender"]["name"] == "llm_sentiment" and config["aligner"]["name"] == "dpo"
        results = json.loads((job / "results.json").read_text())
        methods = set(results["methods"])
        assert {"10H (no profile)", "base profiles", "LettinGo (aligned)", "palr profiles (base model)",
                "rlmrec profiles (base model)", "kar profiles (base model)"} <= methods
        assert any(m.startswith("raw_history") for m in methods)
        test_users.append(sorted({t["user_id"] for t in map(json.loads, (job / "tasks.jsonl").open())
                                  if t["split"] == "test"}))
        windows_seen = {len(t["profile_window"]) for t in map(json.loads, (job / "tasks.jsonl").open())
                        if t["split"] == "test"}
        assert windows_seen == {config["protocol"]["profile_window"]}
    assert sorted(windows) == [30, 50, 70]
    assert test_users[0] == test_users[1] == test_users[2]  # min_interactions keeps the same users

    table, rows = compare(jobs[0].parent)
    df = collect(jobs[0].parent)
    assert list(dict.fromkeys(df["setting"])) == [f"protocol.profile_window={w}" for w in (30, 50, 70)]
    assert len(df) == 3 * len(df[df["setting"] == "protocol.profile_window=30"]) >= 3 * 7
    assert (df["n"] == 4).all() and df["accuracy"].between(0, 1).all()
    # movielens + like/neutral/dislike judge + dpo: the paper's published numbers stand beside ours
    assert "published in the paper (not ours)" in table
    assert "44.95%" in table and "53.00% (LettinGo row)" in table
    assert {p.name for p in jobs[0].parent.glob("compare.*")} == {"compare.md", "compare.csv", "compare.html"}
    assert len(rows) == len(df)


def test_paper_ablation_sweeps_none_sft_and_dpo(tmp_path, tiny_model):
    jobs = sweep(tmp_path, tiny_model, "paper_ablation")
    aligners = {}
    for job in jobs:
        aligned = json.loads((job / "aligned" / "aligned_model.json").read_text())
        aligners[aligned["aligner"]] = json.loads((job / "results.json").read_text())["methods"]
    assert set(aligners) == {"none", "sft", "dpo"}
    assert "LettinGo (aligned)" not in aligners["none"] and "base profiles" in aligners["none"]
    assert "LettinGo (aligned)" in aligners["sft"] and "LettinGo (aligned)" in aligners["dpo"]
    table, _ = compare(jobs[0].parent)
    assert "aligner=none" in table and "aligner=sft" in table and "aligner=dpo" in table
    assert "50.9%" in table  # the paper's ablation rows: no DPO, SFT, DPO
    assert "51.1%" in table and "53.0%" in table
