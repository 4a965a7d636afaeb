"""Metrics against hand-computed values and scikit-learn, bootstrap intervals, summaries, baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score

from lettingo.metrics import (
    INVALID,
    accuracy,
    baselines,
    bootstrap_ci,
    hit_at_k,
    macro_f1,
    ndcg_at_k,
    summarize,
)
from lettingo.types import SENTIMENT_LABELS, Judgement

LABELS = list(SENTIMENT_LABELS)


def judgement(prediction, correct=False, score=0.0, valid=True) -> Judgement:
    return Judgement("p", "t", "r", prediction, correct, score, valid)


def test_accuracy_and_macro_f1_by_hand():
    y_true = ["like", "like", "dislike", "neutral"]
    y_pred = ["like", "dislike", "dislike", "like"]
    assert accuracy(y_true, y_pred) == 0.5
    # like: TP 1, 2 true + 2 predicted -> 2/4; dislike: TP 1, 1 + 2 -> 2/3; neutral: 0
    assert macro_f1(y_true, y_pred, LABELS) == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert macro_f1(y_true, y_pred, ["like", "dislike"]) == pytest.approx((0.5 + 2 / 3) / 2)


def test_macro_f1_matches_scikit_learn_including_invalid_predictions():
    rng = np.random.default_rng(0)
    y_true = rng.choice(LABELS, 300)
    y_pred = rng.choice(LABELS + [INVALID], 300, p=[0.4, 0.2, 0.3, 0.1])
    expected = f1_score(y_true, y_pred, labels=LABELS, average="macro", zero_division=0)
    assert macro_f1(y_true, y_pred, LABELS) == pytest.approx(expected)


def test_ndcg_and_hit_at_k_by_hand():
    assert ndcg_at_k(0, 10) == 1.0
    assert ndcg_at_k(2, 10) == pytest.approx(0.5)  # 1 / log2(4)
    assert ndcg_at_k(1, 10) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k(9, 10) == pytest.approx(1 / math.log2(11))
    assert ndcg_at_k(10, 10) == 0.0 and ndcg_at_k(None, 10) == 0.0
    assert [hit_at_k(r, 5) for r in (0, 4, 5, None)] == [1.0, 1.0, 0.0, 0.0]


def test_bootstrap_ci_contains_the_estimate_and_is_seeded():
    rng = np.random.default_rng(1)
    y_true = rng.choice(LABELS, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.choice(LABELS, 200))
    value = accuracy(y_true, y_pred)
    low, high = bootstrap_ci(accuracy, y_true, y_pred, seed=3)
    assert low < value < high and high - low < 0.2
    assert bootstrap_ci(accuracy, y_true, y_pred, seed=3) == (low, high)
    scores = rng.random(200)  # continuous, so a different seed moves the percentiles
    assert bootstrap_ci(np.mean, scores, seed=3) != bootstrap_ci(np.mean, scores, seed=4)


def test_bootstrap_ci_resamples_rows_jointly():
    same = ["like", "dislike", "neutral", "like"] * 10
    assert bootstrap_ci(accuracy, same, same) == (1.0, 1.0)  # independent resampling would mismatch rows


def test_bootstrap_ci_is_degenerate_for_constant_input_and_rejects_ragged_arrays():
    assert bootstrap_ci(np.mean, [0.25] * 50) == (0.25, 0.25)
    assert bootstrap_ci(np.mean, [0.7]) == (0.7, 0.7)
    assert all(math.isnan(x) for x in bootstrap_ci(np.mean, []))
    with pytest.raises(ValueError, match="one length"):
        bootstrap_ci(accuracy, [1, 2], [1])


def test_summarize_sentiment_counts_invalid_outputs_as_wrong():
    labels = ["like", "like", "dislike", "neutral"]
    judgements = [
        judgement("like"),
        judgement("like", valid=False),  # right label but unparseable output: wrong
        judgement("dislike"),
        judgement("like"),
    ]
    result = summarize("sentiment", labels, judgements)
    assert result["n"] == 4 and result["invalid_rate"] == 0.25
    assert result["accuracy"]["value"] == 0.5
    # like: TP 1, 2 true + 2 predicted -> 0.5; dislike: 1.0; neutral: 0
    assert result["macro_f1"]["value"] == pytest.approx(0.5)
    low, high = result["accuracy"]["ci"]
    assert low <= 0.5 <= high


def test_summarize_ranking_means_scores_and_hits():
    labels = ["a", "b", "c", "d"]
    judgements = [
        judgement(["a"], correct=True, score=1.0),
        judgement(["x", "y", "b"], correct=True, score=0.5),
        judgement(["x"], correct=False, score=0.0),
        judgement(None, correct=True, score=0.9, valid=False),  # invalid: scores 0 whatever it claims
    ]
    result = summarize("ranking", labels, judgements)
    assert set(result) == {"ndcg@10", "hr@5", "n", "invalid_rate"}
    assert result["ndcg@10"]["value"] == pytest.approx(1.5 / 4)
    assert result["hr@5"]["value"] == 0.5 and result["invalid_rate"] == 0.25
    with pytest.raises(ValueError, match="3 labels for 4 judgements"):
        summarize("ranking", labels[:3], judgements)
    with pytest.raises(ValueError, match="unknown task_type"):
        summarize("rating", labels, judgements)


def test_random_ranking_baseline_is_the_exact_expectation():
    row = baselines("ranking", ["x"] * 7, [], num_candidates=20)["random"]
    assert row["hr@5"] == {"value": 0.25, "ci": [0.25, 0.25]}
    expected_ndcg = sum(1 / math.log2(r + 2) for r in range(10)) / 20
    assert row["ndcg@10"]["value"] == pytest.approx(expected_ndcg)
    assert baselines("ranking", ["x"], [], num_candidates=3)["random"]["hr@5"]["value"] == 1.0
    assert set(baselines("ranking", ["x"], [], 20)) == {"random"}


def test_sentiment_baselines_random_and_majority():
    test_labels = ["like"] * 50 + ["neutral"] * 30 + ["dislike"] * 20
    train_labels = ["dislike"] * 5 + ["neutral"] * 9 + ["like"] * 9  # tie: like wins (label order)
    rows = baselines("sentiment", test_labels, train_labels, num_candidates=20, seed=0)
    assert rows["majority"]["accuracy"]["value"] == 0.5
    assert rows["majority"]["macro_f1"]["value"] == pytest.approx((2 * 50 / 150) / 3)
    assert 0.2 < rows["random"]["accuracy"]["value"] < 0.47
    assert rows == baselines("sentiment", test_labels, train_labels, num_candidates=20, seed=0)
    judged = summarize("sentiment", test_labels, [judgement("like")] * 100)
    assert set(rows["random"]) == set(rows["majority"]) == set(judged)
    assert rows["majority"]["accuracy"] == judged["accuracy"]
    with pytest.raises(ValueError, match="train labels"):
        baselines("sentiment", test_labels, [], num_candidates=20)


def test_resample_count_is_configurable_and_changes_only_the_interval():
    rng = np.random.default_rng(5)
    judgements = [judgement(None, correct=bool(c), score=float(s), valid=True)
                  for c, s in zip(rng.random(80) < 0.4, rng.random(80))]
    few = summarize("ranking", ["x"] * 80, judgements, n_resamples=50)
    many = summarize("ranking", ["x"] * 80, judgements)
    assert few["ndcg@10"]["value"] == many["ndcg@10"]["value"]
    assert few["ndcg@10"]["ci"] != many["ndcg@10"]["ci"]
