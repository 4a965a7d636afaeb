"""Metrics, 95% bootstrap confidence intervals, and the baselines every results table shows.

Ranks are 0-based positions of the target in a ranked list (``None``: the target was not ranked,
which scores 0). Invalid recommender outputs are never dropped: they count as wrong, and their
share is reported as ``invalid_rate``. Accuracy and macro F1 are written with numpy because the
bootstrap calls them a thousand times per interval (scikit-learn's checks cost ~1 ms a call);
the tests check them against scikit-learn.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable, Sequence

import numpy as np

from lettingo.types import SENTIMENT_LABELS, Judgement

INVALID = "<invalid>"  # stands for an unparseable prediction: never equal to a label
RANKING_K = {"ndcg": 10, "hr": 5}


def accuracy(y_true: Sequence, y_pred: Sequence) -> float:
    y_true, y_pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    return float(np.mean(y_true == y_pred)) if len(y_true) else math.nan


def macro_f1(y_true: Sequence, y_pred: Sequence, labels: Sequence[str]) -> float:
    """Unweighted mean over ``labels`` of F1 = 2TP / (true count + predicted count); a label with
    neither true nor predicted instances scores 0 (scikit-learn's ``zero_division=0``)."""
    y_true, y_pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    scores = []
    for label in labels:
        is_true, is_pred = y_true == label, y_pred == label
        denominator = is_true.sum() + is_pred.sum()
        scores.append(2 * np.sum(is_true & is_pred) / denominator if denominator else 0.0)
    return float(np.mean(scores)) if scores else math.nan


def ndcg_at_k(rank: int | None, k: int) -> float:
    """NDCG@k with one relevant item: 1 / log2(rank + 2) inside the top k, else 0."""
    if rank is None or rank < 0 or rank >= k:
        return 0.0
    return 1.0 / math.log2(rank + 2)


def hit_at_k(rank: int | None, k: int) -> float:
    return 1.0 if rank is not None and 0 <= rank < k else 0.0


def bootstrap_ci(fn: Callable[..., float], *arrays: Sequence, n_resamples: int = 1000,
                 confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``fn(*arrays)``, resampling rows of all arrays jointly."""
    arrays = tuple(np.asarray(a) for a in arrays)
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"bootstrap_ci needs arrays of one length, got {[len(a) for a in arrays]}")
    if n == 0:
        return math.nan, math.nan
    if n == 1:  # nothing to resample: the interval is the point
        value = float(fn(*arrays))
        return value, value
    from scipy.stats import bootstrap

    result = bootstrap(arrays, fn, paired=True, vectorized=False, n_resamples=n_resamples,
                       confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def summarize(task_type: str, labels: list[str], judgements: list[Judgement], seed: int = 0,
              n_resamples: int = 1000) -> dict[str, Any]:
    """Metrics with 95% CIs for one recommender on one split, ``labels[i]`` the truth for ``judgements[i]``.

    sentiment: ``accuracy`` and ``macro_f1`` of ``prediction`` (invalid outputs count as wrong);
    ranking: ``ndcg@10`` = mean ``score`` and ``hr@5`` = mean ``correct`` (invalid outputs score 0).
    """
    if len(labels) != len(judgements):
        raise ValueError(f"summarize got {len(labels)} labels for {len(judgements)} judgements")
    valid = [j.valid for j in judgements]
    invalid_rate = float(1 - np.mean(valid)) if judgements else math.nan
    if task_type == "sentiment":
        predictions = [j.prediction if j.valid else INVALID for j in judgements]
        metrics = _sentiment_metrics(labels, predictions, seed, n_resamples)
    elif task_type == "ranking":
        scores = [float(j.score) if j.valid else 0.0 for j in judgements]
        hits = [float(bool(j.correct)) if j.valid else 0.0 for j in judgements]
        metrics = {f"ndcg@{RANKING_K['ndcg']}": _mean_with_ci(scores, seed, n_resamples),
                   f"hr@{RANKING_K['hr']}": _mean_with_ci(hits, seed, n_resamples)}
    else:
        raise ValueError(f"unknown task_type {task_type!r}; expected 'sentiment' or 'ranking'")
    return {**metrics, "n": len(judgements), "invalid_rate": invalid_rate}


def baselines(task_type: str, test_labels: list[str], train_labels: list[str], num_candidates: int,
              seed: int = 0, n_resamples: int = 1000) -> dict[str, dict[str, Any]]:
    """Reference rows for a results table, with the same metric keys as :func:`summarize`.

    sentiment: ``random`` (uniform labels drawn with ``seed``) and ``majority`` (the most frequent
    train label, ties broken in ``SENTIMENT_LABELS`` order, for every test user). ranking:
    ``random`` = the exact expectation for a uniformly shuffled list of ``num_candidates`` items
    (an exact value, so its interval is that value); no majority row.
    """
    n = len(test_labels)
    if task_type == "sentiment":
        rng = np.random.default_rng(seed)
        random_predictions = [str(label) for label in rng.choice(SENTIMENT_LABELS, size=n)]
        if not train_labels:
            raise ValueError("the majority baseline needs train labels (the test labels would leak)")
        counts = Counter(train_labels)
        order = list(SENTIMENT_LABELS) + sorted(set(counts) - set(SENTIMENT_LABELS))
        majority = max(order, key=lambda label: (counts.get(label, 0), -order.index(label)))
        return {
            "random": {**_sentiment_metrics(test_labels, random_predictions, seed, n_resamples),
                       "n": n, "invalid_rate": 0.0},
            "majority": {**_sentiment_metrics(test_labels, [majority] * n, seed, n_resamples),
                         "n": n, "invalid_rate": 0.0},
        }
    if task_type == "ranking":
        if num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {num_candidates}")
        ndcg = sum(ndcg_at_k(r, RANKING_K["ndcg"]) for r in range(num_candidates)) / num_candidates
        hr = sum(hit_at_k(r, RANKING_K["hr"]) for r in range(num_candidates)) / num_candidates
        return {"random": {f"ndcg@{RANKING_K['ndcg']}": {"value": ndcg, "ci": [ndcg, ndcg]},
                           f"hr@{RANKING_K['hr']}": {"value": hr, "ci": [hr, hr]},
                           "n": n, "invalid_rate": 0.0}}
    raise ValueError(f"unknown task_type {task_type!r}; expected 'sentiment' or 'ranking'")


def _sentiment_metrics(labels: Sequence[str], predictions: Sequence, seed: int,
                       n_resamples: int) -> dict[str, dict[str, Any]]:
    """Accuracy and macro F1 with CIs; F1 averages over the labels present in the truth, so every row
    computed on the same test users averages over the same classes."""
    present = set(labels)
    classes = [label for label in SENTIMENT_LABELS if label in present] + sorted(present - set(SENTIMENT_LABELS))

    def f1(y_true, y_pred):
        return macro_f1(y_true, y_pred, classes)

    return {
        name: {"value": fn(labels, predictions),
               "ci": list(bootstrap_ci(fn, labels, predictions, n_resamples=n_resamples, seed=seed))}
        for name, fn in (("accuracy", accuracy), ("macro_f1", f1))
    }


def _mean_with_ci(values: Sequence[float], seed: int, n_resamples: int) -> dict[str, Any]:
    value = float(np.mean(values)) if len(values) else math.nan
    return {"value": value, "ci": list(bootstrap_ci(np.mean, values, n_resamples=n_resamples, seed=seed))}
