"""Per-user stages sharded by user: partition, merge order, a 3-shard run equal to the unsharded one,
and shards as parallel Hydra jobs on the joblib launcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest
from omegaconf import OmegaConf

from lettingo import api, plugins
from lettingo.pipeline.shards import Shard, ShardError, merge_stage, shard_of
from lettingo.pipeline.stages import stage
from lettingo.store import RunStore, read_jsonl
from lettingo.testing import comparable_rows, tiny_overrides

# One user per generate call, so a user's samples do not depend on who shares their batch.
DETERMINISTIC = ["explore.sequences_per_call=2", "test.sequences_per_call=1", "test.baseline_prompts=[raw_history]"]
PER_USER_FILES = ["profiles.jsonl", "judgements.jsonl", "test_profiles.jsonl", "test_judgements.jsonl"]


def test_shards_partition_the_users_and_name_their_files():
    task_ids = [f"train-{u}" for u in range(300)]
    owners = Counter(shard_of(t, 3) for t in task_ids)
    assert sorted(owners) == [0, 1, 2] and min(owners.values()) > 70  # roughly even
    for task_id in task_ids:
        assert sum(Shard(i, 3).owns(task_id) for i in range(3)) == 1
    assert Shard(1, 3).file("profiles.jsonl") == "profiles.shard-1-of-3.jsonl"
    assert Shard().file("profiles.jsonl") == "profiles.jsonl" and not Shard().sharded
    assert Shard(2, 3).stage_key("explore") == "explore@shard-2-of-3"
    with pytest.raises(ShardError, match="shard.index must be in 0..shard.count-1"):
        Shard.of(OmegaConf.create({"shard": {"index": 3, "count": 3}}))


def test_merge_orders_rows_as_an_unsharded_run_and_waits_for_every_shard(tmp_path):
    store = RunStore(tmp_path)
    tasks = ["t0", "t1", "t2", "t3"]
    rows = [{"task_id": t, "generator": g, "prompt_style": "lettingo", "sample": s}
            for g in ("base", "other") for t in tasks for s in (0, 1)]
    for index in range(2):
        shard = Shard(index, 2)
        lines = [r for r in rows if shard.owns(r["task_id"])]
        (tmp_path / shard.file("profiles.jsonl")).write_text("".join(json.dumps(r) + "\n" for r in lines))
        store.mark_stage(shard.stage_key("explore"), "f", {}, "done" if index == 0 else "running")
    with pytest.raises(ShardError, match=r"shard\(s\) \[1\] are not done"):
        merge_stage(store, stage("explore"), tasks)
    store.mark_stage(Shard(1, 2).stage_key("explore"), "f", {}, "done")
    assert merge_stage(store, stage("explore"), tasks) == {"profiles.jsonl": 16}
    assert read_jsonl(tmp_path / "profiles.jsonl") == rows  # generator by generator, task by task, sample
    assert merge_stage(store, stage("evaluate"), tasks) is None  # no shards: nothing to do


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, tiny_model):
    plugins.load_entrypoints(only=["transformers", "trl"])
    cache = tmp_path_factory.mktemp("reference-cache") / "calls.sqlite"
    cfg = api.compose(tiny_overrides(tiny_model, train=8, test=6) + DETERMINISTIC + [f"cache.path={cache}"])
    run_dir = tmp_path_factory.mktemp("reference")
    return cfg, run_dir, api.run(cfg, run_dir)


@pytest.mark.slow
def test_a_three_shard_run_merged_equals_the_unsharded_run_row_for_row(reference_run, tmp_path, tiny_model):
    _, reference_dir, reference_results = reference_run
    overrides = tiny_overrides(tiny_model, train=8, test=6) + DETERMINISTIC + [f"cache.path={tmp_path / 'calls.sqlite'}"]
    run_dir = tmp_path / "sharded"

    def shard_job(index):
        return api.run(api.compose(overrides + ["shard.count=3", f"shard.index={index}"]), run_dir)

    for index in range(3):  # explore and evaluate, each shard its users; none goes past them
        assert shard_job(index) == {"shard": f"shard-{index}-of-3", "done": ["explore", "evaluate"],
                                    "stopped_before": "pair"}
    assert sorted(p.name for p in run_dir.glob("profiles.shard-*")) == [
        f"profiles.shard-{i}-of-3.jsonl" for i in range(3)]
    assert not (run_dir / "profiles.jsonl").exists()
    unsharded = api.compose(overrides)
    api.run(unsharded, run_dir, stages=["prepare", "explore", "evaluate", "pair", "align"])  # merges, trains
    for index in range(3):  # the test stage, sharded again
        assert shard_job(index)["done"] == ["test"] and shard_job(index)["stopped_before"] == "report"
    results = api.run(unsharded, run_dir)  # merges the test shards, reports
    for name in PER_USER_FILES + ["pairs.jsonl", "tasks.jsonl"]:
        assert comparable_rows(run_dir / name) == comparable_rows(reference_dir / name), name
    assert results["methods"] == reference_results["methods"]
    stages = RunStore(run_dir).manifest()["stages"]
    assert stages["explore"]["summary"]["merged_from_shards"] == {"profiles.jsonl": 16}
    assert {k for k in stages if "@" in k} == {f"{s}@shard-{i}-of-3" for s in ("explore", "evaluate", "test")
                                               for i in range(3)}
    assert "shard" not in RunStore(run_dir).manifest()["config"]  # the run's config is the whole run's


@pytest.mark.slow
def test_shards_run_as_parallel_jobs_on_the_joblib_launcher(reference_run, tmp_path, tiny_model):
    _, reference_dir, _ = reference_run
    run_dir = tmp_path / "parallel"
    env = {**os.environ, "LETTINGO_LOAD_PLUGINS": "transformers,trl", "LETTINGO_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "lettingo.cli"]
    overrides = tiny_overrides(tiny_model, train=8, test=6) + DETERMINISTIC
    result = subprocess.run(
        command + ["run", "-m", "hydra/launcher=shards_local", *overrides, "shard.count=3", "shard.index=0,1,2",
                   f"run_dir={run_dir}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "stopped before" not in result.stdout and "'pair' needs every user" in result.stdout
    merged = subprocess.run(command + ["merge", str(run_dir)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert merged.returncode == 0, merged.stderr[-2000:]
    assert "explore: profiles.jsonl (16 rows)" in merged.stdout and "evaluate: judgements.jsonl (16 rows)" in merged.stdout
    for name in ("profiles.jsonl", "judgements.jsonl"):
        assert comparable_rows(run_dir / name) == comparable_rows(reference_dir / name), name
