"""Stage 2: one or several generators write diverse profiles per training user.

``explore.generators`` lists the generators (the paper explores with several LLMs at once); when it
is empty, the one generator is ``llm`` with the ``explore`` sampling settings, named ``base``.

A generator may be given its own ``prompt`` (say ``palr``, which asks for preference keywords with
their supporting items). It writes with that prompt, but its profiles are recorded as answers to the
run's prompt, the one the aligned writer sees: pairs across generators then teach the aligned writer
what the better-instructed writer does where the judge finds it helps (context distillation), as
pairs from a stronger LLM do in the paper.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

from omegaconf import DictConfig, OmegaConf

from lettingo.errors import LettingoError
from lettingo.ledger import model_label
from lettingo.llm import SamplingParams, failed
from lettingo.pipeline.failures import FailureBudget
from lettingo.pipeline.shards import Shard
from lettingo.progress import progress
from lettingo.run_data import RunData, load_run_data, load_tasks
from lettingo.store import JsonlAppender
from lettingo.targets import primary_tasks
from lettingo.types import Profile, UserTask


class GeneratorConfigError(LettingoError, ValueError):
    """An ``explore.generators`` entry is malformed; the message names it."""


def task_seed(seed: int, task_id: str, generator: str) -> int:
    """A per-task seed, so a task's samples don't depend on batching or on which tasks ran before."""
    return int(hashlib.sha256(f"{seed}/{task_id}/{generator}".encode()).hexdigest()[:8], 16)


def profile_key(row: dict) -> str:
    return f"{row['task_id']}/{row['generator']}/{row['prompt_style']}/{row['sample']}"


def sampling_params(section, n: int) -> SamplingParams:
    return SamplingParams(temperature=section.temperature, top_p=section.top_p,
                          max_new_tokens=section.max_new_tokens, n=n)


def prompts_per_call(section, params: SamplingParams) -> int:
    """Users handed to the backend at once: as many as fill ``sequences_per_call`` sequences, so a
    stage sampling one profile per user batches as well as one sampling several."""
    sequences = section.get("sequences_per_call", 16)  # .get: older run directories lack it
    return max(1, int(sequences) // max(1, params.n))


SAMPLING_KEYS = ("num_profiles", "temperature", "top_p", "max_new_tokens")


class Generator(NamedTuple):
    name: str
    llm: Any                   # an llm option node
    params: SamplingParams
    prompt: Any = None         # its own prompt option node; None: the run's prompt


def explore_generators(cfg) -> list[Generator]:
    """Each generator of ``explore.generators`` (or ``llm`` alone, as ``base``), checked before any work."""
    entries = cfg.explore.get("generators") or []
    if not entries:
        return [Generator("base", cfg.llm, sampling_params(cfg.explore, cfg.explore.num_profiles))]
    generators, names = [], set()
    for index, entry in enumerate(entries):
        where = f"explore.generators[{index}]"
        if not isinstance(entry, DictConfig) or "llm" not in entry or "name" not in (entry.llm or {}):
            raise GeneratorConfigError(
                f"{where} needs an `llm` node with a `name` (an llm option), e.g. "
                "{llm: ${llm}, num_profiles: 4} or {llm: {name: litellm, model: gpt-4o-mini}, num_profiles: 6}"
            )
        unknown = sorted(set(entry) - {"name", "llm", "prompt", *SAMPLING_KEYS})
        if unknown:
            raise GeneratorConfigError(
                f"{where}: unknown key(s) {unknown}; known: name, llm, prompt, {', '.join(SAMPLING_KEYS)}")
        prompt = entry.get("prompt")
        if isinstance(prompt, str):
            prompt = OmegaConf.create({"name": prompt})
        elif prompt is not None and (not isinstance(prompt, DictConfig) or "name" not in prompt):
            raise GeneratorConfigError(f"{where}: `prompt` is a prompt option's name (e.g. palr) or a node with a `name`")
        name = str(entry.get("name") or f"{entry.llm.name}:{entry.llm.get('model', index)}")
        if name in names or name == "aligned":
            raise GeneratorConfigError(f"{where}: the generator name {name!r} is taken; give each a distinct `name`")
        names.add(name)
        section = OmegaConf.merge(
            {k: cfg.explore[k] for k in SAMPLING_KEYS}, {k: entry[k] for k in SAMPLING_KEYS if k in entry}
        )
        generators.append(Generator(name, entry.llm, sampling_params(section, section.num_profiles), prompt))
    return generators


def write_profiles(ctx, llm, tasks: list[UserTask], data: RunData, seed: int, generator: str,
                   params: SamplingParams, per_call: int, out: JsonlAppender, description: str,
                   failures: FailureBudget, prompt_cfg, seed_name: str | None = None, answers_cfg=None) -> int:
    """Profiles for every task not yet complete in ``out``; a task's samples are written together,
    and not at all when its request failed (a rerun asks again). ``prompt_cfg``: the prompt that
    writes them; one with ``needs_llm = False`` (``raw_history``) writes its profile itself.
    ``answers_cfg``: the prompt the profiles are recorded as answering (their ``prompt_messages``,
    what pairs train on); default: the one that wrote them.
    Seeds come from (run ``seed``, task, ``seed_name`` or the generator's name): generators given one
    ``seed_name`` draw the same random numbers for a user (common random numbers)."""
    prompt = ctx.build("prompt", prompt_cfg)
    answers = ctx.build("prompt", answers_cfg) if answers_cfg is not None else prompt
    style = prompt_cfg.name

    def complete(task):
        return all(f"{task.task_id}/{generator}/{style}/{i}" in out for i in range(params.n))

    todo = [t for t in tasks if not complete(t)]
    if not getattr(prompt, "needs_llm", True):  # no model: the same text for every sample
        out.append(Profile(t.task_id, generator, style, i, prompt.profile_text(t, data),
                           answers.messages(t, data), {}, "none").to_dict()
                   for t in todo for i in range(params.n))
        return len(todo)
    model = model_label(llm.identity())
    with progress(description, total=len(tasks), done=len(tasks) - len(todo)) as advance:
        for start in range(0, len(todo), per_call):
            batch = todo[start:start + per_call]
            messages = [prompt.messages(t, data) for t in batch]
            seeds = [task_seed(seed, t.task_id, seed_name or generator) for t in batch]
            for task, msgs, gens in zip(batch, messages, llm.generate(messages, params, seeds)):
                advance()
                error = next((g.usage["error"] for g in gens if failed(g)), None)
                if error is not None:
                    failures.record(f"task {task.task_id} ({generator})", error)
                    continue
                if answers is not prompt:
                    msgs = answers.messages(task, data)
                out.append(Profile(task.task_id, generator, style, i, g.text, msgs, g.usage, model).to_dict()
                           for i, g in enumerate(gens))
    return len(todo)


def run(ctx, cfg, store) -> dict:
    data = load_run_data(ctx, cfg, store)
    shard = Shard.of(cfg)
    tasks = [t for t in primary_tasks(load_tasks(store, "train")).values() if shard.owns(t.task_id)]
    generators = explore_generators(cfg)
    failures = FailureBudget.for_stage(cfg, "explore", len(tasks) * len(generators))
    written = {}
    # engines later stages use again stay pooled; others are closed once their generator is done
    keep = {ctx.llm_key(c) for c in (cfg.llm, cfg.recommender.get("llm")) if c is not None}
    with JsonlAppender(store.path(shard.file("profiles.jsonl")), profile_key) as out:
        for name, llm_cfg, params, prompt_cfg in generators:
            with ctx.ledger.labelled(name):
                written[name] = write_profiles(
                    ctx, ctx.llm(llm_cfg), tasks, data, int(cfg.seed), name, params,
                    prompts_per_call(cfg.explore, params), out,
                    f"explore: {name} writing profiles" if len(generators) > 1 else "explore: writing profiles",
                    failures, prompt_cfg=prompt_cfg or cfg.prompt,
                    answers_cfg=cfg.prompt if prompt_cfg is not None else None,
                )
            if ctx.llm_key(llm_cfg) not in keep:
                ctx.release_llm(llm_cfg)  # one extra model in memory at a time (GPU engines, big models)
        total = len(out.rows)
    return {"profiles": total, "tasks_generated_now": written, **failures.summary()}
