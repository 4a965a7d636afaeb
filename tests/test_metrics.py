"""Metrics against hand-computed values and scikit-learn, bootstrap intervals, summaries, baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score, mean_absolute_error, mean_squared_error

from lettingo.metrics import (
    INVALID,
    UNRANKED,
    accuracy,
    baselines,
    best_of_samples,
    bootstrap_ci,
    clustered_mean_ci,
    confusion,
    hit_at_k,
    macro_f1,
    mae,
    metric_functions,
    ndcg_at_k,
    paired_samples_test,
    paired_test,
    rank_of,
    rmse,
    summarize,
    summarize_samples,
    weighted_f1,
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


def test_weighted_f1_and_confusion_match_scikit_learn():
    rng = np.random.default_rng(2)
    y_true = rng.choice(LABELS, 300, p=[0.6, 0.3, 0.1])
    y_pred = rng.choice(LABELS + [INVALID], 300, p=[0.4, 0.2, 0.3, 0.1])
    expected = f1_score(y_true, y_pred, labels=LABELS, average="weighted", zero_division=0)
    assert weighted_f1(y_true, y_pred, LABELS) == pytest.approx(expected)
    assert weighted_f1(y_true, y_pred, LABELS) != pytest.approx(macro_f1(y_true, y_pred, LABELS))
    matrix = confusion(y_true, y_pred, LABELS)
    assert matrix["columns"] == LABELS + [INVALID] and matrix["rows"] == LABELS
    expected_counts = confusion_matrix(y_true, y_pred, labels=LABELS + [INVALID])[:3]
    assert matrix["counts"] == expected_counts.tolist()


def test_rating_and_ranking_metrics_by_hand():
    truth, pred = [5, 3, 1, 4], [4.0, 3.0, 3.0, 4.5]
    assert mae(truth, pred) == pytest.approx((1 + 0 + 2 + 0.5) / 4) == mean_absolute_error(truth, pred)
    assert rmse(truth, pred) == pytest.approx(math.sqrt((1 + 0 + 4 + 0.25) / 4))
    assert rmse(truth, pred) == pytest.approx(math.sqrt(mean_squared_error(truth, pred)))
    assert metric_functions("rating", truth)["accuracy"](truth, pred) == 0.25  # only 3 -> 3; 4.5 rounds to 5
    ranks = [0, 2, 9, UNRANKED]
    fns = metric_functions("ranking", [])
    assert set(fns) == {"ndcg@1", "ndcg@5", "ndcg@10", "ndcg@20", "hr@1", "hr@5", "hr@10", "mrr"}
    assert fns["ndcg@10"](None, ranks) == pytest.approx((1 + 0.5 + 1 / math.log2(11)) / 4)
    assert fns["ndcg@1"](None, ranks) == 0.25 and fns["hr@5"](None, ranks) == 0.5 and fns["hr@10"](None, ranks) == 0.75
    assert fns["mrr"](None, ranks) == pytest.approx((1 + 1 / 3 + 1 / 10) / 4)
    assert rank_of(["a", "b", "c"], "c") == 2 and rank_of(["a"], "z") == UNRANKED and rank_of(None, "a") == UNRANKED


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
    assert result["weighted_f1"]["value"] == pytest.approx((2 * 0.5 + 1.0 + 0) / 4)
    assert result["confusion"]["counts"] == [[1, 0, 0, 1], [1, 0, 0, 0], [0, 0, 1, 0]]  # like, neutral, dislike
    low, high = result["accuracy"]["ci"]
    assert low <= 0.5 <= high


def test_summarize_ranking_reads_ranks_from_the_ranked_lists():
    targets = ["a", "b", "c", "d"]
    judgements = [
        judgement(["a", "x"]),
        judgement(["x", "y", "b"]),
        judgement(["x"]),  # target not ranked
        judgement(["d"], valid=False),  # invalid: not ranked whatever it claims
    ]
    result = summarize("ranking", targets, judgements)
    assert set(result) == {"ndcg@1", "ndcg@5", "ndcg@10", "ndcg@20", "hr@1", "hr@5", "hr@10", "mrr", "n",
                           "invalid_rate"}
    assert result["ndcg@10"]["value"] == pytest.approx(1.5 / 4)
    assert result["hr@5"]["value"] == 0.5 and result["invalid_rate"] == 0.25 and result["mrr"]["value"] == pytest.approx(
        (1 + 1 / 3) / 4)
    with pytest.raises(ValueError, match="3 truths for 4 judgements"):
        summarize("ranking", targets[:3], judgements)
    with pytest.raises(ValueError, match="unknown task_type"):
        summarize("regression", targets, judgements)


def test_summarize_rating_scores_invalid_answers_as_the_middle_of_the_scale():
    result = summarize("rating", [5.0, 1.0], [judgement(4.0), judgement(2.0, valid=False)], rating_scale=(1, 5))
    assert result["mae"]["value"] == pytest.approx((1 + 2) / 2) and result["invalid_rate"] == 0.5


def test_random_and_popularity_ranking_baselines():
    row = baselines("ranking", ["x"] * 7, [], num_candidates=20)["random"]
    assert row["hr@5"] == {"value": 0.25, "ci": [0.25, 0.25]}
    expected_ndcg = sum(1 / math.log2(r + 2) for r in range(10)) / 20
    assert row["ndcg@10"]["value"] == pytest.approx(expected_ndcg)
    assert row["mrr"]["value"] == pytest.approx(sum(1 / (r + 1) for r in range(20)) / 20)
    assert baselines("ranking", ["x"], [], num_candidates=3)["random"]["hr@5"]["value"] == 1.0
    assert set(baselines("ranking", ["x"], [], num_candidates=20)) == {"random"}
    rows = baselines("ranking", ["b", "c"], [], num_candidates=3, candidates=[["a", "b", "c"], ["c", "a", "b"]],
                     popularity={"b": 9, "a": 2})
    assert rows["popularity"]["hr@1"]["value"] == 0.5  # b first for user 1; user 2: a, then c and b tie at 0
    assert rows["popularity"]["mrr"]["value"] == pytest.approx((1 + 1 / 3) / 2)


def test_sentiment_baselines_random_and_majority():
    test_labels = ["like"] * 50 + ["neutral"] * 30 + ["dislike"] * 20
    train_labels = ["dislike"] * 5 + ["neutral"] * 9 + ["like"] * 9  # tie: like wins (label order)
    rows = baselines("sentiment", test_labels, train_labels, seed=0)
    assert rows["majority"]["accuracy"]["value"] == 0.5
    assert rows["majority"]["macro_f1"]["value"] == pytest.approx((2 * 50 / 150) / 3)
    assert 0.2 < rows["random"]["accuracy"]["value"] < 0.47
    assert rows == baselines("sentiment", test_labels, train_labels, seed=0)
    judged = summarize("sentiment", test_labels, [judgement("like")] * 100)
    assert set(rows["random"]) == set(rows["majority"]) == set(judged)
    assert rows["majority"]["accuracy"] == judged["accuracy"]
    with pytest.raises(ValueError, match="train labels"):
        baselines("sentiment", test_labels, [])


def test_rating_baselines_random_and_majority():
    rows = baselines("rating", [4.0, 4.0, 2.0], [4.0, 4.0, 3.0, 5.0], seed=1)
    assert rows["majority"]["mae"]["value"] == pytest.approx(2 / 3) and rows["majority"]["accuracy"]["value"] == 2 / 3
    assert set(rows["random"]) == {"mae", "rmse", "accuracy", "n", "invalid_rate"}


def test_paired_test_gives_p_one_for_identical_methods_and_small_p_for_a_clearly_better_one():
    rng = np.random.default_rng(0)
    truth = list(rng.choice(LABELS, 200))
    good = [t if rng.random() < 0.8 else "neutral" for t in truth]
    bad = [t if rng.random() < 0.4 else "dislike" for t in truth]
    same = paired_test(accuracy, truth, good, good)
    assert same["p_value"] == 1.0 and same["difference"] == 0.0 and same["ci"] == [0.0, 0.0]
    better = paired_test(accuracy, truth, good, bad, n_resamples=500)
    assert better["difference"] == pytest.approx(accuracy(truth, good) - accuracy(truth, bad))
    assert better["p_value"] < 0.01 and better["ci"][0] > 0
    reverse = paired_test(accuracy, truth, bad, good, n_resamples=500)
    assert reverse["p_value"] == better["p_value"] and reverse["ci"][1] < 0
    close = paired_test(accuracy, truth, good, good[:199] + [INVALID])
    assert close["p_value"] > 0.3  # one user apart: no evidence either way
    with pytest.raises(ValueError, match="one prediction of each method per user"):
        paired_test(accuracy, truth, good, bad[:10])


def test_resample_count_is_configurable_and_changes_only_the_interval():
    rng = np.random.default_rng(5)
    ranked = [["x"] * int(k) + ["t"] for k in rng.integers(0, 15, 80)]
    judgements = [judgement(r) for r in ranked]
    few = summarize("ranking", ["t"] * 80, judgements, n_resamples=50)
    many = summarize("ranking", ["t"] * 80, judgements)
    assert few["ndcg@10"]["value"] == many["ndcg@10"]["value"]
    assert few["ndcg@10"]["ci"] != many["ndcg@10"]["ci"]


# -- several profiles per user: mean-of-N, clustered intervals, best-of-N ---------------------------

def test_one_sample_per_user_gives_exactly_the_single_profile_summary_and_paired_test():
    rng = np.random.default_rng(3)
    labels = list(rng.choice(LABELS, 60))
    judged = [judgement(str(p), correct=p == t) for p, t in zip(rng.choice(LABELS, 60), labels)]
    single = summarize("sentiment", labels, judged, n_resamples=200)
    clustered = summarize_samples("sentiment", labels, [[j] for j in judged], n_resamples=200)
    for name in ("accuracy", "macro_f1", "weighted_f1"):
        assert clustered[name] == single[name]
    assert clustered["confusion"] == single["confusion"] and clustered["n"] == 60
    other = [judgement(str(p)) for p in rng.choice(LABELS, 60)]
    preds = [j.prediction for j in judged]
    assert paired_samples_test("sentiment", accuracy, labels, [[j] for j in judged], [[j] for j in other],
                               n_resamples=200) == paired_test(accuracy, labels, preds,
                                                               [j.prediction for j in other], n_resamples=200)


def test_mean_of_n_averages_sample_indices_and_users_are_resampled_whole():
    # 40 users, 4 samples each, all of one user's samples alike: the profiles are not 160
    # independent observations, so the clustered interval must be as wide as one sample's
    rng = np.random.default_rng(0)
    targets = ["t"] * 40
    ranks = rng.integers(0, 20, size=40)
    per_user = [[judgement(["x"] * int(r) + ["t"])] * 4 for r in ranks]
    clustered = summarize_samples("ranking", targets, per_user, n_resamples=500)
    one = summarize("ranking", targets, [s[0] for s in per_user], n_resamples=500)
    flat = summarize("ranking", targets * 4, [j for s in per_user for j in s], n_resamples=500)
    assert clustered["ndcg@10"]["value"] == pytest.approx(one["ndcg@10"]["value"])
    width = lambda row: row["ndcg@10"]["ci"][1] - row["ndcg@10"]["ci"][0]  # noqa: E731
    assert width(clustered) == pytest.approx(width(one), rel=0.25)
    assert width(flat) < 0.7 * width(clustered)  # what treating profiles as independent would claim
    assert clustered["n"] == 40 and clustered["profiles"] == 160 and clustered["samples_per_user"] == 4

    # the value is the mean over sample indices: user 0 hits with sample 0 only, user 1 with both
    two = summarize_samples("ranking", ["t", "t"], [[judgement(["t"]), judgement(["x", "y"])],
                                                    [judgement(["t"]), judgement(["t"])]], n_resamples=50)
    assert two["hr@1"]["value"] == pytest.approx((1.0 + 0.5) / 2)


def test_best_of_samples_is_each_users_highest_score_earliest_on_ties():
    a, b, c = judgement("like", score=0.2), judgement("dislike", score=0.9), judgement("neutral", score=0.9)
    assert best_of_samples([[a, b, c], [a]]) == [b, a]


def test_paired_samples_test_sees_a_shift_shared_by_every_sample():
    rng = np.random.default_rng(1)
    targets = ["t"] * 80
    base = [[judgement(["x"] * int(r) + ["t"]) for r in rng.integers(2, 12, size=3)] for _ in targets]
    better = [[judgement(j.prediction[2:]) for j in s] for s in base]  # every sample two places higher
    test = paired_samples_test("ranking", metric_functions("ranking", targets)["mrr"], targets, better, base,
                               n_resamples=300)
    assert test["difference"] > 0 and test["p_value"] < 0.01 and test["n"] == 80
    same = paired_samples_test("ranking", metric_functions("ranking", targets)["mrr"], targets, base, base)
    assert same["difference"] == 0 and same["p_value"] == 1.0


def test_clustered_mean_ci_resamples_clusters_not_rows():
    values = [1.0] * 10 + [0.0] * 10
    one_cluster_each = clustered_mean_ci(values, list(range(20)), n_resamples=500)
    two_clusters = clustered_mean_ci(values, ["a"] * 10 + ["b"] * 10, n_resamples=500)
    assert one_cluster_each["value"] == two_clusters["value"] == 0.5
    assert two_clusters["ci"][1] - two_clusters["ci"][0] > one_cluster_each["ci"][1] - one_cluster_each["ci"][0]
    assert clustered_mean_ci([0.3, 0.5], ["u", "u"])["ci"] == [0.4, 0.4]
    assert clustered_mean_ci([], [])["n"] == 0
