"""Built-in recommenders: the paper's LLM sentiment judge and the sentence-embedding ranker."""

from __future__ import annotations

import json
import math

import pytest
from omegaconf import OmegaConf

from lettingo import plugins
from lettingo.components import Context
from lettingo.hookspecs import hookimpl
from lettingo.metrics import ndcg_at_k
from lettingo.run_data import RunData
from lettingo.testing import option, require_module
from lettingo.types import Interaction, Item, Profile, UserTask

LABELS = ("like", "neutral", "dislike")

MOVIES = {
    "s1": Item("s1", "Star Wars (1977)", {"genres": ["Sci-Fi", "Space opera"]}),
    "s2": Item("s2", "2001: A Space Odyssey (1968)", {"genres": ["Sci-Fi", "Space"]}),
    "s3": Item("s3", "Apollo 13 (1995)", {"genres": ["Drama", "Space"]}),
    "s4": Item("s4", "Star Trek: First Contact (1996)", {"genres": ["Sci-Fi", "Space"]}),
    "t": Item("t", "Interstellar (2014)", {"genres": ["Sci-Fi", "Space"]}),
    "c1": Item("c1", "Notting Hill (1999)", {"genres": ["Romance", "Comedy"]}),
    "c2": Item("c2", "The Great British Baking Show", {"genres": ["Cooking", "Reality"]}),
    "c3": Item("c3", "Babe (1995)", {"genres": ["Children's", "Comedy"]}),
    "c4": Item("c4", "Pride and Prejudice (2005)", {"genres": ["Romance", "Drama"]}),
}
DATA = RunData(MOVIES)  # a 1-5 scale, like >= 4, dislike <= 2
ROMANCE_FAN = "This viewer adores romantic comedies and love stories, especially British romance."


def interaction(item_id, rating, ts, user="u1"):
    return Interaction(user, item_id, rating, ts)


def space_task(task_id="u1", candidates=("c1", "c2", "t", "c3", "c4"), recent=True, label="like") -> UserTask:
    recent_window = [interaction("s1", 5, 1), interaction("s2", 5, 2), interaction("s3", 4, 3),
                     interaction("s4", 1, 4)] if recent else []
    return UserTask(task_id, "u1", "train", [], recent_window, interaction("t", 5, 9), label,
                    list(candidates), 0)


def profile_for(task: UserTask, text: str, sample: int = 0) -> Profile:
    return Profile(task.task_id, "base", "lettingo", sample, text, [{"role": "user", "content": "..."}])


# -- embedding_ranker (real packaged all-MiniLM-L6-v2) ------------------------------------------------


@pytest.fixture(scope="module")
def ranker_ctx():
    return Context(cache=None)


def build_ranker(ctx, **overrides):
    return ctx.build("recommender", OmegaConf.merge(option("recommender", "embedding_ranker"), overrides))


@pytest.fixture(scope="module")
def ranker(ranker_ctx):
    return build_ranker(ranker_ctx, profile_weight=0.9)


def test_recent_space_movies_rank_the_space_target_first(ranker):
    task = space_task()
    [judgement] = ranker.judge([task], [None], DATA)  # no profile: the recent window alone decides
    assert ranker.task_type == "ranking" and judgement.recommender == "embedding_ranker"
    assert judgement.profile_id == "u1/none" and judgement.task_id == "u1"
    assert judgement.prediction[0] == "t" and sorted(judgement.prediction) == sorted(task.candidates)
    assert judgement.score == 1.0 and judgement.correct and judgement.valid
    assert list(json.loads(judgement.raw_output)) == judgement.prediction  # scores, best first


def test_profile_moves_its_genre_up_when_its_weight_is_high(ranker_ctx, ranker):
    task = space_task()
    profile = profile_for(task, ROMANCE_FAN)
    [with_profile] = ranker.judge([task], [profile], DATA)
    assert with_profile.profile_id == profile.profile_id
    assert with_profile.prediction[0] in ("c1", "c4")  # a romance candidate overtakes the space target
    rank = with_profile.prediction.index("t")
    assert rank > 0
    assert with_profile.score == pytest.approx(1 / math.log2(rank + 2))
    assert with_profile.correct == (rank < 5)
    # the same profile barely counts at the default weight: the recent window still wins
    [low_weight] = build_ranker(ranker_ctx).judge([task], [profile], DATA)
    assert low_weight.prediction[0] == "t"


def test_ndcg_and_correct_follow_the_target_rank(ranker):
    # No recent window and no profile: every score is 0, so the ranking is the candidate order.
    others = [f"c{i}" for i in range(1, 5)] * 3  # 12 distractors
    for position, ndcg, correct in ((0, 1.0, True), (4, 1 / math.log2(6), True),
                                    (5, 1 / math.log2(7), False), (9, 1 / math.log2(11), False),
                                    (10, 0.0, False), (12, 0.0, False)):
        candidates = others[:position] + ["t"] + others[position:]
        [judgement] = ranker.judge([space_task(candidates=candidates, recent=False)], [None], DATA)
        assert judgement.prediction.index("t") == position
        assert judgement.score == pytest.approx(ndcg) and judgement.correct is correct
    assert ndcg_at_k(0, 10) == 1.0 and ndcg_at_k(10, 10) == 0.0


def test_item_embeddings_are_cached_across_calls_and_model_loaded_once(ranker_ctx):
    ranker = build_ranker(ranker_ctx)
    encoded: list[str] = []
    model = ranker.model
    original = model.encode
    model.encode = lambda texts, **kw: (encoded.extend(texts), original(texts, **kw))[1]
    task = space_task()
    ranker.judge([task, task], [None, profile_for(task, ROMANCE_FAN)], DATA)
    assert len(encoded) == 9 + 1  # 5 candidates + 4 recent items, then the profile
    encoded.clear()
    ranker.judge([task], [profile_for(task, "Likes documentaries.")], DATA)
    assert encoded == ["Likes documentaries."]
    assert ranker.model is model
    encoded.clear()  # a profile judged again (another target of its user) is not embedded again
    again = ranker.judge([task], [profile_for(task, ROMANCE_FAN)], DATA)
    assert encoded == [] and again[0].score == ranker.judge([task], [profile_for(task, ROMANCE_FAN)], DATA)[0].score


def test_a_target_missing_from_candidates_is_an_error(ranker):
    with pytest.raises(ValueError, match="target 't'"):
        ranker.judge([space_task(candidates=["c1", "c2"])], [None], DATA)


# -- llm_sentiment with a fake engine --------------------------------------------------------------


class FakeSentimentLLM:
    """Fixed log-probabilities chosen by which target title the prompt holds; records every prompt."""

    def __init__(self, by_title: dict[str, dict[str, float]]):
        self.by_title = by_title
        self.prompts: list[list[dict]] = []
        self.batches: list[int] = []

    def identity(self):
        return {"backend": "fake-sentiment"}

    def label_logprobs(self, prompts, labels):
        assert list(labels) == list(LABELS)
        self.batches.append(len(prompts))
        self.prompts.extend(prompts)
        text = [prompt[-1]["content"] for prompt in prompts]
        return [next(lp for title, lp in self.by_title.items() if title in t) for t in text]

    def generate(self, prompts, params, seeds):
        raise NotImplementedError

    def with_adapter(self, adapter_path):
        return self

    def close(self):
        pass


LOGPROBS = {
    "Interstellar": {"like": math.log(0.6), "neutral": math.log(0.3), "dislike": math.log(0.1)},
    # unnormalised on purpose: 0.2 / 0.2 / 0.4 must become 0.25 / 0.25 / 0.5
    "Notting Hill": {"like": math.log(0.2), "neutral": math.log(0.2), "dislike": math.log(0.4)},
    "Babe": {"like": -0.5, "neutral": -3.0, "dislike": -4.0},
}


@pytest.fixture
def fake_llm():
    engine = FakeSentimentLLM(LOGPROBS)

    class Plugin:
        @hookimpl
        def lettingo_register_llms(self, register):
            register("fake_sentiment", lambda cfg, ctx: engine)

    plugins.register_plugin(Plugin(), "fake-sentiment-llm")
    yield engine
    plugins.unregister_plugin("fake-sentiment-llm")


def sentiment_recommender(batch_size=8):
    root = OmegaConf.create({"llm": {"name": "fake_sentiment"}})
    root.recommender = OmegaConf.merge(option("recommender", "llm_sentiment"), {"batch_size": batch_size})
    return Context(cache=None).build("recommender", root.recommender)  # `llm: ${llm}` resolves to the run's llm


def test_llm_sentiment_normalises_predicts_and_scores(fake_llm):
    recommender = sentiment_recommender(batch_size=2)
    target_like = space_task("a", label="like")
    target_dislike = UserTask("b", "u2", "train", [], [interaction("s1", 5, 1, "u2")],
                              interaction("c1", 1, 9, "u2"), "dislike", ["c1"], 0)
    target_neutral = UserTask("c", "u3", "train", [], [interaction("s2", 3, 1, "u3")],
                              interaction("c3", 3, 9, "u3"), "neutral", ["c3"], 0)
    profile = profile_for(target_like, ROMANCE_FAN)
    judgements = recommender.judge([target_like, target_dislike, target_neutral], [profile, None, None], DATA)
    assert recommender.task_type == "sentiment" and fake_llm.batches == [2, 1]

    a, b, c = judgements
    assert (a.profile_id, b.profile_id, c.profile_id) == (profile.profile_id, "b/none", "c/none")
    assert a.prediction == "like" and a.correct and a.score == pytest.approx(0.6)
    assert json.loads(a.raw_output) == pytest.approx({"like": 0.6, "neutral": 0.3, "dislike": 0.1})
    assert b.prediction == "dislike" and b.correct and b.score == pytest.approx(0.5)
    assert json.loads(b.raw_output) == pytest.approx({"like": 0.25, "neutral": 0.25, "dislike": 0.5})
    assert c.prediction == "like" and not c.correct
    expected_neutral = math.exp(-3.0) / (math.exp(-0.5) + math.exp(-3.0) + math.exp(-4.0))
    assert c.score == pytest.approx(expected_neutral)
    assert all(j.valid and j.recommender == "llm_sentiment" for j in judgements)


def test_llm_sentiment_prompt_holds_profile_recent_sentiments_and_target(fake_llm):
    recommender = sentiment_recommender()
    task = space_task()
    recommender.judge([task, task], [profile_for(task, ROMANCE_FAN), None], DATA)
    with_profile, without = (p[-1]["content"] for p in fake_llm.prompts)
    assert ROMANCE_FAN in with_profile and ROMANCE_FAN not in without
    assert "profile" not in without.lower()
    for text in (with_profile, without):
        assert "Star Wars (1977); genres: Sci-Fi, Space opera -> like" in text
        assert "Apollo 13 (1995); genres: Drama, Space -> like" in text
        assert "Star Trek: First Contact (1996); genres: Sci-Fi, Space -> dislike" in text
        assert "Interstellar (2014); genres: Sci-Fi, Space" in text
        assert text.rstrip().endswith("Answer with one word: like, neutral, or dislike.")
    # the dataset's thresholds decide the sentiment words: with like_min 5, a 4 is neutral
    fake_llm.prompts.clear()
    sentiment_recommender().judge([task], [None], RunData.of(MOVIES, {"like_min": 5, "dislike_max": 2}))
    assert "Apollo 13 (1995); genres: Drama, Space -> neutral" in fake_llm.prompts[0][-1]["content"]


def test_llm_sentiment_rejects_misaligned_inputs(fake_llm):
    task = space_task()
    with pytest.raises(ValueError, match="one profile"):
        sentiment_recommender().judge([task], [], DATA)
    with pytest.raises(ValueError, match="belongs to task"):
        sentiment_recommender().judge([task], [profile_for(space_task("other"), "x")], DATA)


# -- llm_sentiment on a real (tiny) transformers model ---------------------------------------------


def test_llm_sentiment_on_tiny_transformers_model(tiny_model):
    lettingo_transformers = require_module("lettingo_transformers.plugin", "the real tiny-model path needs lettingo-transformers (make install)")
    registered_here = not plugins.pm.is_registered(lettingo_transformers)
    if registered_here:
        plugins.register_plugin(lettingo_transformers, "lettingo-transformers-test")
    try:
        root = OmegaConf.create({"llm": {"name": "transformers", "model": tiny_model, "device": "cpu"}})
        root.recommender = option("recommender", "llm_sentiment")
        ctx = Context()
        recommender = ctx.build("recommender", root.recommender)
        task = space_task()
        judgements = recommender.judge([task, task], [profile_for(task, ROMANCE_FAN), None], DATA)
        for judgement in judgements:
            probs = json.loads(judgement.raw_output)
            assert set(probs) == set(LABELS) and sum(probs.values()) == pytest.approx(1.0)
            assert judgement.prediction == max(LABELS, key=probs.get)
            assert judgement.score == pytest.approx(probs["like"]) and judgement.valid
        assert judgements[0].raw_output != judgements[1].raw_output  # the profile changes the answer
        ctx.release_llms()
    finally:
        if registered_here:
            plugins.unregister_plugin("lettingo-transformers-test")
