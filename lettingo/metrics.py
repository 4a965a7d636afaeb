"""Metrics, 95% bootstrap confidence intervals, paired tests, and the baselines every table shows.

Three task types, each judged per user and turned into one prediction per user:

- ``sentiment``: a label; metrics accuracy, macro-F1 and weighted-F1 (both F1s: the paper does
  not say which it reports), and a confusion matrix.
- ``rating``: a number on the dataset's scale; metrics MAE, RMSE (lower is better) and the
  accuracy of the rounded rating.
- ``ranking``: the 0-based rank of the target in the ranked candidates; NDCG@1/5/10/20,
  HR@1/5/10 and MRR.

Invalid recommender outputs are never dropped: a sentiment counts as wrong (it matches no
label), a rating as the middle of the scale, a ranking as the target not ranked (every ranking
metric 0); their share is reported as ``invalid_rate``. Accuracy and the F1s are written with numpy
because the bootstrap calls them a thousand times per interval (scikit-learn's checks cost ~1 ms
a call); the tests check them against scikit-learn.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable, Sequence

import numpy as np

from lettingo.types import SENTIMENT_LABELS, Judgement

TASK_TYPES = ("sentiment", "rating", "ranking")
INVALID = "<invalid>"  # stands for an unparseable sentiment: never equal to a label
UNRANKED = -1  # the target's rank when it is not in the ranked list
NDCG_AT = (1, 5, 10, 20)
HR_AT = (1, 5, 10)
LOWER_IS_BETTER = {"mae", "rmse"}
# The metrics a summary leads with (the console table, the paired tests in the report).
HEADLINE = {"sentiment": ("accuracy", "macro_f1"), "rating": ("mae", "rmse"), "ranking": ("ndcg@10", "hr@5", "mrr")}


def accuracy(y_true: Sequence, y_pred: Sequence) -> float:
    y_true, y_pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    return float(np.mean(y_true == y_pred)) if len(y_true) else math.nan


def _f1_per_label(y_true, y_pred, labels) -> tuple[np.ndarray, np.ndarray]:
    """F1 = 2TP / (true count + predicted count) per label (0 when both are 0), and true counts."""
    y_true, y_pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    scores, support = [], []
    for label in labels:
        is_true, is_pred = y_true == label, y_pred == label
        denominator = is_true.sum() + is_pred.sum()
        scores.append(2 * np.sum(is_true & is_pred) / denominator if denominator else 0.0)
        support.append(is_true.sum())
    return np.asarray(scores, dtype=float), np.asarray(support, dtype=float)


def macro_f1(y_true: Sequence, y_pred: Sequence, labels: Sequence[str]) -> float:
    """Unweighted mean over ``labels`` of per-label F1 (scikit-learn's ``average="macro"``,
    ``zero_division=0``)."""
    scores, _ = _f1_per_label(y_true, y_pred, labels)
    return float(np.mean(scores)) if len(scores) else math.nan


def weighted_f1(y_true: Sequence, y_pred: Sequence, labels: Sequence[str]) -> float:
    """Mean of per-label F1 weighted by each label's number of true instances (``average="weighted"``)."""
    scores, support = _f1_per_label(y_true, y_pred, labels)
    return float(np.dot(scores, support) / support.sum()) if support.sum() else math.nan


def confusion(y_true: Sequence, y_pred: Sequence, labels: Sequence[str]) -> dict[str, Any]:
    """Counts of (true, predicted) pairs; rows are true labels, columns the labels then ``<invalid>``."""
    columns = list(labels) + [INVALID]
    index = {label: i for i, label in enumerate(columns)}
    matrix = [[0] * len(columns) for _ in labels]
    rows = {label: i for i, label in enumerate(labels)}
    for truth, prediction in zip(y_true, y_pred):
        if truth in rows:
            matrix[rows[truth]][index.get(prediction, len(columns) - 1)] += 1
    return {"rows": list(labels), "columns": columns, "counts": matrix}


def mae(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    return float(np.mean(np.abs(np.asarray(y_true, float) - np.asarray(y_pred, float)))) if len(y_true) else math.nan


def rmse(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    diff = np.asarray(y_true, float) - np.asarray(y_pred, float)
    return float(np.sqrt(np.mean(diff**2))) if len(y_true) else math.nan


def rounded_accuracy(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Share of predicted ratings that round (half up) to the true rating."""
    return float(np.mean(np.floor(np.asarray(y_pred, float) + 0.5) == np.asarray(y_true, float))) if len(y_true) \
        else math.nan


def ndcg_at_k(rank: int | None, k: int) -> float:
    """NDCG@k with one relevant item: 1 / log2(rank + 2) inside the top k, else 0."""
    if rank is None or rank < 0 or rank >= k:
        return 0.0
    return 1.0 / math.log2(rank + 2)


def hit_at_k(rank: int | None, k: int) -> float:
    return 1.0 if rank is not None and 0 <= rank < k else 0.0


def _ndcg(k: int) -> Callable:
    def fn(_truth, ranks):
        ranks = np.asarray(ranks)
        return float(np.mean(np.where((ranks >= 0) & (ranks < k), 1.0 / np.log2(np.maximum(ranks, 0) + 2), 0.0)))
    return fn


def _hr(k: int) -> Callable:
    def fn(_truth, ranks):
        ranks = np.asarray(ranks)
        return float(np.mean((ranks >= 0) & (ranks < k)))
    return fn


def _mrr(_truth, ranks) -> float:
    ranks = np.asarray(ranks)
    return float(np.mean(np.where(ranks >= 0, 1.0 / (np.maximum(ranks, 0) + 1), 0.0)))


def metric_functions(task_type: str, truths: Sequence) -> dict[str, Callable[[Sequence, Sequence], float]]:
    """``name -> fn(truths, predictions)`` for a task type; F1s average over the labels present in
    the truth, so every row computed on the same users averages over the same classes."""
    if task_type == "sentiment":
        classes = _classes(truths)
        return {"accuracy": accuracy,
                "macro_f1": lambda t, p: macro_f1(t, p, classes),
                "weighted_f1": lambda t, p: weighted_f1(t, p, classes)}
    if task_type == "rating":
        return {"mae": mae, "rmse": rmse, "accuracy": rounded_accuracy}
    if task_type == "ranking":
        return {**{f"ndcg@{k}": _ndcg(k) for k in NDCG_AT}, **{f"hr@{k}": _hr(k) for k in HR_AT}, "mrr": _mrr}
    raise ValueError(f"unknown task_type {task_type!r}; expected one of {', '.join(TASK_TYPES)}")


def predictions(task_type: str, truths: Sequence, judgements: Sequence[Judgement],
                rating_scale: tuple[float, float] = (1.0, 5.0)) -> list:
    """One prediction per user in the form the metrics take, with invalid outputs mapped as the
    module docstring says (wrong label / the scale's middle / not ranked)."""
    if task_type == "sentiment":
        return [j.prediction if j.valid else INVALID for j in judgements]
    if task_type == "rating":
        middle = (float(rating_scale[0]) + float(rating_scale[1])) / 2
        return [float(j.prediction) if j.valid and j.prediction is not None else middle for j in judgements]
    if task_type == "ranking":
        return [rank_of(j.prediction, truth) if j.valid else UNRANKED for truth, j in zip(truths, judgements)]
    raise ValueError(f"unknown task_type {task_type!r}; expected one of {', '.join(TASK_TYPES)}")


def rank_of(ranked: Sequence | None, target) -> int:
    """0-based position of ``target`` in ``ranked``; :data:`UNRANKED` when absent."""
    if not ranked:
        return UNRANKED
    try:
        return list(ranked).index(target)
    except ValueError:
        return UNRANKED


def bootstrap_ci(fn: Callable[..., float], *arrays: Sequence, n_resamples: int = 1000,
                 confidence: float = 0.95, seed: int = 0, clusters: Sequence | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval of ``fn(*arrays)``, resampling rows of all arrays jointly
    (rows sharing a ``clusters`` entry together)."""
    arrays = tuple(np.asarray(a, dtype=object) if not _numeric(a) else np.asarray(a) for a in arrays)
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"bootstrap_ci needs arrays of one length, got {[len(a) for a in arrays]}")
    if n == 0:
        return math.nan, math.nan
    indices = resampled_rows(n, clusters, n_resamples, seed)
    if indices is None:  # nothing to resample: the interval is the point
        value = float(fn(*arrays))
        return value, value
    values = np.array([fn(*(a[rows] for a in arrays)) for rows in indices], dtype=float)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def paired_test(fn: Callable[[Sequence, Sequence], float], truths: Sequence, pred_a: Sequence, pred_b: Sequence,
                n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> dict[str, Any]:
    """Paired bootstrap of ``fn(truths, a) - fn(truths, b)`` on the same users (resampled together).

    ``p_value`` is two-sided: twice the smaller share of resampled differences on either side of
    zero (capped at 1), so identical methods give 1 and a method better on every resample gives 0
    (read "< 1 / n_resamples").
    """
    truths, pred_a, pred_b = (np.asarray(x, dtype=object) if not _numeric(x) else np.asarray(x)
                              for x in (truths, pred_a, pred_b))
    n = len(truths)
    if not n == len(pred_a) == len(pred_b):
        raise ValueError(f"paired_test needs one prediction of each method per user, got {n}, "
                         f"{len(pred_a)}, {len(pred_b)}")
    difference = fn(truths, pred_a) - fn(truths, pred_b) if n else math.nan
    if n < 2:
        return {"difference": difference, "ci": [difference, difference], "p_value": 1.0, "n": n}
    indices = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    diffs = np.array([fn(truths[r], pred_a[r]) - fn(truths[r], pred_b[r]) for r in indices], dtype=float)
    tail = (1 - confidence) / 2 * 100
    p_value = min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0)))
    return {"difference": float(difference), "ci": [float(v) for v in np.percentile(diffs, [tail, 100 - tail])],
            "p_value": float(p_value), "n": n}


def summarize(task_type: str, truths: Sequence, judgements: Sequence[Judgement], seed: int = 0,
              n_resamples: int = 1000, rating_scale: tuple[float, float] = (1.0, 5.0)) -> dict[str, Any]:
    """Every metric of the task type with its 95% CI for one method on one split; ``truths[i]`` is
    the label / true rating / target item id for ``judgements[i]``."""
    if len(truths) != len(judgements):
        raise ValueError(f"summarize got {len(truths)} truths for {len(judgements)} judgements")
    row = score_predictions(task_type, truths, predictions(task_type, truths, judgements, rating_scale),
                            seed, n_resamples)
    row["invalid_rate"] = float(1 - np.mean([j.valid for j in judgements])) if judgements else math.nan
    return row


# -- several profiles per user ------------------------------------------------------------------
# A user with N sampled profiles is one cluster: a metric is computed on each sample index (one
# prediction per user) and averaged over the N indices (mean-of-N), and intervals and paired tests
# resample users with all their samples, never single profiles, which are not independent.


def sample_matrix(task_type: str, truths: Sequence, samples: Sequence[Sequence[Judgement]],
                  rating_scale: tuple[float, float] = (1.0, 5.0)) -> tuple[np.ndarray, np.ndarray]:
    """Predictions as a users x N array (object for labels, float otherwise) and the mask of the
    cells that hold a sample (a user may have fewer samples when requests failed)."""
    if len(truths) != len(samples):
        raise ValueError(f"got {len(truths)} truths for {len(samples)} users' samples")
    width = max((len(s) for s in samples), default=0)
    numeric = task_type != "sentiment"
    preds = np.full((len(samples), width), np.nan if numeric else None, dtype=float if numeric else object)
    mask = np.zeros((len(samples), width), dtype=bool)
    for row, (truth, judged) in enumerate(zip(truths, samples)):
        for column, value in enumerate(predictions(task_type, [truth] * len(judged), judged, rating_scale)):
            preds[row, column], mask[row, column] = value, True
    return preds, mask


def mean_over_samples(fn: Callable, truths: np.ndarray, preds: np.ndarray, mask: np.ndarray,
                      rows: np.ndarray | None = None) -> float:
    """Mean over sample indices of ``fn`` on the users (``rows``, repeats allowed) holding that sample."""
    rows = np.arange(len(truths)) if rows is None else rows
    values = []
    for column in range(preds.shape[1]):
        kept = rows[mask[rows, column]]
        if len(kept):
            values.append(fn(truths[kept], preds[kept, column]))
    return float(np.mean(values)) if values else math.nan


def resampled_rows(n: int, clusters: Sequence | None, n_resamples: int, seed: int) -> list[np.ndarray] | None:
    """Row indices of each bootstrap resample: clusters (users) drawn with replacement, each with all
    its rows (a user judged on several targets); ``clusters`` None: every row is its own. None when
    there are fewer than two clusters (nothing to resample)."""
    if clusters is None:
        return list(np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))) if n > 1 else None
    if len(clusters) != n:
        raise ValueError(f"got {len(clusters)} clusters for {n} rows")
    keys = list(dict.fromkeys(clusters))  # in order of first appearance
    if len(keys) < 2:
        return None
    index = {key: k for k, key in enumerate(keys)}
    members = [[] for _ in keys]
    for row, cluster in enumerate(clusters):
        members[index[cluster]].append(row)
    members = [np.asarray(m) for m in members]
    draws = np.random.default_rng(seed).integers(0, len(keys), size=(n_resamples, len(keys)))
    return [np.concatenate([members[k] for k in draw]) for draw in draws]


def _as_array(values: Sequence) -> np.ndarray:
    return np.asarray(values) if _numeric(values) else np.asarray(values, dtype=object)


def summarize_samples(task_type: str, truths: Sequence, samples: Sequence[Sequence[Judgement]], seed: int = 0,
                      n_resamples: int = 1000, rating_scale: tuple[float, float] = (1.0, 5.0),
                      confidence: float = 0.95, clusters: Sequence | None = None) -> dict[str, Any]:
    """:func:`summarize` for users with one or more profiles each (``samples[i]``: user i's
    judgements): each metric is the mean over sample indices, its interval a percentile bootstrap
    over users (clustered). With one sample per user it equals :func:`summarize`. Rows that share
    a ``clusters`` entry (one user's several targets) are resampled together."""
    truths_array = _as_array(truths)
    preds, mask = sample_matrix(task_type, truths, samples, rating_scale)
    n = len(truths_array)
    indices = resampled_rows(n, clusters, n_resamples, seed)
    tail = (1 - confidence) / 2 * 100
    row: dict[str, Any] = {}
    for name, fn in metric_functions(task_type, truths).items():
        value = mean_over_samples(fn, truths_array, preds, mask) if n else math.nan
        if indices is None:
            ci = [value, value]
        else:
            resampled = [mean_over_samples(fn, truths_array, preds, mask, rows) for rows in indices]
            ci = [float(v) for v in np.percentile(resampled, [tail, 100 - tail])]
        row[name] = {"value": value, "ci": ci}
    if task_type == "sentiment":
        row["confusion"] = confusion(np.repeat(truths_array, mask.sum(1)), preds[mask], _classes(truths))
    judged = [j for s in samples for j in s]
    row["n"] = n if clusters is None else len(set(clusters))
    if clusters is not None:
        row["targets"] = n
    row["profiles"] = len(judged)
    row["samples_per_user"] = preds.shape[1]
    row["invalid_rate"] = float(1 - np.mean([j.valid for j in judged])) if judged else math.nan
    return row


def best_of_samples(samples: Sequence[Sequence[Judgement]], clusters: Sequence | None = None) -> list[Judgement]:
    """Each user's best-scored judgement (ties: the earliest sample): an oracle that knows the
    held-out answer, so a ceiling for picking among the samples, never a method. Rows sharing a
    ``clusters`` entry (one user's targets) pick one sample together: the best on their mean."""
    if clusters is None:
        return [max(enumerate(s), key=lambda pair: (pair[1].score, -pair[0]))[1] for s in samples]
    totals: dict[Any, dict[int, list[float]]] = {}
    for cluster, judged in zip(clusters, samples):
        for k, j in enumerate(judged):
            totals.setdefault(cluster, {}).setdefault(k, []).append(j.score)
    best = {c: max(sorted(t), key=lambda k: (np.mean(t[k]), -k)) for c, t in totals.items()}
    return [judged[best[c]] if best[c] < len(judged) else judged[0] for c, judged in zip(clusters, samples)]


def paired_samples_test(task_type: str, fn: Callable, truths: Sequence, samples_a: Sequence[Sequence[Judgement]],
                        samples_b: Sequence[Sequence[Judgement]], n_resamples: int = 1000, seed: int = 0,
                        confidence: float = 0.95, rating_scale: tuple[float, float] = (1.0, 5.0),
                        clusters: Sequence | None = None) -> dict[str, Any]:
    """:func:`paired_test` of mean-of-N metrics: users are resampled with all their samples of both
    methods. Base and aligned profiles of one user share seeds (common random numbers), so the
    paired difference is not drowned by sampling noise. One sample each: equal to :func:`paired_test`."""
    truths_array = _as_array(truths)
    a, mask_a = sample_matrix(task_type, truths, samples_a, rating_scale)
    b, mask_b = sample_matrix(task_type, truths, samples_b, rating_scale)
    n = len(truths_array)

    def difference(rows=None) -> float:
        return (mean_over_samples(fn, truths_array, a, mask_a, rows)
                - mean_over_samples(fn, truths_array, b, mask_b, rows))

    observed = difference() if n else math.nan
    users = n if clusters is None else len(set(clusters))
    indices = resampled_rows(n, clusters, n_resamples, seed)
    if indices is None:
        return {"difference": observed, "ci": [observed, observed], "p_value": 1.0, "n": users}
    diffs = np.array([difference(rows) for rows in indices], dtype=float)
    tail = (1 - confidence) / 2 * 100
    p_value = min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0)))
    return {"difference": float(observed), "ci": [float(v) for v in np.percentile(diffs, [tail, 100 - tail])],
            "p_value": float(p_value), "n": users}


def clustered_mean_ci(values: Sequence[float], clusters: Sequence, n_resamples: int = 1000, seed: int = 0,
                      confidence: float = 0.95) -> dict[str, Any]:
    """Mean of ``values`` with a percentile bootstrap interval that resamples whole clusters (the
    pairs of one user together), weighting clusters by their size as the plain mean does."""
    values = np.asarray(values, dtype=float)
    if not len(values):
        return {"value": math.nan, "ci": [math.nan, math.nan], "n": 0, "clusters": 0}
    keys = sorted(set(clusters))
    index = {key: i for i, key in enumerate(keys)}
    member = np.array([index[c] for c in clusters])
    sums = np.bincount(member, weights=values, minlength=len(keys))
    counts = np.bincount(member, minlength=len(keys)).astype(float)
    value = float(values.mean())
    if len(keys) < 2:
        ci = [value, value]
    else:
        draws = np.random.default_rng(seed).integers(0, len(keys), size=(n_resamples, len(keys)))
        resampled = sums[draws].sum(1) / counts[draws].sum(1)
        tail = (1 - confidence) / 2 * 100
        ci = [float(v) for v in np.percentile(resampled, [tail, 100 - tail])]
    return {"value": value, "ci": ci, "n": int(len(values)), "clusters": len(keys)}


def score_predictions(task_type: str, truths: Sequence, preds: Sequence, seed: int = 0,
                      n_resamples: int = 1000, clusters: Sequence | None = None) -> dict[str, Any]:
    """Metrics with CIs of per-user predictions already in metric form (see :func:`predictions`);
    ``clusters``: rows of one user (several targets), resampled together."""
    row: dict[str, Any] = {
        name: {"value": fn(np.asarray(truths, dtype=object), np.asarray(preds, dtype=object if
                                                                          task_type == "sentiment" else float)),
               "ci": list(bootstrap_ci(fn, truths, preds, n_resamples=n_resamples, seed=seed, clusters=clusters))}
        for name, fn in metric_functions(task_type, truths).items()
    }
    if task_type == "sentiment":
        row["confusion"] = confusion(truths, preds, _classes(truths))
    row["n"] = len(truths) if clusters is None else len(set(clusters))
    if clusters is not None:
        row["targets"] = len(truths)
    row["invalid_rate"] = 0.0
    return row


def baselines(task_type: str, test_truths: Sequence, train_truths: Sequence, *, seed: int = 0,
              n_resamples: int = 1000, num_candidates: int = 20, candidates: Sequence[Sequence] | None = None,
              popularity: dict[str, int] | None = None, rating_scale: tuple[float, float] = (1.0, 5.0),
              clusters: Sequence | None = None) -> dict[str, dict[str, Any]]:
    """Reference rows for a results table, with the same metric keys as :func:`summarize`.

    - sentiment: ``random`` (uniform labels drawn with ``seed``) and ``majority`` (the most frequent
      train label, ties broken in ``SENTIMENT_LABELS`` order, for every test user).
    - rating: ``random`` (uniform over the scale's whole and half steps present in the train
      ratings) and ``majority`` (the most frequent train rating; ties: the lower).
    - ranking: ``random`` (the exact expectation over uniformly shuffled candidates; its interval
      is that value) and, given ``candidates`` and ``popularity``, ``popularity`` (each user's
      candidates ranked by how often they were rated in the windows, ties in candidate order).
    """
    n = len(test_truths)
    rng = np.random.default_rng(seed)
    if task_type in ("sentiment", "rating"):
        if not train_truths:
            raise ValueError("the majority baseline needs train labels (the test labels would leak)")
        counts = Counter(train_truths)
        if task_type == "sentiment":
            choices = list(SENTIMENT_LABELS)
            order = choices + sorted(set(counts) - set(choices))
            majority = max(order, key=lambda label: (counts.get(label, 0), -order.index(label)))
            random_predictions = [str(label) for label in rng.choice(choices, size=n)]
        else:
            choices = sorted(set(float(r) for r in train_truths))
            majority = max(sorted(counts), key=lambda r: counts[r])
            random_predictions = [float(r) for r in rng.choice(choices, size=n)]
        return {"random": score_predictions(task_type, test_truths, random_predictions, seed, n_resamples, clusters),
                "majority": score_predictions(task_type, test_truths, [majority] * n, seed, n_resamples, clusters)}
    if task_type == "ranking":
        if num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {num_candidates}")
        rows = {"random": {}}
        for name, fn in metric_functions("ranking", []).items():
            value = float(np.mean([fn(None, [r]) for r in range(num_candidates)]))
            rows["random"][name] = {"value": value, "ci": [value, value]}
        rows["random"].update(n=n if clusters is None else len(set(clusters)), invalid_rate=0.0)
        if candidates is not None and popularity is not None:
            ranks = [rank_of(sorted(c, key=lambda item: -popularity.get(item, 0)), truth)  # sort is stable
                     for c, truth in zip(candidates, test_truths)]
            rows["popularity"] = score_predictions("ranking", test_truths, ranks, seed, n_resamples, clusters)
        return rows
    raise ValueError(f"unknown task_type {task_type!r}; expected one of {', '.join(TASK_TYPES)}")


def _classes(truths: Sequence) -> list:
    present = set(truths)
    return [label for label in SENTIMENT_LABELS if label in present] + sorted(present - set(SENTIMENT_LABELS))


def _numeric(values: Sequence) -> bool:
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values)
