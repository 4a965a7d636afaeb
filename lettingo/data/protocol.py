"""The evaluation protocol: from a dataset to one :class:`UserTask` per user, the same for every dataset.

Rules (each one fixed here so that every run, dataset and machine agrees):

- **Time order.** A user's interactions are sorted by ``(timestamp, item_id)``, item ids compared
  as strings. Ratings given in the same second thus have one fixed order: among them, the one with
  the larger item id counts as later.
- **Duplicates.** When a user rated the same item more than once, only the last rating in that
  order is kept (the latest; equal timestamps keep the one that comes last in the file).
- **Windows.** The target is the user's last interaction; the recent window is the ``recent_window``
  (K) interactions before it; the profile window is the ``profile_window`` (N) interactions before
  those. Users with fewer than N + K + 1 interactions are skipped and counted.
- **Splits.** Eligible users, sorted by id, are shuffled with ``numpy.random.default_rng(seed)``;
  the first ``train_users`` form split "train", the next ``test_users`` split "test". When fewer
  users are eligible than asked for, both splits shrink in proportion and the summary says so.
- **Labels.** ``like`` if rating >= ``like_min``, ``dislike`` if rating <= ``dislike_max``, else
  ``neutral`` (thresholds come from the dataset config: they depend on its rating scale).
- **Candidates.** The target plus ``num_candidates - 1`` items the user never rated (in the whole
  history, not only the windows), drawn uniformly without replacement from the dataset's items,
  then shuffled. Each task has its own generator seeded with ``candidate_seed`` =
  :func:`derive_seed` (seed, user id), so a user's candidates do not depend on who else is in the run.
- **Guards.** :func:`check_task` runs on every task built; a task that could leak its target raises.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from lettingo.data import DatasetError, InteractionData
from lettingo.errors import LettingoError
from lettingo.types import SENTIMENT_LABELS, Interaction, UserTask

DEFAULTS = {
    "profile_window": 30,
    "recent_window": 10,
    "num_candidates": 20,
    "train_users": 3000,  # the paper's sizes
    "test_users": 2000,
    "seed": 0,
}


class LeakageError(LettingoError, ValueError):
    """A task whose prompt or windows could reveal its target."""


def label_for(rating: float, like_min: float, dislike_max: float) -> str:
    if rating >= like_min:
        return "like"
    if rating <= dislike_max:
        return "dislike"
    return "neutral"


def derive_seed(seed: int, user_id: str) -> int:
    """A per-user seed that is the same in every process (Python's ``hash`` of a string is not)."""
    digest = hashlib.sha256(f"{seed}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def check_task(task: UserTask) -> None:
    """Raise :class:`LeakageError` unless every window interaction strictly precedes the target,
    the target item is absent from both windows, and the target is among the candidates."""
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
    if target.item_id not in task.candidates:
        raise LeakageError(f"task {task.task_id}: the target item {target.item_id!r} is not among its candidates")


def build_tasks(data: InteractionData, protocol_cfg, dataset_cfg) -> tuple[list[UserTask], dict[str, Any]]:
    """Tasks for the train and test users, and a summary of what was kept, skipped and why."""
    settings = {key: protocol_cfg.get(key, default) for key, default in DEFAULTS.items()}
    n_profile, n_recent = int(settings["profile_window"]), int(settings["recent_window"])
    n_candidates, seed = int(settings["num_candidates"]), int(settings["seed"])
    like_min, dislike_max = float(dataset_cfg.get("like_min", 4)), float(dataset_cfg.get("dislike_max", 2))
    _check_settings(n_profile, n_recent, n_candidates, like_min, dislike_max, settings)
    min_interactions = n_profile + n_recent + 1

    frame, duplicates = _ordered(data.interactions)
    universe = sorted(data.items) if data.items else sorted(frame["item_id"].unique())
    lengths = frame.groupby("user_id", sort=True).size()
    rated_known = frame["item_id"].isin(set(universe)).groupby(frame["user_id"], sort=True).sum()
    unrated = len(universe) - rated_known

    too_short = lengths < min_interactions
    too_few_negatives = ~too_short & (unrated < n_candidates - 1)
    eligible = sorted(lengths.index[~too_short & ~too_few_negatives])
    n_train, n_test, shortfall = _split_sizes(
        len(eligible), int(settings["train_users"]), int(settings["test_users"]), len(lengths), min_interactions
    )
    order = np.random.default_rng(seed).permutation(len(eligible))
    shuffled = [eligible[i] for i in order]
    split_of = {user: "train" for user in shuffled[:n_train]}
    split_of.update({user: "test" for user in shuffled[n_train : n_train + n_test]})
    if {u for u, s in split_of.items() if s == "train"} & {u for u, s in split_of.items() if s == "test"}:
        raise AssertionError("train and test users overlap")  # impossible by construction; guarded anyway

    chosen = frame[frame["user_id"].isin(split_of)]
    histories = dict(tuple(chosen.groupby("user_id", sort=False)))
    tasks = []
    for user in shuffled[: n_train + n_test]:
        task = _task(user, split_of[user], histories[user], n_profile, n_recent, n_candidates,
                     universe, derive_seed(seed, user), like_min, dislike_max)
        check_task(task)
        tasks.append(task)

    kept_lengths = lengths[list(split_of)]
    summary = {
        "dataset": data.name,
        "seed": seed,
        "settings": {
            "profile_window": n_profile,
            "recent_window": n_recent,
            "num_candidates": n_candidates,
            "min_interactions": min_interactions,
            "like_min": like_min,
            "dislike_max": dislike_max,
        },
        "users": {
            "total": int(len(lengths)),
            "eligible": len(eligible),
            "kept": len(tasks),
            "skipped": int(too_short.sum() + too_few_negatives.sum()),
            "skipped_reasons": {
                "too_few_interactions": int(too_short.sum()),
                "too_few_unrated_items": int(too_few_negatives.sum()),
            },
            "eligible_unused": len(eligible) - len(tasks),
        },
        "splits": {
            split: {
                "requested": int(settings[f"{split}_users"]),
                "users": sum(1 for t in tasks if t.split == split),
                "labels": _label_counts(t.label for t in tasks if t.split == split),
            }
            for split in ("train", "test")
        },
        "history_length": {"all": _stats(lengths), "kept": _stats(kept_lengths)},
        "duplicates_dropped": duplicates,
        "shortfall": shortfall,
    }
    return tasks, summary


def _check_settings(n_profile, n_recent, n_candidates, like_min, dislike_max, settings) -> None:
    if n_profile < 0 or n_recent < 0:
        raise DatasetError(f"protocol windows must be >= 0, got profile_window={n_profile}, recent_window={n_recent}")
    if n_candidates < 1:
        raise DatasetError(f"protocol.num_candidates must be >= 1 (the target itself), got {n_candidates}")
    if like_min <= dislike_max:
        raise DatasetError(
            f"dataset like_min ({like_min}) must be greater than dislike_max ({dislike_max}); "
            f"ratings between them are neutral"
        )
    for split in ("train", "test"):
        if int(settings[f"{split}_users"]) < 1:
            raise DatasetError(f"protocol.{split}_users must be >= 1, got {settings[f'{split}_users']}")


def _ordered(interactions: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Interactions in (user, timestamp, item_id, file position) order, one per (user, item)."""
    frame = interactions.astype({"user_id": str, "item_id": str}).assign(_row=np.arange(len(interactions)))
    frame = frame.sort_values(["user_id", "timestamp", "item_id", "_row"])
    deduplicated = frame.drop_duplicates(["user_id", "item_id"], keep="last")
    return deduplicated.drop(columns="_row"), len(frame) - len(deduplicated)


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


def _task(user, split, history, n_profile, n_recent, n_candidates, universe, candidate_seed,
          like_min, dislike_max) -> UserTask:
    window = [_interaction(row) for row in history.tail(n_profile + n_recent + 1).itertuples(index=False)]
    target = window[-1]
    rng = np.random.default_rng(candidate_seed)
    candidates = [target.item_id] + _unrated_sample(rng, universe, set(history["item_id"]), n_candidates - 1)
    return UserTask(
        task_id=f"{split}-{user}",
        user_id=user,
        split=split,
        profile_window=window[:n_profile],
        recent_window=window[n_profile:-1],
        target=target,
        label=label_for(target.rating, like_min, dislike_max),
        candidates=[candidates[i] for i in rng.permutation(len(candidates))],
        candidate_seed=candidate_seed,
    )


def _unrated_sample(rng: np.random.Generator, universe: list[str], rated: set[str], k: int) -> list[str]:
    """``k`` distinct items outside ``rated``, uniformly (rejection sampling: no per-user set difference
    over the whole catalogue). The caller has checked that ``k`` unrated items exist."""
    taken, picked = set(rated), []
    while len(picked) < k:
        for index in rng.integers(0, len(universe), size=2 * k):
            item = universe[index]
            if item not in taken:
                taken.add(item)
                picked.append(item)
                if len(picked) == k:
                    break
    return picked


def _interaction(row) -> Interaction:
    return Interaction(
        user_id=str(row.user_id),
        item_id=str(row.item_id),
        rating=float(row.rating),
        timestamp=int(row.timestamp),
        text=row.text if isinstance(row.text, str) else None,
    )


def _label_counts(labels) -> dict[str, int]:
    counts = Counter(labels)
    return {label: counts.get(label, 0) for label in SENTIMENT_LABELS}


def _stats(lengths: pd.Series) -> dict[str, float]:
    if len(lengths) == 0:
        return {"min": 0, "median": 0.0, "max": 0}
    return {"min": int(lengths.min()), "median": float(lengths.median()), "max": int(lengths.max())}
