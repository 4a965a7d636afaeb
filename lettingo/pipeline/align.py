"""Stage 5: the aligner trains the generator on the preference pairs (DPO by default).

``align.rounds: R`` > 1 is iterative LettinGo: after each round the aligned generator writes new
profiles for the training users (on-policy), the recommender judges them, the pair selector builds
new pairs and training continues from the round's weights. Round k's files are in
``aligned/round-k/``; ``aligned/rounds.json`` holds the per-round metrics.

``align.heldout_users``: the pairs of that share of the training users never train; after each
round the aligner scores them (and a sample of the training pairs), which shows whether the policy
moved and whether what it learned carries over to other users (``lettingo.preference_check``).
"""

from __future__ import annotations

import json
import logging
import statistics

from omegaconf import OmegaConf

from lettingo import preference_check
from lettingo.cache import digest
from lettingo.errors import NoPairsError
from lettingo.models import resolve_model
from lettingo.pipeline.evaluate import judge_all, judgement_key
from lettingo.pipeline.explore import profile_key, prompts_per_call, sampling_params, write_profiles
from lettingo.pipeline.failures import FailureBudget
from lettingo.pipeline.pair import pairs_summary, write_pairs
from lettingo.run_data import load_run_data, load_tasks
from lettingo.store import JsonlAppender, read_jsonl, write_atomic, write_json
from lettingo.targets import mean_over_targets, primary_tasks
from lettingo.types import AlignedModel, Judgement, PreferencePair, Profile

log = logging.getLogger(__name__)

ROUNDS_FILE = "rounds.json"


def run(ctx, cfg, store) -> dict:
    pairs = [PreferencePair.from_dict(r) for r in read_jsonl(store.path("pairs.jsonl"))]
    aligner = ctx.build("aligner", cfg.aligner)
    no_training = not getattr(aligner, "trains", True)  # the component says whether it trains
    if not pairs and not no_training:
        raise NoPairsError(
            f"{store.path('pairs.jsonl')} holds no preference pairs: every user's profiles were judged "
            "alike. Use pair_selector=best_vs_worst, more profiles per user (explore.num_profiles), "
            "or more train users (protocol.train_users).")
    rounds = int(OmegaConf.select(cfg, "align.rounds", default=1) or 1)
    if rounds < 1:
        raise ValueError(f"align.rounds must be 1 or more, got {rounds}")
    if no_training and rounds > 1:
        log.warning("align.rounds=%d with aligner=%s: nothing trains, so one round is run", rounds,
                    cfg.aligner.name)
        rounds = 1
    out = store.path("aligned")
    base = resolve_model(cfg.llm.model)
    share = float(OmegaConf.select(cfg, "align.heldout_users", default=0.0) or 0.0)
    score_train = OmegaConf.select(cfg, "align.score_train_pairs", default=32)
    # per-round metrics, kept only when there are rounds to compare
    history = [_explore_metrics(1, "explore stage", store.path("judgements.jsonl"), pairs)] if rounds > 1 else []
    aligned: AlignedModel | None = None
    check: dict | None = None
    for number in range(1, rounds + 1):
        round_dir = out if rounds == 1 else out / f"round-{number}"
        if number > 1:  # on-policy: the last round's generator explores, its profiles make the pairs
            pairs = _explore_round(ctx, cfg, store, aligned, round_dir)
            history.append(_explore_metrics(number, f"round {number - 1}", round_dir / "judgements.jsonl", pairs))
            if not pairs:
                log.warning("round %d: the aligned generator's profiles gave no pairs; stopping after round %d",
                            number, number - 1)
                history[-1]["stopped"] = "no pairs"
                break
        train_pairs, heldout = preference_check.split_heldout(pairs, share if not no_training else 0.0,
                                                              int(cfg.seed))
        ctx.release_llms()  # free generation engines before training
        continue_from = aligned.adapter_path if aligned is not None else None
        start = aligned.model_path if aligned is not None and aligned.model_path else base
        aligned = aligner.train(train_pairs, start, round_dir,
                                **({"init_adapter": continue_from} if continue_from else {}))
        check = _check_pairs(cfg, store, aligner, aligned, start, continue_from, train_pairs, heldout, score_train,
                             round_dir)
        if history:
            history[-1].update(_training_metrics(aligned))
            if check:
                history[-1]["pair_check"] = check
    if check:
        aligned = AlignedModel.from_dict({**aligned.to_dict(), "metrics": {**aligned.metrics, "pair_check": check}})
    if rounds > 1:
        _merge_round_logs(out, len(history))
        write_json(out / ROUNDS_FILE, history)
        aligned = AlignedModel.from_dict({**aligned.to_dict(), "metrics": {**aligned.metrics, "rounds": history}})
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "aligned_model.json", aligned.to_dict())
    return {"aligner": aligned.aligner, "metrics": aligned.metrics}


def load_aligned(store) -> AlignedModel:
    return AlignedModel.from_dict(json.loads((store.path("aligned") / "aligned_model.json").read_text()))


def aligned_llm_cfg(cfg, aligned: AlignedModel):
    """The ``llm`` node of a whole fine-tuned model: the configured backend with its weights."""
    return OmegaConf.merge(cfg.llm, {"model": aligned.model_path})


def aligned_generator(ctx, cfg, aligned: AlignedModel):
    """The LLM that writes as the aligned model: the base engine (``cfg.llm``) with the adapter, or
    the whole fine-tuned model in the configured backend."""
    if aligned.model_path:
        return ctx.llm(aligned_llm_cfg(cfg, aligned))
    return ctx.llm(cfg.llm).with_adapter(aligned.adapter_path)


def _explore_round(ctx, cfg, store, aligned: AlignedModel, round_dir) -> list[PreferencePair]:
    """The aligned generator's profiles for every training user, judged and paired (resumable:
    the round's JSONL files keep what was done)."""
    data = load_run_data(ctx, cfg, store)
    tasks = load_tasks(store, "train")
    users = primary_tasks(tasks)
    params = sampling_params(cfg.explore, cfg.explore.num_profiles)
    stage = f"align: {round_dir.name}"
    with JsonlAppender(round_dir / "profiles.jsonl", profile_key) as out:
        failures = FailureBudget.for_stage(cfg, f"{stage} explore", len(users))
        write_profiles(ctx, aligned_generator(ctx, cfg, aligned), list(users.values()), data, int(cfg.seed),
                       "aligned", params, prompts_per_call(cfg.explore, params), out,
                       f"{stage}: writing profiles", failures, cfg.prompt)
        profiles = [Profile.from_dict(r) for r in out.rows]
    with JsonlAppender(round_dir / "judgements.jsonl", judgement_key) as out:
        judge_all(ctx, cfg, data, tasks, profiles, out, f"{stage}: judging profiles",
                  FailureBudget.for_stage(cfg, f"{stage} evaluate", len(profiles)))
        judgements = [Judgement.from_dict(r) for r in out.rows]
    selector = ctx.build("pair_selector", cfg.pair_selector)
    pairs = selector.select(users, profiles, mean_over_targets(tasks, judgements))
    write_pairs(round_dir / "pairs.jsonl", pairs)
    return pairs


def _check_pairs(cfg, store, aligner, aligned: AlignedModel, start: str, init_adapter, train_pairs, heldout,
                 score_train, round_dir) -> dict | None:
    """Held-out and training pairs scored by the trained policy against its starting point, summed
    up with user-clustered intervals and a verdict; kept in ``pair_check.json`` (a rerun reuses it)
    and ``pair_scores.jsonl`` (one row per pair)."""
    score = getattr(aligner, "score_pairs", None)  # an aligner that can: TRL's; `none` trains nothing
    if score is None or aligned.unchanged:
        return None
    seed, n_boot = int(cfg.seed), int(cfg.report.bootstrap_resamples)
    sampled = preference_check.sample_pairs(train_pairs, score_train, seed)
    key = digest({"aligned": aligned.to_dict(), "start": start, "init": init_adapter, "n_boot": n_boot,
                  "pairs": [[p.chosen_id, p.rejected_id, p.task_id] for p in (*sampled, *heldout)]})
    path = round_dir / "pair_check.json"
    if path.exists():
        recorded = json.loads(path.read_text())
        if recorded.get("key") == key:
            return recorded["check"]
    rows = score([*sampled, *heldout], aligned, start, init_adapter)  # one load of the two models
    rows = [{**r, "split": "train" if i < len(sampled) else "heldout"} for i, r in enumerate(rows)]
    write_atomic(round_dir / "pair_scores.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    train = preference_check.summarize_scores([r for r in rows if r["split"] == "train"], n_boot, seed)
    held = preference_check.summarize_scores([r for r in rows if r["split"] == "heldout"], n_boot, seed)
    # several explore generators: did the policy learn a writer's style? (empty with one writer)
    writers = preference_check.between_writers([r for r in rows if r["split"] == "heldout"],
                                               _writers([store.path("profiles.jsonl"), round_dir / "profiles.jsonl"]))
    check = {"train": train, "heldout": held, "verdict": preference_check.verdict(train, held, writers),
             "training_pairs": len(train_pairs), "heldout_pairs": len(heldout)}
    if writers:
        check["heldout_between_writers"] = writers
    write_json(path, {"key": key, "check": check})
    log.info("%s", check["verdict"])
    return check


def _writers(paths) -> dict[str, str]:
    """Profile id -> the generator that wrote it (the explore stage's and a round's profiles)."""
    return {Profile.from_dict(r).profile_id: r["generator"] for path in paths if path.exists()
            for r in read_jsonl(path)}


def _explore_metrics(number: int, explored_by: str, judgements_path, pairs: list[PreferencePair]) -> dict:
    """How well the round's explored profiles served the recommender, and the pairs they gave."""
    judged = [Judgement.from_dict(r) for r in read_jsonl(judgements_path)]
    valid = [j for j in judged if j.valid]
    return {
        "round": number,
        "explored_by": explored_by,
        "profiles_judged": len(judged),
        "explore_accuracy": statistics.fmean(j.correct for j in valid) if valid else None,
        "explore_mean_score": statistics.fmean(j.score for j in valid) if valid else None,
        **pairs_summary(pairs),
    }


def _training_metrics(aligned: AlignedModel) -> dict:
    keys = ("train_loss", "reward_margin", "reward_accuracy", "steps", "train_seconds")
    return {key: aligned.metrics[key] for key in keys if key in aligned.metrics}


def _merge_round_logs(out, rounds: int) -> None:
    """One training log for the report: every round's steps, each row saying its round."""
    rows = []
    for number in range(1, rounds + 1):
        for row in read_jsonl(out / f"round-{number}" / "training_log.jsonl"):
            rows.append({**row, "round": number})
    write_atomic(out / "training_log.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
