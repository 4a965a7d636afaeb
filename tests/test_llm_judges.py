"""Free-text judges: answer parsing, llm_sentiment's text mode, and the llm_rating judge."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lettingo import plugins
from lettingo.components import Context
from lettingo.hookspecs import hookimpl
from lettingo.llm import Generation, SamplingParams
from lettingo.recommenders.answers import parse_label, parse_rating
from lettingo.recommenders.llm_judge import answer_seed
from lettingo.run_data import RunData
from lettingo.testing import option as option_node, require_module
from lettingo.types import Interaction, Item, Profile, UserTask

LABELS = ("like", "neutral", "dislike")

ITEMS = {
    "s1": Item("s1", "Star Wars (1977)", {"genres": ["Sci-Fi", "Space opera"]}),
    "s2": Item("s2", "Apollo 13 (1995)", {"genres": ["Drama", "Space"]}),
    "s3": Item("s3", "Babe (1995)", {"genres": ["Children's", "Comedy"]}),
    "t": Item("t", "Interstellar (2014)", {"genres": ["Sci-Fi", "Space"]}),
    "c1": Item("c1", "Notting Hill (1999)", {"genres": ["Romance", "Comedy"]}),
}
DATA = RunData(ITEMS)  # a 1-5 scale, like >= 4, dislike <= 2
PROFILE_TEXT = "This viewer loves hard science fiction and space exploration."


def task_with(task_id="u1", target="t", rating=5.0, label="like") -> UserTask:
    recent = [Interaction("u1", "s1", 5, 1), Interaction("u1", "s2", 3, 2), Interaction("u1", "s3", 1, 3)]
    return UserTask(task_id, "u1", "test", [], recent, Interaction("u1", target, rating, 9), label, [target], 0)


def profile_for(task: UserTask, text: str = PROFILE_TEXT) -> Profile:
    return Profile(task.task_id, "base", "lettingo", 0, text, [{"role": "user", "content": "..."}])


# -- parse_label ----------------------------------------------------------------------------------------

LABEL_CASES = [
    ("like", "like"),
    ("LIKE", "like"),
    ("Dislike.", "dislike"),
    ("  neutral\n", "neutral"),
    ("I think the user would like it.", "like"),
    ("The user would dislike it.", "dislike"),  # "dislike" is never read as "like"
    ("dislike", "dislike"),
    ("**neutral**", "neutral"),
    ("`neutral`", "neutral"),
    ("'Like'", "like"),
    ('"dislike"', "dislike"),
    ('{"answer": "dislike"}', "dislike"),
    ('Sure! Here is my answer: ```json\n{"answer": "Neutral"}\n``` Hope it helps, they may like it.', "neutral"),
    ("likes", "like"),
    ("like or dislike", None),  # two labels, neither in a clear answer position
    ("The user may like or dislike it.", None),
    ("like/dislike", None),
    ("It seems like they would dislike it", None),  # two different labels as whole words
    ("", None),
    ("   ", None),
    ("I cannot tell.", None),
    ("unlikely", None),
    # negations of "like" on a like/neutral/dislike label set
    ("The user would not like it.", "dislike"),
    ("The user doesn't like this kind of film", "dislike"),
    ("I don't think the user would like it", "dislike"),
    ("Not like.", "dislike"),
    ("I'm not sure, but they would like it", "like"),  # the negation is in another clause
    ("They would not dislike it", None),  # a negated dislike is no clear answer
    # answer positions win over other mentions
    ("Neutral, though they might like some of it", "neutral"),
    ("The answer is: dislike, although they like space films", "dislike"),
    ("Answer with one word: like, neutral, or dislike. Answer: like", "like"),
    ("Like many viewers... Answer: dislike", "dislike"),
]


@pytest.mark.parametrize("text,expected", LABEL_CASES)
def test_parse_label(text, expected):
    assert parse_label(text, LABELS) == expected


def test_parse_label_negation_needs_the_sentiment_label_set():
    assert parse_label("The user would not like it", ["like", "dislike"]) is None  # no neutral: not our set
    assert parse_label("would not like it", ["yes", "no", "like"]) is None
    assert parse_label("Yes, definitely", ["yes", "no"]) == "yes"
    assert parse_label("The answer is no", ["yes", "no"]) == "no"
    assert parse_label("yes or no", ["yes", "no"]) is None


# -- parse_rating ---------------------------------------------------------------------------------------

RATING_CASES = [
    ("4", 4.0),
    ("4/5", 4.0),
    ("4.5/5", 4.5),
    ("4 out of 5", 4.0),
    ("4 stars out of 5", 4.0),
    ("Rating: 3.5", 3.5),
    ("3.5 stars", 3.5),
    ("I'd say 4 stars", 4.0),
    ("**5**", 5.0),
    ("5.", 5.0),
    ('{"rating": 4}', 4.0),
    ('My prediction: {"rating": "2"} because of the dislikes', 2.0),
    ("I would give it a rating of 1.", 1.0),
    ("On a scale of 1 to 5, I'd give it 4", 4.0),  # the echoed scale is no answer
    ("On a scale of 1-5: 2", 2.0),
    ("four", 4.0),
    ("I'd say four stars", 4.0),
    # invalid
    ("", None),
    ("no idea", None),
    ("10", None),  # out of scale: never clamped
    ("0", None),
    ("Rating: 7", None),
    ("-1", None),
    ("8/10", None),  # another scale: not rescaled
    ('{"rating": 6}', None),
    ("between 3 and 4", None),
    ("3-4 stars", None),
]


@pytest.mark.parametrize("text,expected", RATING_CASES)
def test_parse_rating(text, expected):
    assert parse_rating(text, 1, 5) == expected


def test_parse_rating_follows_the_scale():
    assert parse_rating("8/10", 1, 10) == 8.0
    assert parse_rating("7", 1, 10) == 7.0
    assert parse_rating("4/5", 1, 10) is None
    assert parse_rating("0.5", 0.5, 5) == 0.5


# -- a fake engine with fixed answers -------------------------------------------------------------------


class FakeLLM:
    """Replies chosen by the target title the prompt holds: ``texts`` for generate, ``logprobs`` for
    label_logprobs; records every prompt, call and seed."""

    supports_logprobs = True

    def __init__(self):
        self.texts: dict[str, Generation] = {}
        self.logprobs: dict[str, dict[str, float]] = {}
        self.prompts: list[list[dict]] = []
        self.calls: list[tuple] = []

    def identity(self):
        return {"backend": "fake-judge"}

    def _pick(self, table, prompt):
        content = prompt[-1]["content"]
        return next(value for title, value in table.items() if title in content.split("Candidate item:")[1])

    def generate(self, prompts, params, seeds):
        self.calls.append(("generate", len(prompts), params, list(seeds)))
        self.prompts.extend(prompts)
        return [[self._pick(self.texts, p)] for p in prompts]

    def label_logprobs(self, prompts, labels):
        self.calls.append(("label_logprobs", len(prompts), list(labels)))
        self.prompts.extend(prompts)
        return [self._pick(self.logprobs, p) for p in prompts]

    def with_adapter(self, adapter_path):
        return self

    def close(self):
        pass


@pytest.fixture
def fake_llm():
    engine = FakeLLM()

    class Plugin:
        @hookimpl
        def lettingo_register_llms(self, register):
            register("fake_judge", lambda cfg, ctx: engine)

    plugins.register_plugin(Plugin(), "fake-judge-llm")
    yield engine
    plugins.unregister_plugin("fake-judge-llm")


def build(option: str, overrides: dict | None = None, llm: dict | None = None):
    node = OmegaConf.merge(option_node("recommender", option), overrides or {})
    node.llm = llm or {"name": "fake_judge"}
    return Context(cache=None).build("recommender", node)


def test_configs_name_their_options_and_defaults():
    rating = option_node("recommender", "llm_rating")
    sentiment = option_node("recommender", "llm_sentiment")
    assert rating.name == "llm_rating" and rating.answer == "text" and rating.max_new_tokens == 8
    assert sentiment.name == "llm_sentiment" and sentiment.answer == "logprobs"
    for cfg in (rating, sentiment):
        assert {"llm", "batch_size", "system", "answer", "max_new_tokens"} <= set(cfg)


def test_sentiment_text_mode_parses_replies(fake_llm):
    fake_llm.texts = {"Interstellar": Generation("I think the user would like it."),
                      "Notting Hill": Generation("like or dislike, hard to say"),
                      "Babe": Generation('{"answer": "dislike"}')}
    recommender = build("llm_sentiment", {"answer": "text", "batch_size": 2, "max_new_tokens": 5})
    tasks = [task_with("a"), task_with("b", target="c1", rating=1, label="dislike"),
             task_with("c", target="s3", rating=3, label="neutral")]
    tasks[2].recent_window = tasks[2].recent_window[:2]  # the target may not be in the recent window
    a, b, c = recommender.judge(tasks, [profile_for(tasks[0]), None, None], DATA)
    assert [call[1] for call in fake_llm.calls] == [2, 1] and all(call[0] == "generate" for call in fake_llm.calls)
    params = fake_llm.calls[0][2]
    assert params.temperature == 0 and params.n == 1 and params.max_new_tokens == 5
    assert (a.prediction, a.correct, a.score, a.valid) == ("like", True, 1.0, True)
    assert a.raw_output == "I think the user would like it." and a.error is None
    # unparseable: kept as an invalid judgement with its raw text
    assert (b.prediction, b.correct, b.score, b.valid) == (None, False, 0.0, False)
    assert b.raw_output == "like or dislike, hard to say" and b.profile_id == "b/none"
    assert (c.prediction, c.correct, c.score, c.valid) == ("dislike", False, 0.0, True)
    # the same prompt as the logprobs mode
    assert fake_llm.prompts[0][-1]["content"].endswith("Answer with one word: like, neutral, or dislike.")


def test_sentiment_seeds_are_per_task_and_batch_independent(fake_llm):
    fake_llm.texts = {"Interstellar": Generation("like")}
    tasks = [task_with("a"), task_with("b")]
    build("llm_sentiment", {"answer": "text", "batch_size": 1}).judge(tasks, [None, None], DATA)
    build("llm_sentiment", {"answer": "text", "batch_size": 2}).judge(tasks[::-1], [None, None], DATA)
    first = [s for call in fake_llm.calls[:2] for s in call[3]]
    second = fake_llm.calls[2][3]
    assert first == second[::-1] and first[0] != first[1]


def test_auto_follows_the_backend_and_failed_requests_carry_an_error(fake_llm):
    fake_llm.logprobs = {"Interstellar": {"like": -0.1, "neutral": -3.0, "dislike": -4.0}}
    fake_llm.texts = {"Interstellar": Generation("", {"error": "HTTP 503 after 3 retries"})}
    task = task_with()
    [by_logprobs] = build("llm_sentiment", {"answer": "auto"}).judge([task], [None], DATA)
    assert fake_llm.calls[-1][0] == "label_logprobs" and by_logprobs.valid and by_logprobs.prediction == "like"
    fake_llm.supports_logprobs = False
    [failed] = build("llm_sentiment", {"answer": "auto"}).judge([task], [None], DATA)
    assert fake_llm.calls[-1][0] == "generate"
    assert failed.error and "HTTP 503" in failed.error and not failed.valid and failed.prediction is None
    [failed_rating] = build("llm_rating", {"answer": "auto"}).judge([task], [None], DATA)
    assert failed_rating.error and "HTTP 503" in failed_rating.error and not failed_rating.valid
    with pytest.raises(ValueError, match="answer must be one of"):
        build("llm_sentiment", {"answer": "free"})


def test_rating_logprobs_concentrated_on_four_with_truth_five(fake_llm):
    fake_llm.logprobs = {
        "Interstellar": {"1": -50.0, "2": -50.0, "3": -50.0, "4": 0.0, "5": -50.0},
        # unnormalised on purpose: P(2) = P(4) = 0.5, expected 3
        "Notting Hill": {"1": -math.inf, "2": math.log(0.2), "3": -math.inf, "4": math.log(0.2), "5": -math.inf},
        "Babe": {"1": math.nan, "2": math.nan, "3": math.nan, "4": math.nan, "5": math.nan},
    }
    recommender = build("llm_rating", {"answer": "logprobs"})
    assert recommender.task_type == "rating"
    tasks = [task_with("a", rating=5), task_with("b", target="c1", rating=3), task_with("c", target="s3", rating=2)]
    tasks[2].recent_window = tasks[2].recent_window[:2]
    a, b, c = recommender.judge(tasks, [None, None, None], DATA)
    assert fake_llm.calls[0][2] == ["1", "2", "3", "4", "5"]
    assert a.prediction == pytest.approx(4.0) and a.score == pytest.approx(0.75) and not a.correct and a.valid
    assert json.loads(a.raw_output)["4"] == pytest.approx(1.0)
    assert b.prediction == pytest.approx(3.0) and b.score == pytest.approx(1.0) and b.correct
    assert c.error and not c.valid and c.prediction is None and c.score == 0.0


def test_rating_text_mode_scores_parsed_ratings(fake_llm):
    fake_llm.texts = {"Interstellar": Generation("Rating: 5"), "Notting Hill": Generation("I'd say 4/5"),
                      "Babe": Generation("Probably 7 stars!")}
    tasks = [task_with("a", rating=5), task_with("b", target="c1", rating=2), task_with("c", target="s3", rating=2)]
    tasks[2].recent_window = tasks[2].recent_window[:2]
    a, b, c = build("llm_rating").judge(tasks, [None, None, None], DATA)
    assert (a.prediction, a.score, a.correct, a.valid, a.raw_output) == (5.0, 1.0, True, True, "Rating: 5")
    assert (b.prediction, b.correct, b.valid) == (4.0, False, True) and b.score == pytest.approx(0.5)
    assert (c.prediction, c.score, c.correct, c.valid, c.raw_output) == (None, 0.0, False, False, "Probably 7 stars!")
    assert c.error is None


def test_rating_correct_rounds_half_up_and_follows_the_scale(fake_llm):
    fake_llm.texts = {"Interstellar": Generation("3.5")}
    [whole] = build("llm_rating").judge([task_with(rating=4)], [None], DATA)
    assert whole.correct and whole.score == pytest.approx(0.875)  # 3.5 rounds half up to 4
    [below] = build("llm_rating").judge([task_with(rating=3)], [None], DATA)
    assert not below.correct
    # a 1-10 scale in steps of 0.5: the answer is read on it and rounded to the nearest half
    fake_llm.texts = {"Interstellar": Generation("7.3")}
    recommender = build("llm_rating", {"rating_step": 0.5})
    ten_stars = RunData.of(ITEMS, {"rating_scale": [1, 10]})  # the dataset's scale comes with the run's data
    [ten] = recommender.judge([task_with(rating=7.5)], [None], ten_stars)
    assert ten.correct and ten.score == pytest.approx(1 - 0.2 / 9)
    assert "on a scale from 1 to 10" in fake_llm.prompts[-1][-1]["content"]
    labels = recommender.answer_labels(ten_stars)
    assert labels[:3] == ["1", "1.5", "2"] and labels[-1] == "10"
    # a step that does not divide the run's scale is refused, naming both
    with pytest.raises(ValueError, match="rating_step must be a positive step that divides the scale 1-5"):
        build("llm_rating", {"rating_step": 0.3}).judge([task_with(rating=4)], [None], DATA)
    with pytest.raises(ValueError, match="rating_step must be a positive step"):
        build("llm_rating", {"rating_step": 0})


def test_rating_prompt_holds_profile_recent_ratings_and_target_but_not_its_rating(fake_llm):
    fake_llm.texts = {"Interstellar": Generation("4")}
    task = task_with(rating=2)  # a rating no recent interaction has, so its absence is checkable
    task.recent_window = [Interaction("u1", "s1", 5, 1), Interaction("u1", "s2", 3, 2), Interaction("u1", "s3", 1, 3)]
    build("llm_rating").judge([task, task], [profile_for(task), None], DATA)
    with_profile, without = (p[-1]["content"] for p in fake_llm.prompts)
    assert PROFILE_TEXT in with_profile and PROFILE_TEXT not in without and "profile" not in without.lower()
    for text in (with_profile, without):
        assert "1. Star Wars (1977); genres: Sci-Fi, Space opera -> 5 stars" in text
        assert "2. Apollo 13 (1995); genres: Drama, Space -> 3 stars" in text
        assert "3. Babe (1995); genres: Children's, Comedy -> 1 star" in text
        candidate = text.split("Candidate item:")[1]
        assert "Interstellar (2014); genres: Sci-Fi, Space" in candidate
        assert "2 star" not in text and "like" not in text  # neither the target's rating nor sentiments
        assert text.rstrip().endswith("Answer with one number from 1 to 5.")


def test_sentiment_prompt_holds_sentiments_not_the_target_label(fake_llm):
    fake_llm.texts = {"Interstellar": Generation("like")}
    task = task_with()
    build("llm_sentiment", {"answer": "text"}).judge([task], [profile_for(task)], DATA)
    text = fake_llm.prompts[0][-1]["content"]
    assert PROFILE_TEXT in text and "Star Wars (1977); genres: Sci-Fi, Space opera -> like" in text
    assert "Babe (1995); genres: Children's, Comedy -> dislike" in text
    assert "Interstellar (2014); genres: Sci-Fi, Space\n" in text.split("Candidate item:")[1]
    assert "star" not in text.replace("Star Wars", "")  # no ratings in the sentiment prompt


# -- the real tiny model -------------------------------------------------------------------------------


@pytest.fixture
def transformers_plugin():
    module = require_module("lettingo_transformers.plugin", "the real tiny-model path needs lettingo-transformers (make install)")
    registered_here = not plugins.pm.is_registered(module)
    if registered_here:
        plugins.register_plugin(module, "lettingo-transformers-judges")
    yield
    if registered_here:
        plugins.unregister_plugin("lettingo-transformers-judges")


def check_well_formed(judgements, recommender):
    assert [j.task_id for j in judgements] == ["a", "b"] and judgements[1].profile_id == "b/none"
    for j in judgements:
        assert j.recommender == recommender and j.error is None
        if j.valid:
            assert 0.0 <= j.score <= 1.0
        else:
            assert j.prediction is None and j.score == 0.0 and not j.correct


def test_judges_on_the_tiny_model_are_well_formed_and_deterministic(tiny_model, transformers_plugin):
    cfg = OmegaConf.create({"llm": {"name": "transformers", "model": tiny_model, "device": "cpu"}})
    ctx = Context(cache=None)  # no call cache: the second judge() really generates again
    tasks = [task_with("a"), task_with("b", target="c1", rating=2, label="dislike")]
    profiles = [profile_for(tasks[0]), None]
    try:
        for option, overrides in (("llm_sentiment", {"answer": "text", "max_new_tokens": 4}),
                                  ("llm_rating", {"answer": "text", "max_new_tokens": 4}),
                                  ("llm_rating", {"answer": "logprobs"})):
            node = OmegaConf.merge(option_node("recommender", option), overrides)
            node.llm = cfg.llm
            recommender = ctx.build("recommender", node)
            first, second = recommender.judge(tasks, profiles, DATA), recommender.judge(tasks, profiles, DATA)
            assert [j.to_dict() for j in first] == [j.to_dict() for j in second]
            check_well_formed(first, option)
            if overrides["answer"] == "text":  # gibberish (often empty): invalid, with its raw reply kept
                prompts = [recommender.messages(t, p, DATA) for t, p in zip(tasks, profiles)]
                replies = ctx.llm(cfg.llm).generate(prompts, recommender_params(overrides), [
                    answer_seed(t.task_id) for t in tasks])
                for j, [reply] in zip(first, replies):
                    assert j.raw_output == reply.text
                    parsed = (parse_label(reply.text, LABELS) if option == "llm_sentiment"
                              else parse_rating(reply.text, 1, 5))
                    assert j.valid == (parsed is not None) and j.prediction == parsed
            else:  # every rating has some probability: always valid, an expected rating
                for j in first:
                    probs = json.loads(j.raw_output)
                    assert set(probs) == {"1", "2", "3", "4", "5"} and sum(probs.values()) == pytest.approx(1.0)
                    assert j.valid and j.prediction == pytest.approx(sum(int(r) * p for r, p in probs.items()))
                assert first[0].raw_output != first[1].raw_output  # the profile changes the answer
    finally:
        ctx.release_llms()


def recommender_params(overrides):
    return SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=overrides["max_new_tokens"], n=1)
