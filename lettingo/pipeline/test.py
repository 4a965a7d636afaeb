"""Stage 6: held-out users get profiles from the base and the aligned generator; all are judged.

``test.num_profiles`` samples per user and generator; base and aligned draw them with the same
seeds (common random numbers), so their paired difference measures the weights, not the dice.

The no-profile row (the paper's 10H: recent window only) is judged on the same users, and so are
the profiles of ``test.baseline_prompts`` (palr, rlmrec, kar, raw_history), written by the base
generator: every table gets the paper's baseline rows from the same users and the same judge.
"""

from __future__ import annotations

from omegaconf import OmegaConf

from lettingo.pipeline.align import aligned_generator, aligned_llm_cfg, load_aligned
from lettingo.pipeline.evaluate import judge_all, judgement_key
from lettingo.pipeline.explore import profile_key, prompts_per_call, sampling_params, write_profiles
from lettingo.pipeline.failures import FailureBudget
from lettingo.pipeline.shards import Shard
from lettingo.run_data import evaluated_split, load_run_data, load_tasks
from lettingo.store import JsonlAppender
from lettingo.targets import primary_tasks
from lettingo.types import Profile


def baseline_prompts(cfg) -> list:
    """``test.baseline_prompts`` as prompt config nodes (a bare name is ``{name: <it>}``); run
    directories made before the key existed have none."""
    return [OmegaConf.create({"name": e} if isinstance(e, str) else e) for e in cfg.test.get("baseline_prompts") or []]


def run(ctx, cfg, store) -> dict:
    data = load_run_data(ctx, cfg, store)
    shard = Shard.of(cfg)
    tasks = {k: t for k, t in load_tasks(store, evaluated_split(cfg)).items() if shard.owns(t.primary_task_id)}
    users = list(primary_tasks(tasks).values())  # profiles are written once per user, judged on every target
    aligned = load_aligned(store)
    names = ["base"] if aligned.unchanged else ["base", "aligned"]  # aligner `none`: base profiles are the aligned ones
    params = sampling_params(cfg.test, cfg.test.num_profiles)
    per_call = prompts_per_call(cfg.test, params)
    seed = int(cfg.seed)
    baselines = baseline_prompts(cfg)
    failures = FailureBudget.for_stage(cfg, "test", len(users) * (len(names) + len(baselines)))
    with JsonlAppender(store.path(shard.file("test_profiles.jsonl")), profile_key) as out:
        for name in names:  # one seed per user and sample for both: paired samples
            if name == "aligned" and aligned.model_path:  # a whole second model: never two engines at
                ctx.release_llm(cfg.llm)                  # once (on a GPU each reserves its memory share)
            llm = ctx.llm(cfg.llm) if name == "base" else aligned_generator(ctx, cfg, aligned)
            write_profiles(ctx, llm, users, data, seed, name, params, per_call, out,
                           f"test: {name} profiles", failures, cfg.prompt, seed_name="base")
        if aligned.model_path:
            ctx.release_llm(aligned_llm_cfg(cfg, aligned))  # the base engine (baselines, judge) loads again
        for prompt_cfg in baselines:  # the paper's baseline prompts, written by the base generator
            write_profiles(ctx, ctx.llm(cfg.llm), users, data, seed, "base", params, per_call, out,
                           f"test: {prompt_cfg.name} profiles", failures, prompt_cfg)
        profiles = [Profile.from_dict(r) for r in out.rows]
    units = [(task.task_id, None) for task in users] if cfg.test.no_profile_baseline else []
    targets_per_user = len(tasks) // max(1, len(users))
    judge_failures = FailureBudget.for_stage(cfg, "test: judging", (len(units) + len(profiles)) * targets_per_user)
    with JsonlAppender(store.path(shard.file("test_judgements.jsonl")), judgement_key) as out:
        judge_all(ctx, cfg, data, tasks, units + profiles, out, "test: judging", judge_failures)
        judged = len(out.rows)
    return {"test_profiles": len(profiles), "test_judgements": judged,
            **failures.summary(), **{f"judging_{k}": v for k, v in judge_failures.summary().items()}}
