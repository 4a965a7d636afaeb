"""Exploring with several generators in one run, the usage ledger, the failure budget, dry runs."""

from __future__ import annotations

import json
import math

import pytest
from omegaconf import OmegaConf
from lettingo import api, plugins
from lettingo.cache import CachedLLM, CallCache
from lettingo.components import Context
from lettingo.hookspecs import hookimpl
from lettingo.ledger import Ledger, read_ledger, summarize
from lettingo.llm import Generation, SamplingParams
from lettingo.pipeline.explore import GeneratorConfigError, explore_generators, sampling_params, task_seed
from lettingo.pipeline.failures import FailureBudget, TooManyFailuresError
from lettingo.run_data import load_run_data, load_tasks
from lettingo.store import RunStore, read_jsonl
from lettingo.targets import primary_tasks
from lettingo.testing import tiny_overrides

pytestmark = pytest.mark.usefixtures("installed_plugins")  # composing needs the plugins' options


def two_generators(tiny_model: str) -> str:
    return (
        "explore.generators=["
        "{name: small, llm: ${llm}, num_profiles: 1, temperature: 0.7},"
        f"{{name: other, llm: {{name: transformers, model: '{tiny_model}', threads: 1}}, num_profiles: 3}}"
        "]"
    )


def test_generators_default_to_the_llm_as_base(tiny_model):
    cfg = api.compose(tiny_overrides(tiny_model))
    [(name, llm_cfg, params, prompt)] = explore_generators(cfg)
    assert name == "base" and llm_cfg.model == tiny_model and params.n == cfg.explore.num_profiles
    assert prompt is None  # the run's prompt


def test_each_generator_has_its_own_sampling(tiny_model):
    cfg = api.compose(tiny_overrides(tiny_model) + [two_generators(tiny_model)])
    (small, _, p1, _), (other, llm, p2, _) = explore_generators(cfg)
    assert (small, p1.n, p1.temperature) == ("small", 1, 0.7)
    assert (other, p2.n, p2.temperature, llm.threads) == ("other", 3, cfg.explore.temperature, 1)
    assert p1.max_new_tokens == p2.max_new_tokens == cfg.explore.max_new_tokens


@pytest.mark.parametrize("entry, message", [
    ("[{num_profiles: 2}]", "needs an `llm` node"),
    ("[{llm: ${llm}, n: 2}]", r"unknown key\(s\) \['n'\]"),
    ("[{llm: ${llm}, name: a}, {llm: ${llm}, name: a}]", "is taken"),
    ("[{llm: ${llm}, prompt: [palr]}]", "`prompt` is a prompt option's name"),
])
def test_bad_generator_entries_are_named(tiny_model, entry, message):
    cfg = api.compose(tiny_overrides(tiny_model) + [f"explore.generators={entry}"])
    with pytest.raises(GeneratorConfigError, match=message):
        explore_generators(cfg)


def test_a_run_explores_with_every_generator_and_records_usage(tmp_path, tiny_model):
    overrides = tiny_overrides(tiny_model, train=4, test=2) + [two_generators(tiny_model)]
    api.run(api.compose(overrides), tmp_path, stages=["prepare", "explore"])
    rows = read_jsonl(tmp_path / "profiles.jsonl")
    per_generator = {g: sum(r["generator"] == g for r in rows) for g in ("small", "other")}
    assert per_generator == {"small": 4 * 1, "other": 4 * 3}
    assert {r["model"] for r in rows} == {f"transformers:{tiny_model}"}
    ledger = read_ledger(tmp_path)
    assert {(r["stage"], r["generator"]) for r in ledger} == {("explore", "small"), ("explore", "other")}
    [usage] = summarize(ledger, by=("stage",))
    assert usage["requests"] == 8 and usage["completion_tokens"] == sum(r["usage"]["completion_tokens"] for r in rows)
    assert usage["cost_usd"] == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["stages"]["explore"]["summary"]["llm_usage"][0]["requests"] == 8


def test_a_generator_with_its_own_prompt_answers_the_runs_prompt(tmp_path, tiny_model):
    """A generator given `prompt: palr` writes with PALR's instructions, but its profiles are recorded
    as answers to the run's prompt, so they pair with the other generator's (what DPO trains on)."""
    generators = ("explore.generators=[{name: own, llm: ${llm}, num_profiles: 2},"
                  "{name: teacher, llm: ${llm}, prompt: palr, num_profiles: 2}]")
    cfg = api.compose(tiny_overrides(tiny_model, train=4, test=2) + [generators])
    assert [g.prompt for g in explore_generators(cfg)] == [None, OmegaConf.create({"name": "palr"})]
    api.run(cfg, tmp_path, stages=["prepare", "explore", "evaluate", "pair"])
    rows = read_jsonl(tmp_path / "profiles.jsonl")
    by = {(r["task_id"], r["generator"], r["sample"]): r for r in rows}
    assert {r["prompt_style"] for r in rows if r["generator"] == "teacher"} == {"palr"}
    for (task_id, generator, sample), row in by.items():
        if generator == "teacher":  # PALR wrote it; it answers what the aligned writer is asked
            assert row["prompt_messages"] == by[(task_id, "own", sample)]["prompt_messages"]
    # the teacher was asked PALR's question: the same model, seed and PALR messages give its text back
    ctx = Context(None, cache=None)  # a real generation, not the run's cached answer
    store = RunStore(tmp_path)
    task = next(iter(primary_tasks(load_tasks(store, "train")).values()))
    palr = ctx.build("prompt", OmegaConf.create({"name": "palr"})).messages(task, load_run_data(ctx, cfg, store))
    assert palr != by[(task.task_id, "teacher", 0)]["prompt_messages"]
    [again] = ctx.llm(cfg.llm).generate([palr], sampling_params(cfg.explore, 2),
                                        [task_seed(cfg.seed, task.task_id, "teacher")])
    assert [g.text for g in again] == [by[(task.task_id, "teacher", i)]["text"] for i in range(2)]
    ctx.release_llms()
    pairs = read_jsonl(tmp_path / "pairs.jsonl")
    assert pairs, "pairs are drawn across the two generators' profiles"
    assert json.loads((tmp_path / "pairs_summary.json").read_text())["pairs_by_generator"]


def test_an_engine_can_be_released_alone(tiny_model):
    ctx = Context(cache=None)
    first = ctx.llm({"name": "transformers", "model": tiny_model, "threads": 1})
    ctx.llm({"name": "transformers", "model": tiny_model, "threads": 1, "batch_size": 2})
    ctx.release_llm({"name": "transformers", "model": tiny_model, "threads": 1})
    assert len(ctx._llms) == 1
    with pytest.raises(RuntimeError, match="was closed"):
        first.generate([[{"role": "user", "content": "hi"}]], SamplingParams(max_new_tokens=2), [0])
    ctx.release_llms()


class FlakyBackend:
    """A unit-level stand-in for an API backend whose first requests fail for good."""

    def __init__(self, failing: int):
        self.failing = failing

    def identity(self):
        return {"backend": "flaky", "model": "m"}

    def generate(self, prompts, params, seeds):
        out = []
        for _ in prompts:
            if self.failing > 0:
                self.failing -= 1
                out.append([Generation("", {"error": "RateLimitError: quota"})] * params.n)
            else:
                out.append([Generation("text", {"prompt_tokens": 10, "completion_tokens": 2, "cost_usd": 0.5})] * params.n)
        return out

    def label_logprobs(self, prompts, labels):
        return [{label: math.nan for label in labels} for _ in prompts]


def test_failures_are_counted_in_the_ledger_and_never_cached(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.stage = "explore"
    llm = CachedLLM(FlakyBackend(failing=1), CallCache(tmp_path / "c.sqlite"), ledger)
    prompts = [[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]]
    first = llm.generate(prompts, SamplingParams(n=2), seeds=[1, 2])
    assert "error" in first[0][0].usage and first[1][0].text == "text"
    llm.generate(prompts, SamplingParams(n=2), seeds=[1, 2])  # only the failed prompt is asked again
    llm.label_logprobs(prompts[:1], ["like"])
    rows = read_ledger(tmp_path)
    assert [(r["requests"], r["cache_hits"], r["failures"]) for r in rows] == [(2, 0, 1), (1, 1, 0), (1, 0, 1)]
    assert rows[0]["cost_usd"] == 1.0 and rows[0]["prompt_tokens"] == 10  # n samples share one prompt
    assert llm.stats == {"calls": 4, "cache_hits": 1}


def test_the_failure_budget_stops_past_its_rate():
    budget = FailureBudget("explore", total=10, max_rate=0.2)
    budget.record("task train-1", "RateLimitError: slow down")
    budget.record("task train-2", "RateLimitError: slow down")
    assert budget.summary()["failed_requests"] == 2
    with pytest.raises(TooManyFailuresError, match=r"3 of 10 .*task train-1: RateLimitError.*lettingo resume"):
        budget.record("task train-3", "Timeout")


def test_dry_run_counts_requests_and_prices_them_without_calling(tmp_path, tiny_model):
    api_generator = "explore.generators=[{llm: ${llm}, num_profiles: 2},{name: api, llm: {name: litellm, model: gpt-4o-mini}, num_profiles: 3}]"
    cfg = api.compose(tiny_overrides(tiny_model, train=6, test=4) + ["dry_run=true", api_generator])
    rows = api.run(cfg, tmp_path)["dry_run"]
    assert not (tmp_path / "profiles.jsonl").exists() and not (tmp_path / "ledger.jsonl").exists()
    explore = {r["model"]: r for r in rows if r["stage"] == "explore"}
    local = explore[f"transformers:{tiny_model}"]
    api_row = explore["litellm:gpt-4o-mini"]
    assert local["requests"] == api_row["requests"] == 6 and local["cost_usd"] == 0
    assert api_row["completion_tokens"] == 6 * 3 * cfg.explore.max_new_tokens
    assert 0 < api_row["cost_usd"] < 0.01  # priced from LiteLLM's local map
    assert sum(r["requests"] for r in rows if r["stage"] == "test") == 2 * 4
    from lettingo.pipeline.dry_run import render

    assert "no LLM was called" in render(rows)


def test_dry_run_prices_a_generator_by_its_own_prompt(tmp_path, tiny_model):
    generators = ("explore.generators=[{name: own, llm: ${llm}},{name: palr, llm: ${llm}, prompt: palr},"
                  "{name: raw, llm: ${llm}, prompt: raw_history}]")
    cfg = api.compose(tiny_overrides(tiny_model, train=6, test=4) + ["dry_run=true", generators])
    explore = [r for r in api.run(cfg, tmp_path)["dry_run"] if r["stage"] == "explore"]
    assert len(explore) == 2  # raw_history writes its profiles without a model: no request
    own, palr = explore
    assert own["requests"] == palr["requests"] == 6
    assert palr["prompt_tokens"] != own["prompt_tokens"]  # PALR's instructions, not the run's prompt


class HousePricing:
    """A plugin that prices its own (imaginary) hosted model."""

    @hookimpl
    def lettingo_llm_price(self, llm_cfg):
        return (1e-6, 2e-6) if llm_cfg.get("name") == "house" else None


def test_plugins_price_their_models_for_dry_runs():
    from lettingo.pipeline.dry_run import _cost
    from lettingo.testing import plugin_registered

    with plugin_registered(HousePricing(), "house-pricing"):
        assert plugins.llm_price({"name": "house", "model": "m"}) == (1e-6, 2e-6)
        ctx = Context(cache=None)  # prices come from the context's plugin registry
        assert _cost(ctx, OmegaConf.create({"name": "house"}), 1000, 500) == pytest.approx(2e-3)
    assert plugins.llm_price({"name": "transformers", "model": "x"}) == (0.0, 0.0)  # a local backend
    assert plugins.llm_price({"name": "house"}) is None  # nobody prices it any more


@pytest.mark.parametrize("recommender", ["llm_sentiment", "llm_rating", "llm_ranker", "embedding_ranker"])
@pytest.mark.parametrize("generator", ["transformers", "vllm", "litellm"])
def test_dry_run_plans_every_builtin_recommender_with_every_generator_kind(tmp_path, tiny_model, recommender,
                                                                           generator):
    llm = {"transformers": [], "vllm": ["llm=vllm", f"llm.model={tiny_model}"],
           "litellm": ["llm=litellm", "llm.model=gpt-4o-mini", "aligner=none"]}[generator]  # an API model trains not
    tiny = [o for o in tiny_overrides(tiny_model, train=4, test=3) if generator != "litellm" or not o.startswith("aligner.")]
    cfg = api.compose(tiny + llm + [f"recommender={recommender}", "dry_run=true"])
    rows = api.run(cfg, tmp_path)["dry_run"]
    judged = [r for r in rows if r["stage"] == "evaluate"]
    if recommender == "embedding_ranker":  # no LLM in the judge: nothing to count
        assert judged == []
        return
    [evaluate] = judged
    passes = cfg.recommender.bootstrap if recommender == "llm_ranker" else 1
    assert evaluate["requests"] == 4 * cfg.explore.num_profiles * passes
    answer = {"llm_ranker": cfg.recommender.max_new_tokens, "llm_rating": cfg.recommender.max_new_tokens,
              "llm_sentiment": 8}[recommender]  # text answers; label scoring bills at most 8
    assert evaluate["completion_tokens"] == evaluate["requests"] * answer
    assert all(r["cost_usd"] == 0 for r in rows) == (generator != "litellm")


def test_dry_run_counts_what_a_real_run_requests(tmp_path, tiny_model):
    """The ranker's three passes, and no aligned writer with aligner=none: the dry run's requests per
    stage and model are the ones the real run's ledger records."""
    plugins.load_entrypoints(only=["transformers", "trl"])
    overrides = [o for o in tiny_overrides(tiny_model, train=4, test=3) if not o.startswith("aligner.")]
    overrides += ["recommender=llm_ranker", "recommender.max_new_tokens=16", "aligner=none",
                  f"cache.path={tmp_path / 'calls.sqlite'}", "report.embedding_model=null"]
    planned = api.run(api.compose(overrides + ["dry_run=true"]), tmp_path / "dry")["dry_run"]
    api.run(api.compose(overrides), tmp_path / "real")
    real: dict = {}
    for row in read_jsonl(tmp_path / "real" / "ledger.jsonl"):
        key = (row["stage"], row["model"])
        requests, tokens = real.get(key, (0, 0))
        real[key] = (requests + row["requests"] + row["cache_hits"], tokens + row["prompt_tokens"])
    estimated: dict = {}
    for row in planned:
        key = (row["stage"], row["model"])
        requests, tokens = estimated.get(key, (0, 0))
        estimated[key] = (requests + row["requests"], tokens + row["prompt_tokens"])
    assert {k: v[0] for k, v in estimated.items()} == {k: v[0] for k, v in real.items()}
    assert not any("+adapter" in model for _, model in estimated)
    # prompt tokens come from the model's own tokenizer and chat template: exact for profile prompts,
    # close for judge prompts (each counted with a stand-in profile of max_new_tokens words)
    writer = f"transformers:{tiny_model}"
    assert estimated[("explore", writer)][1] == real[("explore", writer)][1] > 0
    assert all(abs(estimated[key][1] - real[key][1]) <= 0.05 * real[key][1] for key in real), (estimated, real)


class CountingWords:
    """A plugin that counts a model's prompt tokens its own way: one per word."""

    @hookimpl
    def lettingo_token_counter(self, llm_cfg):
        if llm_cfg.get("name") != "litellm":
            return None
        return lambda messages: sum(len(m["content"].split()) for m in messages)


def test_dry_runs_count_tokens_with_the_models_counter(tmp_path, tiny_model):
    from lettingo.pipeline.dry_run import char_tokens
    from lettingo.testing import plugin_registered

    generators = ("explore.generators=[{name: local, llm: ${llm}},"
                  "{name: api, llm: {name: litellm, model: gpt-4o-mini}}]")
    cfg = api.compose(tiny_overrides(tiny_model, train=4, test=3) + ["dry_run=true", generators])
    with plugin_registered(CountingWords(), "counting-words"):
        rows = {r["model"]: r for r in api.run(cfg, tmp_path / "words")["dry_run"] if r["stage"] == "explore"}
    words, local = rows["litellm:gpt-4o-mini"]["prompt_tokens"], rows[f"transformers:{tiny_model}"]["prompt_tokens"]
    litellm_count = {r["model"]: r for r in api.run(cfg, tmp_path / "litellm")["dry_run"]
                     if r["stage"] == "explore"}["litellm:gpt-4o-mini"]["prompt_tokens"]
    assert len({words, local, litellm_count}) == 3  # three counters: words, SmolLM2's template, tiktoken's
    assert plugins.token_counter({"name": "transformers", "model": tiny_model})(
        [{"role": "user", "content": "hi"}]) > 1  # the chat template's tokens around the word
    assert char_tokens([{"role": "user", "content": "abcdefgh"}]) == 2 + 4
