"""The LLMRank judge: parsing and repair, Borda combination, reshuffling, position bias, judgements."""

from __future__ import annotations

import json
import math
import re

import pytest
from omegaconf import OmegaConf

from lettingo import plugins
from lettingo.components import Context
from lettingo.hookspecs import hookimpl
from lettingo.llm import Generation
from lettingo.recommenders.llm_ranker import (
    borda,
    parse_ranking,
    position_bias,
    presentation_orders,
)
from lettingo.run_data import RunData
from lettingo.testing import option, require_module
from lettingo.types import Interaction, Item, Profile, UserTask


ITEMS = {
    "s1": Item("s1", "Star Wars (1977)", {"genres": ["Sci-Fi"]}),
    "s2": Item("s2", "Apollo 13 (1995)", {"genres": ["Drama", "Space"]}),
    "t": Item("t", "Interstellar (2014)", {"genres": ["Sci-Fi", "Space"]}),
    **{f"c{i}": Item(f"c{i}", f"Filler Movie {i} ({1950 + i})", {"genres": ["Drama"]}) for i in range(1, 20)},
}
DATA = RunData(ITEMS)  # a 1-5 scale, like >= 4, dislike <= 2
PROFILE_TEXT = "Loves hard science fiction about space travel."


def make_task(task_id="u1", num_candidates=20, target_at=7) -> UserTask:
    others = [f"c{i}" for i in range(1, num_candidates)]
    candidates = others[:target_at] + ["t"] + others[target_at:]
    recent = [Interaction("u1", "s1", 5, 1), Interaction("u1", "s2", 3, 2)]
    return UserTask(task_id, "u1", "train", [], recent, Interaction("u1", "t", 5, 9), "like", candidates, 0)


def profile_for(task: UserTask, text: str = PROFILE_TEXT) -> Profile:
    return Profile(task.task_id, "base", "lettingo", 0, text, [{"role": "user", "content": "..."}])


# -- parse_ranking ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, n, order, problems", [
    ("3, 1, 2", 3, [2, 0, 1], []),
    ("Sure! Here is my ranking: 3, 1, 2. Hope it helps.", 3, [2, 0, 1], []),
    ("[3] > [1] > [2]", 3, [2, 0, 1], []),
    ("2, 2, 1, 3", 3, [1, 0, 2], ["duplicate: 2"]),
    ("4, 1", 5, [3, 0, 1, 2, 4], ["missing 3"]),  # the unranked follow in the order shown
    ("7, 2, 0, 1", 3, [1, 0, 2], ["out of range: 7, 0", "missing 1"]),
    ("1. 3\n2. 1\n3. 2", 3, [2, 0, 1], []),  # the enumerators are not candidates
    ("My ranking:\n1. [2] Apollo 13 (1995)\n2. [3] Star Wars (1977)\n3. [1] Babe", 3, [1, 2, 0], []),
    ("The ranking 2 > 1.5 > 1", 3, [1, 0, 2], ["missing 1"]),  # decimals are not numbers
])
def test_parse_ranking_reads_and_repairs(text, n, order, problems):
    assert parse_ranking(text, n) == (order, problems)


def test_parse_ranking_gives_up_on_prose_and_on_too_few_numbers():
    order, problems = parse_ranking("The user would most enjoy a science-fiction film.", 20)
    assert order is None and problems[-1].startswith("unparseable")
    order, problems = parse_ranking("99, 42", 20)
    assert order is None and problems[0] == "out of range: 99, 42" and problems[-1].startswith("unparseable")
    assert parse_ranking("2, 1", 3, min_ranked=3)[0] is None
    assert parse_ranking("2, 1, 3", 3, min_ranked=3)[0] == [1, 0, 2]


def test_bracketed_numbers_win_over_titles_holding_numbers():
    text = "1. [2] Apollo 13 (1995)\n2. [13] Filler Movie 13 (1963)\n3. [1] Star Wars (1977)"
    order, problems = parse_ranking(text, 20)
    assert order[:3] == [1, 12, 0] and problems == ["missing 17"]
    assert sorted(order) == list(range(20))


# -- Borda and reshuffling ----------------------------------------------------------------------------


def test_borda_sums_points_and_breaks_ties_by_original_order():
    # points n - p: item 0: 3+2+1 = 6, item 1: 2+3+3 = 8, item 2: 1+1+2 = 4
    assert borda([[0, 1, 2], [1, 0, 2], [1, 2, 0]], 3) == ([1, 0, 2], [6, 8, 4])
    assert borda([[0, 1, 2], [1, 0, 2]], 3) == ([0, 1, 2], [5, 5, 2])  # 0 and 1 tie: original order
    assert borda([[2, 1, 0], [1, 2, 0]], 3)[0] == [1, 2, 0]  # 1 and 2 tie at 5
    assert borda([[2]], 3) == ([2, 0, 1], [0, 0, 3])  # unranked items get nothing


def test_bootstrap_orders_are_deterministic_per_task_and_differ_across_passes():
    task = make_task()
    orders = presentation_orders(task, 4)
    assert orders == presentation_orders(task, 4)
    assert orders[0] == list(range(20))  # the first pass keeps the protocol's shuffle
    assert all(sorted(o) == list(range(20)) for o in orders)
    assert len({tuple(o) for o in orders}) == 4
    assert presentation_orders(make_task("u2"), 4)[1:] != orders[1:]
    small = presentation_orders(make_task(num_candidates=2, target_at=0), 2)  # only two orders exist
    assert small == [[0, 1], [1, 0]]


# -- a fake engine -----------------------------------------------------------------------------------


class FakeRankingLLM:
    """Answers each prompt with ``answer(numbered candidates)``; records prompts and calls."""

    def __init__(self, answer):
        self.answer = answer
        self.prompts: list[list[dict]] = []
        self.calls: list[int] = []
        self.params = []

    def identity(self):
        return {"backend": "fake-ranking"}

    def generate(self, prompts, params, seeds):
        self.calls.append(len(prompts))
        self.params.append(params)
        self.prompts.extend(prompts)
        out = []
        for prompt in prompts:
            listed = dict(re.findall(r"^\[(\d+)\] (.*)$", prompt[-1]["content"], flags=re.M))
            answer = self.answer({int(k): v for k, v in listed.items()})
            out.append([Generation(answer, {"error": "boom"} if answer is None else {})])
        return out

    def label_logprobs(self, prompts, labels):
        raise NotImplementedError

    def with_adapter(self, adapter_path):
        return self

    def close(self):
        pass


def always_first(listed):
    return ", ".join(str(k) for k in sorted(listed))


def target_first(listed):
    target = next(k for k, text in listed.items() if text.startswith("Interstellar"))
    return ", ".join(str(k) for k in [target] + [k for k in sorted(listed) if k != target])


@pytest.fixture
def fake_engine():
    holder = {}

    class Plugin:
        @hookimpl
        def lettingo_register_llms(self, register):
            register("fake_ranking", lambda cfg, ctx: holder["engine"])

    plugins.register_plugin(Plugin(), "fake-ranking-llm")
    yield holder
    plugins.unregister_plugin("fake-ranking-llm")


def fake_ranker(holder, answer, **overrides):
    holder["engine"] = engine = FakeRankingLLM(answer)
    node = OmegaConf.merge(option("recommender", "llm_ranker"), overrides, {"llm": {"name": "fake_ranking"}})
    return Context(cache=None).build("recommender", node), engine


def test_target_first_gives_ndcg_one_in_one_batched_call(fake_engine):
    ranker, engine = fake_ranker(fake_engine, target_first)
    tasks = [make_task("a", target_at=0), make_task("b", target_at=19)]
    judgements = ranker.judge(tasks, [profile_for(tasks[0]), None], DATA)
    assert ranker.task_type == "ranking" and engine.calls == [6]  # 2 tasks x 3 passes, one call
    assert engine.params[0].temperature == 0 and engine.params[0].max_new_tokens == 120
    for task, j in zip(tasks, judgements):
        assert j.prediction[0] == "t" and sorted(j.prediction) == sorted(task.candidates)
        assert j.score == 1.0 and j.correct and j.valid and j.error is None
        raw = json.loads(j.raw_output)
        assert raw["parsed_passes"] == 3 and raw["repaired_passes"] == raw["unparseable_passes"] == 0
        assert [p["order"] for p in raw["passes"]] == [
            [task.candidates[i] for i in o] for o in presentation_orders(task, 3)]
        assert all(p["ranking"][0] == "t" and p["problems"] == [] for p in raw["passes"])
        assert list(raw["borda"]) == j.prediction and raw["borda"]["t"] == 3 * 20
    assert judgements[0].profile_id == "a/base/lettingo/0" and judgements[1].profile_id == "b/none"
    with_profile, without = engine.prompts[0][-1]["content"], engine.prompts[3][-1]["content"]
    assert PROFILE_TEXT in with_profile and "profile" not in without.lower()
    assert "Star Wars (1977); genres: Sci-Fi -> like" in without
    assert "Apollo 13 (1995); genres: Drama, Space -> neutral" in without
    assert "\n[20] Interstellar (2014); genres: Sci-Fi, Space" in without  # task b's target is shown last
    assert without.rstrip().endswith("using each number from 1 to 20 once.")


def test_always_first_shows_position_bias_and_borda_dampens_it(fake_engine):
    tasks = [make_task(f"u{i}", target_at=i % 20) for i in range(12)]
    biased, _ = fake_ranker(fake_engine, always_first)
    biased_judgements = biased.judge(tasks, [None] * len(tasks), DATA)
    summary = position_bias(biased_judgements)
    assert summary["judgements"] == 12 and summary["passes"] == 36 and summary["top_first"] == 36
    assert summary["share_first"] == 1.0 and summary["expected_first"] == pytest.approx(1 / 20)
    assert summary["ratio"] == pytest.approx(20.0) and summary["top_position_counts"] == {"1": 36}
    # the combined ranking is not just the first pass's order
    assert any(j.prediction != tasks[k].candidates for k, j in enumerate(biased_judgements))

    fair, _ = fake_ranker(fake_engine, target_first)
    fair_summary = position_bias([j.to_dict() for j in fair.judge(tasks, [None] * len(tasks), DATA)])
    assert fair_summary["passes"] == 36 and fair_summary["share_first"] < 0.3
    assert len(fair_summary["top_position_counts"]) > 5
    assert position_bias([]) == {"judgements": 0, "skipped": 0, "passes": 0, "unparseable_passes": 0,
                                 "top_first": 0, "share_first": None, "expected_first": None,
                                 "ratio": None, "top_position_counts": {}}


def test_unparseable_and_repaired_passes_are_counted_never_dropped(fake_engine):
    answers = iter(["I cannot decide.", "[20] > [20] > [99]", "no idea"] + ["Nothing useful."] * 3)
    ranker, _ = fake_ranker(fake_engine, lambda listed: next(answers))
    partly, hopeless = ranker.judge([make_task("a"), make_task("b")], [None, None], DATA)
    raw = json.loads(partly.raw_output)
    assert partly.valid and (raw["parsed_passes"], raw["repaired_passes"], raw["unparseable_passes"]) == (1, 1, 2)
    second = raw["passes"][1]
    assert second["problems"] == ["out of range: 99", "duplicate: 20", "missing 19"]
    assert second["top_position"] == 20 and second["ranking"][0] == second["order"][19]
    assert partly.prediction == second["ranking"]  # the only parsed pass decides
    assert raw["passes"][0]["ranking"] is None and raw["passes"][0]["text"] == "I cannot decide."
    raw = json.loads(hopeless.raw_output)
    assert not hopeless.valid and hopeless.prediction is None and hopeless.score == 0.0 and not hopeless.correct
    assert raw["unparseable_passes"] == 3 and [p["text"] for p in raw["passes"]] == ["Nothing useful."] * 3
    assert "borda" not in raw and hopeless.error is None
    assert position_bias([partly, hopeless])["unparseable_passes"] == 5


def test_a_failed_request_in_any_pass_sets_the_error(fake_engine):
    answers = iter(["1, 2", None, "2, 1"])
    ranker, _ = fake_ranker(fake_engine, lambda listed: next(answers))
    [judgement] = ranker.judge([make_task(num_candidates=2, target_at=0)], [None], DATA)
    assert judgement.error and "boom" in judgement.error and judgement.prediction is None
    assert position_bias([judgement])["skipped"] == 1


def test_config_is_checked(fake_engine):
    with pytest.raises(ValueError, match="bootstrap must be at least 1"):
        fake_ranker(fake_engine, always_first, bootstrap=0)
    ranker, engine = fake_ranker(fake_engine, always_first, bootstrap=1, system="You rank.")
    with pytest.raises(ValueError, match="target 't'"):
        ranker.judge([UserTask("x", "u1", "train", [], [], Interaction("u1", "t", 5, 9), "like", ["c1"], 0)],
                     [None], DATA)
    ranker.judge([make_task()], [None], DATA)
    assert engine.calls == [1] and engine.prompts[0][0] == {"role": "system", "content": "You rank."}


# -- a real (tiny) transformers model ---------------------------------------------------------------


@pytest.fixture(scope="module")
def untied_tiny_model(tmp_path_factory):
    """The ``tiny_model`` recipe with untied embeddings: its greedy answer is non-empty text that
    depends on the prompt (the tied one answers an empty string), so "text kept" can fail."""
    from lettingo.testing import tiny_model_dir

    return str(tiny_model_dir(tmp_path_factory.mktemp("tiny-llama-untied"), tie_word_embeddings=False))


def test_llm_ranker_on_tiny_transformers_model(untied_tiny_model):
    lettingo_transformers = require_module("lettingo_transformers.plugin", "the real tiny-model path needs lettingo-transformers (make install)")
    registered_here = not plugins.pm.is_registered(lettingo_transformers)
    if registered_here:
        plugins.register_plugin(lettingo_transformers, "lettingo-transformers-ranker-test")
    try:
        root = OmegaConf.create({"llm": {"name": "transformers", "model": untied_tiny_model, "device": "cpu"}})
        root.recommender = OmegaConf.merge(option("recommender", "llm_ranker"), {"max_new_tokens": 16})
        ctx = Context()  # this test's own call cache (conftest)
        ranker = ctx.build("recommender", root.recommender)
        tasks = [make_task("a", num_candidates=5, target_at=2), make_task("b", num_candidates=5, target_at=4)]
        profiles = [profile_for(tasks[0]), None]
        first = ranker.judge(tasks, profiles, DATA)
        for task, j in zip(tasks, first):
            raw = json.loads(j.raw_output)
            assert j.error is None and len(raw["passes"]) == 3
            assert all(isinstance(p["text"], str) and p["text"].strip() for p in raw["passes"])
            assert raw["parsed_passes"] + raw["unparseable_passes"] == 3
            assert j.valid == (raw["parsed_passes"] > 0)
            if j.valid:
                assert sorted(j.prediction) == sorted(task.candidates)
                rank = j.prediction.index("t")
                assert j.score == pytest.approx(1 / math.log2(rank + 2)) and j.correct == (rank < 5)
            else:
                assert j.prediction is None and j.score == 0.0
        texts = [p["text"] for j in first for p in json.loads(j.raw_output)["passes"]]
        assert len(set(texts)) > 1  # the order shown (and the profile) reach the model
        # a pass needing more numbers than there are candidates never parses: invalid, text kept
        # (answered from the call cache: same prompts, same greedy parameters)
        strict = ctx.build("recommender", OmegaConf.merge(root.recommender, {"min_ranked": 99}))
        for j, before in zip(strict.judge(tasks, profiles, DATA), first):
            raw = json.loads(j.raw_output)
            assert not j.valid and j.prediction is None and raw["unparseable_passes"] == 3
            assert [p["text"] for p in raw["passes"]] == [p["text"] for p in json.loads(before.raw_output)["passes"]]
            assert all(p["problems"][-1].startswith("unparseable") for p in raw["passes"])
        ctx.cache = None  # generated afresh: greedy ranking is deterministic
        assert [j.to_dict() for j in ranker.judge(tasks, profiles, DATA)] == [j.to_dict() for j in first]
        ctx.release_llms()
    finally:
        if registered_here:
            plugins.unregister_plugin("lettingo-transformers-ranker-test")
