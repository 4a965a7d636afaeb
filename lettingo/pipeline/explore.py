"""Stage 2: the generator writes several diverse profiles per training user."""

from __future__ import annotations

import hashlib

from lettingo.llm import SamplingParams
from lettingo.pipeline.prepare import load_items, load_tasks
from lettingo.progress import progress
from lettingo.store import JsonlAppender
from lettingo.types import Profile, UserTask


def task_seed(seed: int, task_id: str, generator: str) -> int:
    """A per-task seed, so a task's samples don't depend on batching or on which tasks ran before."""
    return int(hashlib.sha256(f"{seed}/{task_id}/{generator}".encode()).hexdigest()[:8], 16)


def profile_key(row: dict) -> str:
    return f"{row['task_id']}/{row['generator']}/{row['prompt_style']}/{row['sample']}"


def sampling_params(section, n: int) -> SamplingParams:
    return SamplingParams(temperature=section.temperature, top_p=section.top_p,
                          max_new_tokens=section.max_new_tokens, n=n)


def write_profiles(ctx, llm, tasks: list[UserTask], generator: str, params: SamplingParams,
                   out: JsonlAppender, description: str) -> int:
    """Profiles for every task not yet complete in ``out``; a task's samples are written together."""
    prompt = ctx.build("prompt", ctx.cfg.prompt)
    style = ctx.cfg.prompt.name

    def complete(task):
        return all(f"{task.task_id}/{generator}/{style}/{i}" in out for i in range(params.n))

    todo = [t for t in tasks if not complete(t)]
    per_call = max(1, int(ctx.cfg.explore.prompts_per_call))
    with progress(description, total=len(tasks), done=len(tasks) - len(todo)) as advance:
        for start in range(0, len(todo), per_call):
            batch = todo[start:start + per_call]
            messages = [prompt.messages(t, ctx.items) for t in batch]
            seeds = [task_seed(ctx.cfg.seed, t.task_id, generator) for t in batch]
            for task, msgs, gens in zip(batch, messages, llm.generate(messages, params, seeds)):
                out.append(Profile(task.task_id, generator, style, i, g.text, msgs, g.usage).to_dict()
                           for i, g in enumerate(gens))
                advance()
    return len(todo)


def run(ctx, store) -> dict:
    load_items(ctx, store)
    tasks = list(load_tasks(store, "train").values())
    llm = ctx.llm(ctx.cfg.llm)
    params = sampling_params(ctx.cfg.explore, ctx.cfg.explore.num_profiles)
    with JsonlAppender(store.path("profiles.jsonl"), profile_key) as out:
        written = write_profiles(ctx, llm, tasks, "base", params, out, "explore: writing profiles")
        total = len(out.rows)
    return {"profiles": total, "tasks_generated_now": written}
