"""``dry_run=true``: how many LLM requests a run would make and what they would cost, making none.

It runs ``prepare`` (data only, no model) to know the users, renders the real profile prompts and
counts their tokens with each model's own tokenizer (``lettingo_token_counter``: the chat template
of a local model, LiteLLM's counter for an API one; 4 characters a token where no plugin counts),
and bounds answers by ``max_new_tokens``. The recommender says which requests
it sends (``request_plan``: ``llm_ranker`` makes ``bootstrap`` passes a task, a judge in ``text``
mode answers in ``max_new_tokens``), each with a stand-in profile of ``max_new_tokens`` words.
The aligned writer's test requests are counted only when the aligner trains. Prices come from the plugins
(``lettingo_llm_price``; LiteLLM's price map for API models, 0 for local ones). Counts already in
the run directory or the call cache are not subtracted: this is the cost of a run from scratch.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from lettingo.pipeline.explore import explore_generators, sampling_params
from lettingo.pipeline.test import baseline_prompts
from lettingo.run_data import RunData, evaluated_split, load_run_data, load_tasks
from lettingo.types import Profile, UserTask

CHARS_PER_TOKEN = 4  # a rough rule for English text; real tokenizers differ by model


def char_tokens(messages: list[dict[str, str]]) -> int:
    """The fallback count for a model no plugin counts for: 4 characters a token, 4 a message."""
    return sum(len(m["content"]) for m in messages) // CHARS_PER_TOKEN + 4 * len(messages)


def token_counters(ctx):
    """``llm_cfg -> (messages -> tokens)``: the model's own count from its plugin
    (``lettingo_token_counter``: its tokenizer and chat template, or LiteLLM's counter), else
    :func:`char_tokens`; one counter a model."""
    counters: dict[str, Any] = {}

    def counter(llm_cfg):
        key = ctx.llm_key(llm_cfg)
        if key not in counters:
            counters[key] = ctx.plugins.token_counter(OmegaConf.to_container(llm_cfg, resolve=True)) or char_tokens
        return counters[key]

    return counter


def estimate(ctx, cfg, store) -> list[dict[str, Any]]:
    """One row per (stage, model): requests, prompt tokens, completion tokens (upper bound), cost."""
    data = load_run_data(ctx, cfg, store)
    tasks = load_tasks(store)
    train = [t for t in tasks.values() if t.split == "train"]
    test = [t for t in tasks.values() if t.split == evaluated_split(cfg)]
    prompt = ctx.build("prompt", cfg.prompt)
    recommender = ctx.build("recommender", cfg.recommender)
    judge_llm = cfg.recommender.get("llm")
    counter = token_counters(ctx)
    rows = []

    def add(stage: str, llm_cfg, requests: int, prompt_tokens: int, completion_tokens: int,
            suffix: str = "") -> None:
        rows.append({"stage": stage, "model": _label(llm_cfg) + suffix, "requests": requests,
                     "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                     "cost_usd": _cost(ctx, llm_cfg, prompt_tokens, completion_tokens)})

    # profiles are written once per user (primary tasks) and judged on each of the user's targets
    writers, test_writers = ([t for t in split if t.profile_task is None] for split in (train, test))
    explored = 0
    for generator in explore_generators(cfg):
        explored += generator.params.n  # every profile is judged, whoever wrote it
        own = ctx.build("prompt", generator.prompt) if generator.prompt is not None else None
        if own is not None and not getattr(own, "needs_llm", True):
            continue  # raw_history writes its profiles itself: no request
        tokens = counter(generator.llm)
        add("explore", generator.llm, len(writers), sum(tokens((own or prompt).messages(t, data)) for t in writers),
            len(writers) * generator.params.n * generator.params.max_new_tokens)
    if judge_llm is not None:
        requests, prompt_tokens, completion_tokens = _judge_plan(recommender, train, data, counter(judge_llm),
                                                                 cfg.explore.max_new_tokens)
        add("evaluate", judge_llm, requests * explored, prompt_tokens * explored, completion_tokens * explored)
    test_params = sampling_params(cfg.test, cfg.test.num_profiles)
    trains = getattr(ctx.build("aligner", cfg.aligner), "trains", True)  # `none`: no aligned writer
    test_generators = ("", "+adapter") if trains else ("",)  # the base and the aligned generator
    tokens = counter(cfg.llm)
    for suffix in test_generators:
        add("test", cfg.llm, len(test_writers), sum(tokens(prompt.messages(t, data)) for t in test_writers),
            len(test_writers) * test_params.n * test_params.max_new_tokens, suffix)
    baselines = baseline_prompts(cfg)
    for baseline_cfg in baselines:
        baseline = ctx.build("prompt", baseline_cfg)
        if getattr(baseline, "needs_llm", True):
            add("test", cfg.llm, len(test_writers), sum(tokens(baseline.messages(t, data)) for t in test_writers),
                len(test_writers) * test_params.n * test_params.max_new_tokens, f" ({baseline_cfg.name})")
    if judge_llm is not None:
        judged = (len(test_generators) + len(baselines)) * test_params.n + (1 if cfg.test.no_profile_baseline else 0)
        requests, prompt_tokens, completion_tokens = _judge_plan(recommender, test, data, counter(judge_llm),
                                                                 cfg.test.max_new_tokens)
        add("test", judge_llm, requests * judged, prompt_tokens * judged, completion_tokens * judged)
    return rows


def stand_in_profiles(tasks: list[UserTask], words: int) -> list[Profile]:
    """One profile a task of ``words`` words ("x x x ...", about a token each), to count judge
    requests before any profile exists: a profile runs to ``max_new_tokens``."""
    text = " ".join(["x"] * int(words))
    return [Profile(t.task_id, "stand-in", "stand-in", 0, text, []) for t in tasks]


def _judge_plan(recommender, tasks: list[UserTask], data: RunData, tokens, profile_tokens: int) -> tuple[int, int, int]:
    """(requests, prompt tokens, completion tokens) of judging a profile of ``profile_tokens`` words
    on every task, from the recommender's own ``request_plan`` (none: it calls no LLM)."""
    plan = getattr(recommender, "request_plan", None)
    if plan is None:
        return 0, 0, 0
    requests = plan(tasks, stand_in_profiles(tasks, profile_tokens), data)
    return len(requests), sum(tokens(messages) for messages, _ in requests), sum(answer for _, answer in requests)


def _label(llm_cfg) -> str:
    return f"{llm_cfg.name}:{llm_cfg.get('model', '?')}"


def _cost(ctx, llm_cfg, prompt_tokens: int, completion_tokens: int) -> float | None:
    price = ctx.plugins.llm_price(OmegaConf.to_container(llm_cfg, resolve=True))
    if price is None:
        return None
    return prompt_tokens * price[0] + completion_tokens * price[1]


def render(rows: list[dict[str, Any]]) -> str:
    """A plain-text table and total, for the terminal."""
    header = f"{'stage':<10}{'model':<40}{'requests':>10}{'prompt tok':>12}{'max compl tok':>15}{'cost USD':>12}"
    lines = ["dry run: no LLM was called. Estimated requests and cost of this run from scratch", header]
    for r in rows:
        cost = "unknown" if r["cost_usd"] is None else f"{r['cost_usd']:.4f}"
        lines.append(f"{r['stage']:<10}{r['model'][:39]:<40}{r['requests']:>10}{r['prompt_tokens']:>12}"
                     f"{r['completion_tokens']:>15}{cost:>12}")
    known = [r["cost_usd"] for r in rows if r["cost_usd"] is not None]
    unknown = len(rows) - len(known)
    total = f"total: {sum(r['requests'] for r in rows)} requests, at most ${sum(known):.4f}"
    if unknown:
        total += f" plus {unknown} row(s) with no known price"
    lines += [total, "(prompt tokens counted with each model's tokenizer where its plugin offers one, else "
                     f"{CHARS_PER_TOKEN} characters a token; completions at max_new_tokens, an upper bound; "
                     "the aligner trains locally)"]
    return "\n".join(lines)
