"""The whole loop on the tiny model and real MovieLens-100K users: every artifact, resume, guards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lettingo import api, plugins
from lettingo.errors import ConfigChangedError, RunLockedError
from lettingo.reporting.naming import method_of
from lettingo.store import RunStore, read_jsonl

from lettingo.testing import tiny_overrides

ARTIFACTS = ["manifest.json", "tasks.jsonl", "items.jsonl", "data_summary.json", "profiles.jsonl",
             "judgements.jsonl", "pairs.jsonl", "pairs_summary.json", "aligned/aligned_model.json",
             "aligned/adapter/adapter_config.json", "aligned/training_log.jsonl",
             "test_profiles.jsonl", "test_judgements.jsonl", "results.json", "report.md"]


class Recorder:
    """A lifecycle-hook plugin: remembers what the run told it."""

    def __init__(self):
        self.events = []

    @plugins.hookspecs.hookimpl
    def lettingo_stage_started(self, stage, run_dir):
        self.events.append(("started", stage))

    @plugins.hookspecs.hookimpl
    def lettingo_stage_finished(self, stage, run_dir, summary):
        self.events.append(("finished", stage, summary))

    @plugins.hookspecs.hookimpl
    def lettingo_run_finished(self, run_dir, metrics):
        self.events.append(("run_finished", metrics))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_model):
    """One whole run (module-scoped: several tests read its artifacts)."""
    plugins.load_entrypoints(only=["transformers", "trl"])
    recorder = Recorder()
    plugins.register_plugin(recorder, "recorder")
    run_dir = tmp_path_factory.mktemp("run")
    cache = tmp_path_factory.mktemp("cache") / "calls.sqlite"
    try:
        cfg = api.compose(tiny_overrides(tiny_model) + [f"cache.path={cache}",
                                                         "test.baseline_prompts=[raw_history,palr]"])
        results = api.run(cfg, run_dir)
    finally:
        plugins.unregister_plugin("recorder")
    return run_dir, cfg, results, recorder


# -- behaviour kept across refactors -------------------------------------------------------------------
GOLDEN = Path(__file__).parent / "fixtures" / "tiny-run-golden.json"
STAGE_FILES = ["tasks.jsonl", "items.jsonl", "profiles.jsonl", "judgements.jsonl", "pairs.jsonl",
               "test_profiles.jsonl", "test_judgements.jsonl"]


def behaviour(run_dir: Path) -> dict:
    """What a run did, in a form two equal runs share: each stage file's rows (``comparable_rows``,
    without the model's path, which names a temporary directory) as one digest, and the report's
    numbers (results.json's methods and paired tests)."""
    import hashlib

    from lettingo.testing import comparable_rows, rounded

    files = {}
    for name in STAGE_FILES:
        rows = []
        for row in comparable_rows(run_dir / name):
            row.pop("model", None)
            rows.append(json.dumps(rounded(row, 6), sort_keys=True))
        files[name] = {"rows": len(rows), "digest": hashlib.sha256("\n".join(sorted(rows)).encode()).hexdigest()}
    results = json.loads((run_dir / "results.json").read_text())
    return {"files": files, "methods": rounded(results["methods"], 6), "paired_tests": rounded(results["paired_tests"], 6)}


def test_a_whole_tiny_run_does_what_it_did_before_the_redesign(finished_run):  # before tests that change the run
    """Recorded from a whole tiny run before issue 17's redesign (typed settings and later): the same
    inputs give the same rows in every stage file and the same report numbers. Re-record only on
    purpose (a change meant to alter behaviour): LETTINGO_RECORD_GOLDEN=1 pytest -k redesign."""
    now = behaviour(finished_run[0])
    if os.environ.get("LETTINGO_RECORD_GOLDEN"):
        GOLDEN.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    changed = [name for name in STAGE_FILES if now["files"][name] != golden["files"][name]]
    assert not changed, f"stage files whose rows changed: {changed}"
    assert now["methods"] == golden["methods"] and now["paired_tests"] == golden["paired_tests"]


def test_whole_pipeline_writes_every_artifact(finished_run):
    run_dir, cfg, results, _ = finished_run
    for name in ARTIFACTS:
        assert (run_dir / name).exists(), name
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["llm"]["name"] == "transformers"
    assert len(manifest["config_hash"]) == 64
    assert "torch" in manifest["versions"] and "lettingo" in manifest["versions"]
    assert all(s["status"] == "done" for s in manifest["stages"].values())
    tasks = read_jsonl(run_dir / "tasks.jsonl")
    assert sum(t["split"] == "train" for t in tasks) == 10 and sum(t["split"] == "test" for t in tasks) == 10
    assert len(read_jsonl(run_dir / "profiles.jsonl")) == 10 * 2
    assert len(read_jsonl(run_dir / "judgements.jsonl")) == 10 * 2
    # test users: base + aligned profiles and the two baseline prompts', each judged, plus the no-profile row
    test_profiles = read_jsonl(run_dir / "test_profiles.jsonl")
    assert len(test_profiles) == 10 * 4
    test_judgements = read_jsonl(run_dir / "test_judgements.jsonl")
    assert len(test_judgements) == 10 * 5
    # each judgement records its method: what the report once recovered from the profile id
    assert all(j["method"] == method_of(j["profile_id"], cfg.prompt.name) for j in test_judgements)
    assert {j["method"] for j in test_judgements} == {"none", "base", "aligned", "raw_history", "palr"}
    assert all(j["method"] == "base" for j in read_jsonl(run_dir / "judgements.jsonl"))
    raw = [p for p in test_profiles if p["prompt_style"] == "raw_history"]
    assert all(p["text"].startswith("The user's earlier items") and p["model"] == "none" for p in raw)
    methods = results["methods"]
    assert {"10H (no profile)", "base profiles", "LettinGo (aligned)", "random (baseline)", "popularity (baseline)",
            "raw_history (the profile window as text)", "palr profiles (base model)"} <= set(methods)
    for row in methods.values():
        low, high = row["ndcg@10"]["ci"]
        assert 0 <= low <= row["ndcg@10"]["value"] <= high <= 1
        assert {"ndcg@1", "ndcg@20", "hr@10", "mrr"} <= set(row)
    pairs = {(t["a"], t["b"], t["metric"]) for t in results["paired_tests"]}
    assert ("LettinGo (aligned)", "base profiles", "ndcg@10") in pairs
    assert ("LettinGo (aligned)", "palr profiles (base model)", "mrr") in pairs
    assert all(0 <= t["p_value"] <= 1 and t["n"] == 10 for t in results["paired_tests"])
    assert results["profile_stats"]["explore"]["base"]["profiles"] == 20
    assert results["profile_stats"]["explore"]["base"]["sample_diversity"] >= 0
    report = (run_dir / "report.md").read_text()
    assert "| method |" in report and "LettinGo (aligned)" in report and "## Example users" in report
    assert "reward margin" in report and "## Is one method better than another?" in report
    assert "## Profiles" in report and "| explore: base | 20 |" in report


def test_the_stage_table_names_every_file_a_run_writes(finished_run):
    """What a restart removes is what the table says a stage writes: every stage output exists after
    a whole run, and every file the run wrote is a stage's (or the run's own bookkeeping)."""
    from lettingo.pipeline.stages import STAGES

    run_dir, *_ = finished_run
    outputs = {name for stage in STAGES for name in stage.outputs}
    assert all((run_dir / name).exists() for name in outputs)
    bookkeeping = {"manifest.json", "ledger.jsonl"}
    written = {p.name for p in run_dir.iterdir() if not p.name.startswith(".")}
    assert written - bookkeeping == outputs
    assert [s.name for s in STAGES if s.per_user] == ["explore", "evaluate", "test"]


def test_lifecycle_hooks_see_every_stage(finished_run):
    *_, recorder = finished_run
    started = [e[1] for e in recorder.events if e[0] == "started"]
    assert started == ["prepare", "explore", "evaluate", "pair", "align", "test", "report"]
    finished = [e for e in recorder.events if e[0] == "finished"]
    assert all("seconds" in e[2] for e in finished)
    assert recorder.events[-1][0] == "run_finished" and "methods" in recorder.events[-1][1]


def test_rerunning_a_finished_run_keeps_its_stage_records(finished_run):
    run_dir, cfg, results, _ = finished_run
    before = json.loads((run_dir / "manifest.json").read_text())["stages"]
    again = api.run(cfg, run_dir)  # done stages are skipped, the report is rewritten
    after = json.loads((run_dir / "manifest.json").read_text())["stages"]
    assert {k: v for k, v in after.items() if k != "report"} == {k: v for k, v in before.items() if k != "report"}
    assert again["methods"] == results["methods"]


def test_rerun_of_finished_run_makes_no_model_calls(finished_run, tmp_path):
    run_dir, cfg, results, _ = finished_run
    other = tmp_path / "again"
    again = api.run(cfg, other)  # a fresh directory, same config: every call is a cache hit
    usage = json.loads((other / "results.json").read_text())["usage"]
    assert {row["stage"] for row in usage} == {"explore", "test"}  # the embedding ranker calls no LLM
    assert sum(row["requests"] for row in usage) == 0 and all(row["cache_hits"] > 0 for row in usage)
    assert sum(row["cost_usd"] for row in usage) == 0 and "cache hits" in (other / "report.md").read_text()
    assert again["methods"]["base profiles"] == results["methods"]["base profiles"]


def test_changed_inputs_are_refused_then_restarted_on_request(finished_run, tiny_model):
    run_dir, cfg, *_ = finished_run
    changed = api.compose(tiny_overrides(tiny_model) + [f"cache.path={cfg.cache.path}", "explore.temperature=0.5"])
    with pytest.raises(ConfigChangedError, match="explore"):
        api.run(changed, run_dir, stages=["prepare", "explore"])
    restart = api.compose(tiny_overrides(tiny_model) + [f"cache.path={cfg.cache.path}", "explore.temperature=0.5",
                                                          "resume=restart"])
    api.run(restart, run_dir, stages=["prepare", "explore"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert "evaluate" not in manifest["stages"]  # later stages were cleared with it
    assert not (run_dir / "judgements.jsonl").exists()


def test_second_process_on_same_run_dir_is_refused(tmp_path):
    first = RunStore(tmp_path)
    first.lock()
    try:
        with pytest.raises(RunLockedError, match="another lettingo process"):
            RunStore(tmp_path).lock()
    finally:
        first.unlock()


KILL_SCRIPT = """
import sys
from lettingo import api, plugins
plugins.load_entrypoints(only=["transformers", "trl"])
cfg = api.compose(sys.argv[2:])
api.run(cfg, sys.argv[1], stages=["prepare", "explore"])
"""


def _explore_rows(run_dir: Path):
    return sorted((r["task_id"], r["sample"], r["text"]) for r in read_jsonl(run_dir / "profiles.jsonl"))


@pytest.mark.slow
def test_kill_mid_explore_then_resume_gives_the_same_rows(tmp_path, tiny_model):
    overrides = tiny_overrides(tiny_model, train=30, test=5) + ["explore.sequences_per_call=1"]
    env = {**os.environ, "LETTINGO_CACHE_DIR": str(tmp_path / "cache-killed")}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(killed), *overrides], env=env)
    profiles = killed / "profiles.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if profiles.exists() and profiles.read_text().count("\n") >= 6:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "explore finished before it could be killed"
    partial = read_jsonl(profiles)
    assert 6 <= len(partial) < 60
    with open(profiles, "a") as fh:  # a torn write, as a kill during write() would leave
        fh.write('{"task_id": "train-1", "gener')
    # resume in-process with the same config
    plugins.load_entrypoints(only=["transformers", "trl"])
    os.environ["LETTINGO_CACHE_DIR"] = env["LETTINGO_CACHE_DIR"]
    api.run(api.compose(overrides), killed, stages=["prepare", "explore"])
    # an uninterrupted run with a cold cache
    os.environ["LETTINGO_CACHE_DIR"] = str(tmp_path / "cache-clean")
    clean = tmp_path / "clean"
    api.run(api.compose(overrides), clean, stages=["prepare", "explore"])
    resumed = _explore_rows(killed)
    assert len(resumed) == 60 and len(set((t, s) for t, s, _ in resumed)) == 60  # none lost or doubled
    assert resumed == _explore_rows(clean)

