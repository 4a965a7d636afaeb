"""The whole plan checked before the first LLM request: a run that cannot finish fails before it pays.

Run once the data is prepared (the prompts' lengths need the users) and before explore:

- **The aligner can train the generator, and the test stage can apply what it makes.** An LLM
  backend whose factory (or class) says ``trainable = False`` serves an API model: no weights here
  to train, no engine to load an adapter into.
- **Every prompt fits the model's context.** Local backends cut a prompt longer than
  ``max_input_tokens`` from the front (the oldest history goes, silently but for a log line); the
  longest profile prompt (the run's, each explore generator's, each baseline's) and the longest
  judge request (with a stand-in profile of ``max_new_tokens`` words) are counted with the
  model's own tokenizer (``lettingo_token_counter``).
"""

from __future__ import annotations

from typing import Any

from lettingo.errors import PlanError
from lettingo.pipeline.dry_run import stand_in_profiles, token_counters
from lettingo.pipeline.explore import explore_generators
from lettingo.pipeline.test import baseline_prompts
from lettingo.run_data import evaluated_split, load_run_data, load_tasks


def check_plan(ctx, cfg, store) -> None:
    """Raise :class:`PlanError` naming every problem found and the keys that fix it."""
    problems = _training_problems(ctx, cfg) + _length_problems(ctx, cfg, store)
    if problems:
        raise PlanError("the run cannot finish as configured (found before any LLM request, so nothing "
                        "was paid for):\n- " + "\n- ".join(problems))


def _training_problems(ctx, cfg) -> list[str]:
    if not getattr(ctx.build("aligner", cfg.aligner), "trains", True):
        return []
    if getattr(ctx.plugins.factory("llm", cfg.llm.name), "trainable", True):
        return []
    return [f"aligner={cfg.aligner.name} trains the generator's weights, but llm={cfg.llm.name} serves "
            f"{cfg.llm.get('model')!r} through an API: there is nothing here to train, and the test stage "
            f"could not load the result. Use a local backend with the model's weights (llm=transformers or "
            f"llm=vllm, llm.model=<a Hub id or path>), or aligner=none to compare prompts without training"]


def _length_problems(ctx, cfg, store) -> list[str]:
    data = load_run_data(ctx, cfg, store)
    tasks = load_tasks(store)
    writers = [t for t in tasks.values() if t.profile_task is None
               and t.split in ("train", evaluated_split(cfg))]
    counter = token_counters(ctx)
    problems = []

    def check(llm_cfg: Any, what: str, prompts, keys: str) -> None:
        limit = llm_cfg.get("max_input_tokens")
        if not limit or not prompts:
            return
        tokens = counter(llm_cfg)
        longest, task_id = max((tokens(messages), task_id) for task_id, messages in prompts)
        if longest > int(limit):
            problems.append(f"{what} of task {task_id} is {longest} tokens, over max_input_tokens={limit} of "
                            f"{llm_cfg.name}:{llm_cfg.get('model')}: the model would see only its last {limit} "
                            f"(the oldest history cut). Raise {keys}.max_input_tokens, or shorten the "
                            f"prompt (protocol.profile_window, prompt.max_items)")

    main = ctx.build("prompt", cfg.prompt)
    for generator in explore_generators(cfg):
        prompt = ctx.build("prompt", generator.prompt) if generator.prompt is not None else main
        if getattr(prompt, "needs_llm", True):
            check(generator.llm, f"explore generator {generator.name!r}'s profile prompt",
                  [(t.task_id, prompt.messages(t, data)) for t in writers if t.split == "train"], "llm")
    for prompt_cfg in [cfg.prompt, *baseline_prompts(cfg)]:
        prompt = ctx.build("prompt", prompt_cfg)
        if getattr(prompt, "needs_llm", True):
            check(cfg.llm, f"the {prompt_cfg.name} profile prompt",
                  [(t.task_id, prompt.messages(t, data)) for t in writers], "llm")
    recommender = ctx.build("recommender", cfg.recommender)
    plan = getattr(recommender, "request_plan", None)
    judge_llm = cfg.recommender.get("llm")
    if plan is not None and judge_llm is not None:
        judged = [t for t in tasks.values() if t.split in ("train", evaluated_split(cfg))]
        words = max(cfg.explore.max_new_tokens, cfg.test.max_new_tokens)
        check(judge_llm, "the judge's request", [
            (t.task_id, messages) for t in judged for messages, _ in plan([t], stand_in_profiles([t], words), data)],
            "recommender.llm")
    return problems
