"""Stage 6: held-out users get profiles from the base and the aligned generator; all are judged.

The no-profile row (the paper's 10H: recent window only) is judged on the same users.
"""

from __future__ import annotations

from lettingo.pipeline.align import load_aligned
from lettingo.pipeline.evaluate import judge_all, judgement_key
from lettingo.pipeline.explore import profile_key, sampling_params, write_profiles
from lettingo.pipeline.prepare import load_items, load_tasks
from lettingo.store import JsonlAppender
from lettingo.types import Profile


def run(ctx, store) -> dict:
    load_items(ctx, store)
    tasks = load_tasks(store, "test")
    aligned = load_aligned(store)
    base = ctx.llm(ctx.cfg.llm)
    generators = {"base": base, "aligned": base.with_adapter(aligned.adapter_path)}
    params = sampling_params(ctx.cfg.test, ctx.cfg.test.num_profiles)
    with JsonlAppender(store.path("test_profiles.jsonl"), profile_key) as out:
        for name, llm in generators.items():
            write_profiles(ctx, llm, list(tasks.values()), name, params, out, f"test: {name} profiles")
        profiles = [Profile.from_dict(r) for r in out.rows]
    units = [(task_id, None) for task_id in tasks] if ctx.cfg.test.no_profile_baseline else []
    with JsonlAppender(store.path("test_judgements.jsonl"), judgement_key) as out:
        judge_all(ctx, tasks, units + profiles, out, "test: judging")
        judged = len(out.rows)
    return {"test_profiles": len(profiles), "test_judgements": judged}
