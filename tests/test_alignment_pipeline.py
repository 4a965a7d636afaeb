"""Alignment choices through the whole loop on the tiny model: iterative rounds, no alignment,
full fine-tuning, and SFT."""

from __future__ import annotations

import json

import pytest

from lettingo import api, plugins
from lettingo.store import read_jsonl
from lettingo.testing import tiny_overrides

pytestmark = pytest.mark.slow


def run(tmp_path, tiny_model, *overrides, train=6, test=4):
    plugins.load_entrypoints(only=["transformers", "trl"])
    tiny = tiny_overrides(tiny_model, train=train, test=test)
    if "aligner=none" in overrides:  # the none option has no training keys to set
        tiny = [o for o in tiny if not o.startswith("aligner.")]
    cfg = api.compose(tiny + [f"cache.path={tmp_path / 'calls.sqlite'}", "report.embedding_model=null", *overrides])
    run_dir = tmp_path / "run"
    return run_dir, api.run(cfg, run_dir)


def test_two_rounds_explore_on_policy_and_continue_training(tmp_path, tiny_model):
    run_dir, results = run(tmp_path, tiny_model, "align.rounds=2", "explore.temperature=1.5")
    aligned_dir = run_dir / "aligned"
    for number in (1, 2):
        assert (aligned_dir / f"round-{number}" / "adapter" / "adapter_config.json").exists()
    # round 2's pairs come from the round-1 policy's own profiles of the same training users
    profiles = read_jsonl(aligned_dir / "round-2" / "profiles.jsonl")
    assert len(profiles) == 6 * 2 and {p["generator"] for p in profiles} == {"aligned"}
    assert len(read_jsonl(aligned_dir / "round-2" / "judgements.jsonl")) == 6 * 2
    round_pairs = read_jsonl(aligned_dir / "round-2" / "pairs.jsonl")
    assert round_pairs and all(p["chosen_id"].split("/")[1] == "aligned" for p in round_pairs)

    rounds = json.loads((aligned_dir / "rounds.json").read_text())
    assert [r["round"] for r in rounds] == [1, 2]
    assert rounds[0]["explored_by"] == "explore stage" and rounds[1]["explored_by"] == "round 1"
    assert rounds[1]["pairs"] == len(round_pairs) and rounds[1]["profiles_judged"] == 12
    assert all(r["steps"] > 0 and "train_loss" in r and 0 <= r["explore_accuracy"] <= 1 for r in rounds)
    log = read_jsonl(aligned_dir / "training_log.jsonl")
    assert {r["round"] for r in log} == {1, 2}

    final = json.loads((aligned_dir / "aligned_model.json").read_text())
    assert final["adapter_path"] == str(aligned_dir / "round-2" / "adapter")
    assert [r["round"] for r in final["metrics"]["rounds"]] == [1, 2]
    test_profiles = read_jsonl(run_dir / "test_profiles.jsonl")
    assert {p["generator"] for p in test_profiles} == {"base", "aligned"}
    assert "LettinGo (aligned)" in results["methods"]
    report = (run_dir / "report.md").read_text()
    assert "### Rounds (iterative alignment)" in report and "| 2 | round 1 |" in report
    assert 'id="rounds-table"' in (run_dir / "report.html").read_text()


def test_no_alignment_judges_the_base_profiles_only(tmp_path, tiny_model):
    run_dir, results = run(tmp_path, tiny_model, "aligner=none")
    aligned = json.loads((run_dir / "aligned" / "aligned_model.json").read_text())
    assert aligned["aligner"] == "none" and aligned["adapter_path"] is None and aligned["model_path"] is None
    assert read_jsonl(run_dir / "pairs.jsonl")  # pairs are still built and kept
    assert {p["generator"] for p in read_jsonl(run_dir / "test_profiles.jsonl")} == {"base"}
    assert "base profiles" in results["methods"] and "LettinGo (aligned)" not in results["methods"]


class FrozenAligner:
    """A third-party aligner that trains nothing, and says so (not by being named "none")."""

    trains = False

    def __init__(self, cfg, ctx):
        pass

    def train(self, pairs, base_model, output_dir, init_adapter=None):
        from lettingo.types import AlignedModel

        return AlignedModel(base=base_model, adapter_path=None, aligner="frozen", metrics={"pairs": len(pairs)})


class FrozenPlugin:
    @plugins.hookspecs.hookimpl
    def lettingo_register_aligners(self, register):
        register("frozen", FrozenAligner)


def test_the_align_stage_asks_the_aligner_whether_it_trains(tmp_path, tiny_model):
    from omegaconf import OmegaConf

    from lettingo.components import Context
    from lettingo.pipeline import align
    from lettingo.store import RunStore
    from lettingo.testing import plugin_registered

    plugins.load_entrypoints(only=["transformers", "trl"])
    cfg = api.compose(tiny_overrides(tiny_model) + ["align.rounds=2"])
    cfg.aligner = OmegaConf.create({"name": "frozen"})
    store = RunStore(tmp_path)
    (tmp_path / "pairs.jsonl").write_text("")  # no pairs: fine for an aligner that trains nothing
    with plugin_registered(FrozenPlugin(), "frozen"):
        summary = align.run(Context(tmp_path, cache=None), cfg, store)
    assert summary["aligner"] == "frozen" and "rounds" not in summary["metrics"]  # one round, nothing held out
    assert "pair_check" not in summary["metrics"]


def test_full_finetuning_writes_the_aligned_profiles_with_the_whole_model(tmp_path, tiny_model, monkeypatch):
    # never two engines at once: the base engine is released before the fine-tuned model loads (on
    # a GPU each vLLM engine reserves its gpu_memory_utilization share)
    from lettingo_transformers import backend

    live, peak = [], [0]
    load, release = backend._Engine.__init__, backend._Engine.release

    def counted_load(engine, model, *args, **kwargs):
        load(engine, model, *args, **kwargs)
        live.append(engine)
        peak[0] = max(peak[0], len(live))

    def counted_release(engine):
        if engine in live:
            live.remove(engine)
        release(engine)

    monkeypatch.setattr(backend._Engine, "__init__", counted_load)
    monkeypatch.setattr(backend._Engine, "release", counted_release)
    run_dir, results = run(tmp_path, tiny_model, "aligner.lora=null", "test.baseline_prompts=[palr]")
    assert peak[0] == 1
    aligned = json.loads((run_dir / "aligned" / "aligned_model.json").read_text())
    assert aligned["adapter_path"] is None and (run_dir / "aligned").joinpath(aligned["model_path"]).exists()
    aligned_profiles = [p for p in read_jsonl(run_dir / "test_profiles.jsonl") if p["generator"] == "aligned"]
    assert len(aligned_profiles) == 4
    assert {"LettinGo (aligned)", "palr profiles (base model)"} <= set(results["methods"])


def test_sft_aligner_runs_the_whole_loop(tmp_path, tiny_model):
    run_dir, results = run(tmp_path, tiny_model, "aligner=sft")
    aligned = json.loads((run_dir / "aligned" / "aligned_model.json").read_text())
    assert aligned["aligner"] == "sft" and (run_dir / "aligned" / "adapter" / "adapter_config.json").exists()
    assert "LettinGo (aligned)" in results["methods"]
    # the model card describes the run's data, read from the run directory's manifest
    card = (run_dir / "aligned" / "adapter" / "README.md").read_text()
    assert "6 training users" in card and "no lettingo run recorded" not in card


def test_every_run_shows_whether_alignment_learned_and_the_best_of_n_ceiling(tmp_path, tiny_model):
    # learning rate 0: LoRA's B starts at zero and stays there, so the aligned writer is the base
    # writer; with common random numbers its profiles must be the base profiles, word for word
    # tuned on validation users: the test stage evaluates them, the test users stay untouched
    run_dir, results = run(tmp_path, tiny_model, "aligner.learning_rate=0", "test.num_profiles=2",
                           "align.heldout_users=0.5", "align.score_train_pairs=2", "protocol.validation_users=3",
                           "test.split=validation")
    check = results["pair_check"]
    assert check["heldout"]["pairs"] >= 2 and check["train"]["pairs"] == 2
    assert check["heldout_pairs"] + check["training_pairs"] == len(read_jsonl(run_dir / "pairs.jsonl"))
    assert check["heldout"]["reward_accuracy"]["value"] == 0.5  # every reward exactly 0: ties count half
    assert check["heldout"]["reward_margin"]["value"] == 0.0
    assert check["verdict"].startswith("Training did not move the policy")
    scores = read_jsonl(run_dir / "aligned" / "pair_scores.jsonl")
    held_users = {r["user_id"] for r in scores if r["split"] == "heldout"}
    assert held_users and not held_users & {r["user_id"] for r in scores if r["split"] == "train"}

    profiles = {(p["task_id"], p["generator"], p["sample"]): p["text"] for p in read_jsonl(run_dir / "test_profiles.jsonl")}
    assert len(profiles) == 3 * 2 * 2 and all(t.startswith("validation-") for t, _, _ in profiles)
    assert results["split"] == "validation"
    assert all(profiles[(t, "aligned", s)] == text for (t, g, s), text in profiles.items() if g == "base")
    methods = results["methods"]
    base, aligned = methods["base profiles"], methods["LettinGo (aligned)"]
    assert base["n"] == 3 and base["profiles"] == 6 and base["samples_per_user"] == 2
    assert aligned["ndcg@10"] == base["ndcg@10"]
    oracle = methods["base profiles: best of 2 (oracle ceiling, not a method)"]
    assert oracle["ndcg@10"]["value"] >= base["ndcg@10"]["value"] and oracle["n"] == 3
    paired = [t for t in results["paired_tests"] if (t["a"], t["b"]) == ("LettinGo (aligned)", "base profiles")]
    assert paired and all(t["difference"] == 0 and t["p_value"] == 1.0 for t in paired)

    report = (run_dir / "report.md").read_text()
    assert "### Did alignment learn? (held-out pairs)" in report and check["verdict"] in report
    assert "| held-out users |" in report and "best of 2 (oracle ceiling, not a method)" in report
    assert "## Results on held-out users (validation split)" in report
    html = (run_dir / "report.html").read_text()
    assert 'id="pair-check"' in html and 'class="oracle"' in html
