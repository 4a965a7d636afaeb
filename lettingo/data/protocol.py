"""The evaluation protocol: from a dataset to one :class:`UserTask` per user, the same for every dataset.

Rules (each one fixed here so that every run, dataset and machine agrees):

- **Time order.** A user's interactions are sorted by ``(timestamp, item_id)``, item ids compared
  as strings. Ratings given in the same second thus have one fixed order: among them, the one with
  the larger item id counts as later.
- **Duplicates.** When a user rated the same item more than once, only the last rating in that
  order is kept (the latest; equal timestamps keep the one that comes last in the file).
- **Windows.** The target is the user's last interaction; the recent window is the ``recent_window``
  (K) interactions before it; the profile window is the ``profile_window`` (N) interactions before
  those. With ``train_profile_windows: [30, 50, 70]`` (the paper) the train users are split into
  equal groups, one window each, and test users keep ``profile_window``. Users with fewer than
  ``min_interactions`` (default: the largest window + K + ``targets_per_user``) interactions are
  skipped and counted, so that sweeping ``profile_window`` with a fixed ``min_interactions`` keeps
  the same users.
- **Several targets.** With ``targets_per_user`` M > 1, each user also gets M - 1 extra tasks whose
  targets are the user's 2nd-last, ..., M-th-last interactions (task ids ``<split>-<user>#k``, k =
  1..M-1, listed after the user's primary task ``<split>-<user>``). All M share one profile window:
  the N interactions before the earliest target's recent window, so one profile, written before
  any target, is judged on all M (a profile's worth is then its mean over M targets, much less the
  luck of one item). Each task keeps its own K-item recent window just before its target and its
  own candidates (seed :func:`derive_seed` (seed + k, user id)). Every other rule applies to each.
- **Splits.** Eligible users, sorted by id, are shuffled with ``numpy.random.default_rng(seed)``;
  the first ``train_users`` form split "train", the next ``test_users`` split "test", and the next
  ``validation_users`` (default 0) split "validation": held-out users to tune on, so that the test
  users stay untouched until the end (``test.split=validation`` evaluates them instead of the test
  users). When fewer users are eligible than asked for, train and test shrink in proportion and the
  summary says so; validation takes what is left after them.
- **Labels.** ``like`` if rating >= ``like_min``, ``dislike`` if rating <= ``dislike_max``, else
  ``neutral`` (thresholds come from the dataset config: they depend on its rating scale). The raw
  rating stays on the target for rating-prediction tasks.
- **Candidates.** The target plus ``num_candidates - 1`` items the user never rated (in the whole
  history, not only the windows), drawn without replacement from the item catalogue (every item
  with metadata), ``uniform``-ly or by ``popularity`` (in proportion to their number of ratings:
  never-rated items are never drawn), then shuffled.
  Each task has its own generator seeded with ``candidate_seed`` = :func:`derive_seed` (seed, user
  id), so a user's candidates do not depend on who else is in the run.
- **Review text.** Window interactions carry the user's review text when the dataset has it; the
  target's never does (it would give the answer away to any prompt that shows reviews).
- **Guards.** :func:`check_task` runs on every task built; a task that could leak its target raises.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lettingo.data import DatasetError, InteractionData
from lettingo.errors import LettingoError
from lettingo.labels import label_for, thresholds
from lettingo.types import SENTIMENT_LABELS, Interaction, UserTask

DEFAULTS = {
    "profile_window": 30,
    "train_profile_windows": None,
    "recent_window": 10,
    "min_interactions": None,
    "num_candidates": 20,
    "candidate_sampling": "uniform",
    "train_users": 3000,  # the paper's sizes
    "test_users": 2000,
    "validation_users": 0,
    "targets_per_user": 1,
    "seed": 0,
}
SPLITS = ("train", "test", "validation")
CANDIDATE_SAMPLING = ("uniform", "popularity")


class LeakageError(LettingoError, ValueError):
    """A task whose prompt or windows could reveal its target."""


def derive_seed(seed: int, user_id: str) -> int:
    """A per-user seed that is the same in every process (Python's ``hash`` of a string is not)."""
    digest = hashlib.sha256(f"{seed}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def check_task(task: UserTask) -> None:
    """Raise :class:`LeakageError` unless every window interaction strictly precedes the target,
    the target item is absent from both windows, the target carries no review text, and the target
    is among the candidates."""
    target = task.target
    target_key = (target.timestamp, target.item_id)
    for window_name in ("profile_window", "recent_window"):
        for interaction in getattr(task, window_name):
            if interaction.item_id == target.item_id:
                raise LeakageError(
                    f"task {task.task_id}: the target item {target.item_id!r} appears in its {window_name}"
                )
            if interaction.timestamp > target.timestamp or (interaction.timestamp, interaction.item_id) >= target_key:
                raise LeakageError(
                    f"task {task.task_id}: {window_name} item {interaction.item_id!r} "
                    f"(timestamp {interaction.timestamp}) does not precede the target item "
                    f"{target.item_id!r} (timestamp {target.timestamp}) in (timestamp, item_id) order"
                )
    if target.text:
        raise LeakageError(f"task {task.task_id}: the target carries the user's review text, which states the answer")
    if target.item_id not in task.candidates:
        raise LeakageError(f"task {task.task_id}: the target item {target.item_id!r} is not among its candidates")


def protocol_settings(protocol_cfg) -> dict[str, Any]:
    settings = {key: protocol_cfg.get(key, default) for key, default in DEFAULTS.items()}
    windows = settings["train_profile_windows"]
    settings["train_profile_windows"] = [int(w) for w in windows] if windows else None
    return settings


def build_tasks(data: InteractionData, protocol_cfg, dataset_cfg) -> tuple[list[UserTask], dict[str, Any]]:
    """Tasks for the train and test users, and a summary of what was kept, skipped and why."""
    settings = protocol_settings(protocol_cfg)
    n_profile, n_recent = int(settings["profile_window"]), int(settings["recent_window"])
    train_windows = settings["train_profile_windows"] or [n_profile]
    n_candidates, seed = int(settings["num_candidates"]), int(settings["seed"])
    n_targets = int(settings["targets_per_user"])
    like_min, dislike_max = thresholds(dataset_cfg)
    needed = max([n_profile, *train_windows]) + n_recent + n_targets
    min_interactions = int(settings["min_interactions"] or needed)
    _check_settings(settings, n_profile, n_recent, train_windows, n_candidates, like_min, dislike_max,
                    min_interactions, needed)

    history, duplicates = ordered_histories(data.interactions())
    counts = pd.Series(np.bincount(history.items, minlength=len(history.item_names)), index=history.item_names)
    # Candidates come from the item catalogue (every item with metadata), else from the rated items.
    universe = sorted(data.item_ids()) or sorted(counts.index[counts > 0])
    weights = None
    if settings["candidate_sampling"] == "popularity":
        weights = counts.reindex(universe, fill_value=0).to_numpy(dtype="float64")
    lengths = pd.Series(history.ends - history.starts, index=history.user_names)
    unrated = len(universe) - lengths  # every kept rating is of a distinct item in the universe

    too_short = lengths < min_interactions
    too_few_negatives = ~too_short & (unrated < n_candidates - 1)
    eligible = sorted(str(u) for u in lengths.index[~too_short & ~too_few_negatives])
    n_train, n_test, shortfall = _split_sizes(
        len(eligible), int(settings["train_users"]), int(settings["test_users"]), len(lengths), min_interactions
    )
    order = np.random.default_rng(seed).permutation(len(eligible))
    shuffled = [eligible[i] for i in order]
    train_users, test_users = shuffled[:n_train], shuffled[n_train : n_train + n_test]
    # validation users come after train and test, so asking for some leaves those two splits as they were
    validation_users = shuffled[n_train + n_test : n_train + n_test + int(settings["validation_users"] or 0)]
    if int(settings["validation_users"] or 0) > 0 and not validation_users:
        raise DatasetError(
            f"protocol.validation_users={settings['validation_users']} but all {len(eligible)} eligible users are "
            f"train or test users; lower protocol.train_users / protocol.test_users")
    if set(train_users) & set(test_users) or set(validation_users) & set(train_users + test_users):
        raise AssertionError("splits overlap")  # impossible by construction; guarded anyway
    # Train users in shuffled order, cut into equal consecutive groups, one profile window each.
    groups = np.array_split(np.arange(n_train), len(train_windows))
    window_of = {train_users[i]: w for w, members in zip(train_windows, groups) for i in members}
    window_of.update({user: n_profile for user in test_users + validation_users})

    span = dict(zip(history.user_names, zip(history.starts, history.ends)))
    cdf = None if weights is None else np.cumsum(weights) / weights.sum()
    tasks, text_rows = [], {}
    for split, users in (("train", train_users), ("test", test_users), ("validation", validation_users)):
        for user in users:
            for k in range(n_targets):  # the primary task (k = 0), then the user's extra targets
                task, rows = _task(user, split, history, *span[user], window_of[user], n_recent, n_candidates,
                                   universe, cdf, derive_seed(seed + k, user), like_min, dislike_max, n_targets, k)
                tasks.append(task)
                text_rows[task.task_id] = rows
    _attach_review_texts(data, tasks, text_rows)
    for task in tasks:
        check_task(task)

    kept_lengths = lengths[list(window_of)]
    summary = {
        "dataset": data.name,
        "seed": seed,
        "settings": {
            "profile_window": n_profile,
            "train_profile_windows": train_windows,
            "recent_window": n_recent,
            "num_candidates": n_candidates,
            "candidate_sampling": settings["candidate_sampling"],
            "targets_per_user": n_targets,
            "min_interactions": min_interactions,
            "like_min": like_min,
            "dislike_max": dislike_max,
        },
        "load": {key: data.report.get(key) for key in ("sources", "interactions", "items", "bad_records")},
        "users": {
            "total": int(len(lengths)),
            "eligible": len(eligible),
            "kept": len(window_of),
            "skipped": int(too_short.sum() + too_few_negatives.sum()),
            "skipped_reasons": {
                "too_few_interactions": int(too_short.sum()),
                "too_few_unrated_items": int(too_few_negatives.sum()),
            },
            "eligible_unused": len(eligible) - len(window_of),
        },
        "splits": {
            split: {
                "requested": int(settings[f"{split}_users"]),
                "users": sum(1 for t in tasks if t.split == split and t.profile_task is None),
                "labels": _label_counts(t.label for t in tasks if t.split == split),
            }
            for split in SPLITS if split != "validation" or validation_users
        },
        "train_groups": [
            {"profile_window": w, "users": len(members)} for w, members in zip(train_windows, groups)
        ],
        "history_length": {"all": _stats(lengths), "kept": _stats(kept_lengths)},
        "duplicates_dropped": duplicates,
        "candidate_pool": len(universe),
        "shortfall": shortfall,
    }
    return tasks, summary


def _check_settings(settings, n_profile, n_recent, train_windows, n_candidates, like_min, dislike_max,
                    min_interactions, needed) -> None:
    if min(n_profile, n_recent, *train_windows) < 0:
        raise DatasetError(
            f"protocol windows must be >= 0, got profile_window={n_profile}, recent_window={n_recent}, "
            f"train_profile_windows={settings['train_profile_windows']}"
        )
    if min_interactions < needed:
        raise DatasetError(
            f"protocol.min_interactions={min_interactions} is below the largest profile window + recent_window "
            f"+ targets_per_user = {needed}; raise it or leave it null"
        )
    if int(settings["targets_per_user"]) < 1:
        raise DatasetError(f"protocol.targets_per_user must be >= 1, got {settings['targets_per_user']}")
    if n_candidates < 1:
        raise DatasetError(f"protocol.num_candidates must be >= 1 (the target itself), got {n_candidates}")
    if settings["candidate_sampling"] not in CANDIDATE_SAMPLING:
        raise DatasetError(
            f"protocol.candidate_sampling must be one of {', '.join(CANDIDATE_SAMPLING)}, "
            f"got {settings['candidate_sampling']!r}"
        )
    if like_min <= dislike_max:
        raise DatasetError(
            f"dataset like_min ({like_min}) must be greater than dislike_max ({dislike_max}); "
            f"ratings between them are neutral"
        )
    for split in ("train", "test"):
        if int(settings[f"{split}_users"]) < 1:
            raise DatasetError(f"protocol.{split}_users must be >= 1, got {settings[f'{split}_users']}")
    if int(settings["train_users"]) < len(train_windows):
        raise DatasetError(
            f"protocol.train_users ({settings['train_users']}) is fewer than the {len(train_windows)} groups of "
            f"train_profile_windows; every group needs a user"
        )


@dataclass
class Histories:
    """Every user's ratings in time order, as flat arrays: user ``k`` owns ``[starts[k], ends[k])``.
    Items and users are codes into the sorted ``item_names`` / ``user_names``."""

    user_names: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    item_names: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    rows: np.ndarray


def ordered_histories(interactions: pd.DataFrame) -> tuple[Histories, int]:
    """Ratings in (user, timestamp, item_id, file position) order, one per (user, item), and the
    number of duplicates dropped: the protocol's order, so each user's last entry is their target.

    ``interactions`` is :meth:`InteractionData.interactions`'s frame: ids are categoricals with
    sorted categories, so sorting their codes orders ids as strings; the index (the row in the
    prepared file) breaks the remaining ties. Public for plugins that must hold the targets out
    (a collaborative-filtering recommender fitted on the dataset).
    """
    users = interactions["user_id"].cat.codes.to_numpy()
    items = interactions["item_id"].cat.codes.to_numpy()
    timestamps = interactions["timestamp"].to_numpy()
    rows = interactions.index.to_numpy()
    order = np.lexsort((rows, items, timestamps, users))
    users, items = users[order], items[order]
    pair = users.astype(np.int64) * len(interactions["item_id"].cat.categories) + items
    latest = ~pd.Series(pair).duplicated(keep="last").to_numpy()  # per (user, item), in sorted order
    keep, users, items = order[latest], users[latest], items[latest]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(users) else np.array([], dtype=int)
    ends = np.r_[starts[1:], len(users)].astype(int)
    user_names = interactions["user_id"].cat.categories.to_numpy(dtype=object)[users[starts]]
    return Histories(
        user_names=np.array([str(u) for u in user_names], dtype=object), starts=starts, ends=ends,
        item_names=np.array([str(i) for i in interactions["item_id"].cat.categories], dtype=object),
        items=items, ratings=interactions["rating"].to_numpy()[keep], timestamps=timestamps[keep], rows=rows[keep],
    ), len(order) - len(keep)


def _split_sizes(n_eligible: int, want_train: int, want_test: int, n_users: int, min_interactions: int):
    """(train, test, shortfall note): as asked when enough users qualify, else shrunk in proportion."""
    if n_eligible >= want_train + want_test:
        return want_train, want_test, None
    n_train = min(want_train, round(n_eligible * want_train / (want_train + want_test)))
    if n_eligible >= 2:
        n_train = min(max(n_train, 1), n_eligible - 1)
    n_test = min(want_test, n_eligible - n_train)
    if n_train == 0 or n_test == 0:
        raise DatasetError(
            f"only {n_eligible} of {n_users} users qualify (at least {min_interactions} interactions = "
            f"profile_window + recent_window + 1, and enough unrated items for the candidates), so the "
            f"train or test split would be empty; lower protocol.profile_window / protocol.recent_window "
            f"or use a larger dataset"
        )
    note = (
        f"asked for {want_train} train + {want_test} test users but only {n_eligible} qualify; "
        f"using {n_train} train + {n_test} test"
    )
    return n_train, n_test, note


def _task(user, split, history: Histories, start, end, n_profile, n_recent, n_candidates, universe, cdf,
          candidate_seed, like_min, dislike_max, n_targets=1, k=0) -> tuple[UserTask, list[int]]:
    """The task whose target is the user's (k+1)-th-last interaction, its profile window the
    ``n_profile`` interactions before the recent window of the earliest of ``n_targets`` targets."""
    profile_start = max(start, end - (n_profile + n_recent + n_targets))
    at = end - 1 - k  # the target's position
    recent_start = max(profile_start + n_profile, at - n_recent)

    def interactions(positions):
        return [Interaction(user_id=user, item_id=history.item_names[history.items[p]],
                            rating=float(history.ratings[p]), timestamp=int(history.timestamps[p]))
                for p in positions]

    profile_rows = range(profile_start, min(profile_start + n_profile, at))
    recent_rows = range(recent_start, at)
    target = interactions([at])[0]
    rng = np.random.default_rng(candidate_seed)
    rated = set(history.item_names[history.items[start:end]])
    candidates = [target.item_id] + _unrated_sample(rng, universe, cdf, rated, n_candidates - 1)
    primary = f"{split}-{user}"
    task = UserTask(
        task_id=f"{primary}#{k}" if k else primary,
        user_id=user,
        split=split,
        profile_window=interactions(profile_rows),
        recent_window=interactions(recent_rows),
        target=target,
        label=label_for(target.rating, like_min, dislike_max),
        candidates=[candidates[i] for i in rng.permutation(len(candidates))],
        candidate_seed=candidate_seed,
        profile_task=primary if k else None,
    )
    return task, [int(history.rows[p]) for p in [*profile_rows, *recent_rows]]  # the target's row: never looked up


def _unrated_sample(rng: np.random.Generator, universe: list[str], cdf: np.ndarray | None, rated: set[str],
                    k: int) -> list[str]:
    """``k`` distinct items outside ``rated``, uniformly (``cdf`` None) or in proportion to popularity
    (inverse-CDF draws). Rejection sampling: no per-user set difference over the whole catalogue.
    The caller has checked that ``k`` unrated items exist."""
    taken, picked = set(rated), []
    while len(picked) < k:
        if cdf is None:
            draws = rng.integers(0, len(universe), size=2 * k)
        else:
            draws = np.minimum(np.searchsorted(cdf, rng.random(2 * k), side="right"), len(universe) - 1)
        for index in draws:
            item = universe[index]
            if item not in taken:
                taken.add(item)
                picked.append(item)
                if len(picked) == k:
                    break
    return picked


def _attach_review_texts(data: InteractionData, tasks: list[UserTask], text_rows: dict[str, list[int]]) -> None:
    """Fill window interactions' review texts, reading only their rows of the prepared dataset."""
    if not data.has_text:
        return
    texts = data.texts(row for rows in text_rows.values() for row in rows)
    for task in tasks:
        for interaction, row in zip(task.profile_window + task.recent_window, text_rows[task.task_id]):
            interaction.text = texts.get(row)


def _label_counts(labels) -> dict[str, int]:
    counts = Counter(labels)
    return {label: counts.get(label, 0) for label in SENTIMENT_LABELS}


def _stats(lengths: pd.Series) -> dict[str, float]:
    if len(lengths) == 0:
        return {"min": 0, "median": 0.0, "max": 0}
    return {"min": int(lengths.min()), "median": float(lengths.median()), "max": int(lengths.max())}
