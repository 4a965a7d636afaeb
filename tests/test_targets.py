"""Several targets per user (protocol.targets_per_user): the tasks, their judging, pairing and report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lettingo import api, metrics, plugins
from lettingo.data import DatasetError
from lettingo.data.protocol import build_tasks, derive_seed
from lettingo.store import read_jsonl
from lettingo.targets import earliest_target_tasks, mean_over_targets, primary_tasks, targets_of
from lettingo.testing import tiny_overrides
from lettingo.types import Judgement
from tests.test_protocol import SMALL, THRESHOLDS, synthetic


@pytest.fixture(scope="module")
def data():
    return synthetic({f"u{i}": 8 + i for i in range(12)})


def test_each_user_gets_one_task_per_target_sharing_one_profile_window(data):
    tasks, summary = build_tasks(data, {**SMALL, "targets_per_user": 3}, THRESHOLDS)
    frame = data.interactions()
    assert summary["splits"]["train"]["users"] == 6 and summary["splits"]["test"]["users"] == 4
    assert summary["users"]["kept"] == 10 and len(tasks) == 30
    groups = targets_of({t.task_id: t for t in tasks})
    for primary, group in groups.items():
        user = group[0].user_id
        assert [t.task_id for t in group] == [primary, f"{primary}#1", f"{primary}#2"]
        assert [t.profile_task for t in group] == [None, primary, primary]
        history = frame[frame["user_id"] == user]
        order = sorted(zip(history["timestamp"], history["item_id"]))
        # targets: the last, second-last and third-last interactions
        assert [(t.target.timestamp, t.target.item_id) for t in group] == order[-1:-4:-1]
        # one profile window, the 3 interactions before the earliest target's 2-item recent window
        assert all(t.profile_window == group[0].profile_window for t in group)
        assert [(i.timestamp, i.item_id) for i in group[0].profile_window] == order[-8:-5]
        for k, task in enumerate(group):  # each recent window: the 2 interactions just before its target
            assert [(i.timestamp, i.item_id) for i in task.recent_window] == order[-3 - k:-1 - k]
            assert task.candidate_seed == derive_seed(SMALL["seed"] + k, user)
            assert task.target.item_id in task.candidates
    assert earliest_target_tasks({t.task_id: t for t in tasks})[0].task_id.endswith("#2")


def test_one_target_per_user_builds_the_same_tasks_as_before(data):
    one, _ = build_tasks(data, SMALL, THRESHOLDS)
    explicit, _ = build_tasks(data, {**SMALL, "targets_per_user": 1}, THRESHOLDS)
    assert one == explicit and all(t.profile_task is None for t in one)


def test_targets_need_history_and_a_positive_count(data):
    with pytest.raises(DatasetError, match="targets_per_user must be >= 1"):
        build_tasks(data, {**SMALL, "targets_per_user": 0}, THRESHOLDS)
    with pytest.raises(DatasetError, match=r"\+ targets_per_user = 8"):
        build_tasks(data, {**SMALL, "targets_per_user": 3, "min_interactions": 7}, THRESHOLDS)


def judgement(task_id, sample, score, correct=False, valid=True):
    return Judgement(f"{task_id}/base/history/{sample}", task_id, "r", None, correct, score, valid)


def test_a_profile_is_paired_on_its_mean_over_targets(data):
    tasks, _ = build_tasks(data, {**SMALL, "targets_per_user": 3}, THRESHOLDS)
    tasks = {t.task_id: t for t in tasks}
    primary = next(iter(primary_tasks(tasks)))
    rows = [judgement(primary, 0, 1.0, True), judgement(f"{primary}#1", 0, 0.0), judgement(f"{primary}#2", 0, 0.2),
            judgement(primary, 1, 0.0), judgement(f"{primary}#1", 1, 0.6, True),
            judgement(f"{primary}#2", 1, 0.9, True, valid=True)]
    merged = {j.profile_id: j for j in mean_over_targets(tasks, rows)}
    assert set(merged) == {f"{primary}/base/history/0", f"{primary}/base/history/1"}
    first, second = merged[f"{primary}/base/history/0"], merged[f"{primary}/base/history/1"]
    assert first.task_id == primary and first.score == pytest.approx(0.4) and not first.correct
    assert second.score == pytest.approx(0.5) and second.correct  # on the last target it lost
    # an invalid judgement does not count; all invalid: the profile says nothing
    rows[1] = judgement(f"{primary}#1", 0, 0.0, valid=False)
    assert {j.profile_id: j for j in mean_over_targets(tasks, rows)}[first.profile_id].score == pytest.approx(0.6)
    one = [judgement(primary, 0, 0.3)]
    assert mean_over_targets(tasks, one) is one  # single-target judgements pass through


def test_rows_of_a_user_are_resampled_together():
    singles = metrics.resampled_rows(5, None, 20, seed=3)
    same = metrics.resampled_rows(5, list("abcde"), 20, seed=3)
    assert all((a == b).all() for a, b in zip(singles, same))  # distinct clusters: the plain bootstrap
    for rows in metrics.resampled_rows(6, ["u", "u", "u", "v", "v", "v"], 50, seed=0):
        counts = np.bincount(rows, minlength=6)  # a user's rows come together, or not at all
        assert len(rows) == 6 and len(set(counts[:3])) == 1 and len(set(counts[3:])) == 1
    assert metrics.resampled_rows(3, ["u", "u", "u"], 10, seed=0) is None


def test_best_of_n_picks_one_sample_per_user_across_its_targets():
    rows = [[judgement("t-u", 0, 0.8), judgement("t-u", 1, 0.0)],        # sample 0 wins the last target
            [judgement("t-u#1", 0, 0.0), judgement("t-u#1", 1, 1.0)],    # sample 1 wins on the mean
            [judgement("t-v", 0, 0.2), judgement("t-v", 1, 0.1)]]
    best = metrics.best_of_samples(rows, clusters=["u", "u", "v"])
    assert [j.profile_id for j in best] == ["t-u/base/history/1", "t-u#1/base/history/1", "t-v/base/history/0"]
    assert [j.score for j in metrics.best_of_samples(rows)] == [0.8, 1.0, 0.2]  # per row: more optimistic


@pytest.fixture(scope="module")
def several_targets_run(tmp_path_factory, tiny_model):
    plugins.load_entrypoints(only=["transformers", "trl"])
    root = tmp_path_factory.mktemp("targets")
    cfg = api.compose(tiny_overrides(tiny_model, train=6, test=5) + [
        "protocol.targets_per_user=3", f"cache.path={root / 'cache.sqlite'}", "test.num_profiles=2"])
    api.run(cfg, root / "run")
    return root / "run"


def test_a_run_writes_profiles_once_per_user_and_judges_them_on_every_target(several_targets_run):
    run = several_targets_run
    profiles = read_jsonl(run / "profiles.jsonl")
    judgements = read_jsonl(run / "judgements.jsonl")
    assert len({p["task_id"] for p in profiles}) == 6 and all("#" not in p["task_id"] for p in profiles)
    assert len(judgements) == 3 * len(profiles)
    assert {j["task_id"] for j in judgements} == {f"{p['task_id']}{k}" for p in profiles for k in ("", "#1", "#2")}
    for pair in read_jsonl(run / "pairs.jsonl"):  # pairs are of written profiles, on their mean score
        scores = {i: np.mean([j["score"] for j in judgements
                              if j["profile_id"].split("/", 1)[1] == i.split("/", 1)[1]
                              and j["task_id"].split("#")[0] == pair["task_id"]])
                  for i in (pair["chosen_id"], pair["rejected_id"])}
        assert pair["margin"] == pytest.approx(scores[pair["chosen_id"]] - scores[pair["rejected_id"]])
    test_profiles = read_jsonl(run / "test_profiles.jsonl")
    test_judgements = read_jsonl(run / "test_judgements.jsonl")
    assert all("#" not in p["task_id"] for p in test_profiles)
    assert len(test_judgements) == 3 * (len(test_profiles) + 5)  # + the no-profile row, per target
    assert {p["generator"] for p in test_profiles} == {"base", "aligned"}
    results = json.loads((run / "results.json").read_text())
    for name, row in results["methods"].items():  # users counted once, every target scored
        assert row["n"] == 5, name
        if "targets" in row:
            assert row["targets"] == 15, name
    assert all(test["n"] == 5 for test in results["paired_tests"])
    assert results["targets_per_user"] == 3
    assert "judged on 3 targets" in (run / "report.md").read_text()
    assert "judged on 3 targets" in (run / "report.html").read_text()
    assert json.loads((run / "data_summary.json").read_text())["settings"]["targets_per_user"] == 3


def test_sharded_judging_of_several_targets_merges_to_the_unsharded_rows(tmp_path, tiny_model):
    from lettingo.pipeline import merge_shards
    from lettingo.testing import comparable_rows

    plugins.load_entrypoints(only=["transformers", "trl"])
    overrides = tiny_overrides(tiny_model, train=6, test=2) + [
        "protocol.targets_per_user=2", "explore.sequences_per_call=2"]  # one user a call: samples as alone
    whole = api.compose(overrides + [f"cache.path={tmp_path / 'whole.sqlite'}"])
    api.run(whole, tmp_path / "whole", stages=["prepare", "explore", "evaluate"])
    sharded = overrides + [f"cache.path={tmp_path / 'sharded.sqlite'}"]  # generated anew, not cache hits
    for index in range(2):
        api.run(api.compose(sharded + ["shard.count=2", f"shard.index={index}"]), tmp_path / "sharded")
    merge_shards(api.compose(sharded), tmp_path / "sharded")
    for name in ("profiles.jsonl", "judgements.jsonl"):
        assert comparable_rows(tmp_path / "sharded" / name) == comparable_rows(tmp_path / "whole" / name), name
    assert len(read_jsonl(tmp_path / "whole" / "judgements.jsonl")) == 2 * len(read_jsonl(tmp_path / "whole" / "profiles.jsonl"))
