"""Profile statistics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lettingo.profile_stats import distinct_n, profile_statistics, sample_diversity, title_overlap, token_count
from lettingo.types import Interaction, Item, Profile, UserTask


def profile(task_id, text, sample=0, usage=None) -> Profile:
    return Profile(task_id, "base", "lettingo", sample, text, [], usage or {})


def test_distinct_n_and_token_counts_by_hand():
    assert distinct_n(["a b a b"], 1) == 0.5 and distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n(["A b", "a B"], 1) == 0.5  # across profiles, case-insensitive
    assert math.isnan(distinct_n(["one"], 2))
    assert token_count(profile("t", "three words here")) == 3
    assert token_count(profile("t", "three words here", usage={"completion_tokens": 7})) == 7


def test_title_overlap_counts_mentioned_window_titles():
    assert title_overlap("Loves Alien and HEAT, hates musicals", ["Alien", "Heat", "Cats", "M"]) == pytest.approx(2 / 3)
    assert math.isnan(title_overlap("anything", ["M"]))


def test_sample_diversity_is_zero_for_identical_samples_and_grows_with_difference():
    vectors = {"x": np.array([1.0, 0.0]), "y": np.array([0.0, 1.0]), "z": np.array([-1.0, 0.0])}

    def embed(texts):
        return np.stack([vectors[t] for t in texts])

    assert sample_diversity({"u": ["x", "x"], "v": ["y"]}, embed) == 0.0  # v has one sample: left out
    assert sample_diversity({"u": ["x", "y"]}, embed) == pytest.approx(1.0)
    assert sample_diversity({"u": ["x", "z"], "v": ["x", "x"]}, embed) == pytest.approx((2.0 + 0.0) / 2)
    assert math.isnan(sample_diversity({"u": ["x"]}, embed))


def test_profile_statistics_per_group():
    task = UserTask("t1", "u", "test", [Interaction("u", "1", 5, 1), Interaction("u", "2", 1, 2)], [],
                    Interaction("u", "3", 4, 3), "like", ["3"], 0)
    items = {"1": Item("1", "Alien"), "2": Item("2", "Heat"), "3": Item("3", "Fargo")}
    groups = {"base": [profile("t1", "likes alien a lot"), profile("t1", "likes heat", 1)],
              "other": [profile("t1", "fargo fargo")]}
    stats = profile_statistics(groups, {"t1": task}, items, embed=lambda texts: np.eye(len(texts)))
    assert stats["base"]["profiles"] == 2 and stats["base"]["tokens_mean"] == 3.0
    assert stats["base"]["title_overlap"] == 0.5 and stats["other"]["title_overlap"] == 0.0  # Fargo is the target
    assert stats["base"]["sample_diversity"] == pytest.approx(1.0) and "sample_diversity" not in stats["other"]
