"""Did alignment learn anything that carries over to other users?

Training loss and training reward accuracy only say that the policy fit its own pairs. The pairs of
a share of the training users (``align.heldout_users``) are kept out of training; after each round
the aligner scores them (DPO's implicit reward: the trained policy against the model the round
started from), and so a sample of the training pairs. Accuracy is the share of pairs whose chosen
profile gets the higher reward (an exact tie counts half); intervals resample users, whose pairs
are not independent. The verdict says in words whether the policy moved and whether it generalised.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Sequence

import numpy as np

from lettingo.metrics import clustered_mean_ci
from lettingo.types import PreferencePair


def split_heldout(pairs: Sequence[PreferencePair], share: float, seed: int) -> tuple[list, list]:
    """(training pairs, held-out pairs): the pairs of ``round(share x users)`` users, picked by a
    seeded hash of the user id, so the split does not depend on pair order and users never straddle it."""
    if not 0.0 <= share < 1.0:
        raise ValueError(f"align.heldout_users must be in [0, 1), got {share}")
    users = sorted({p.user_id for p in pairs},
                   key=lambda u: hashlib.sha256(f"{seed}/heldout/{u}".encode()).hexdigest())
    count = min(len(users) - 1, round(share * len(users))) if share > 0 and len(users) > 1 else 0
    held = set(users[:count])
    return [p for p in pairs if p.user_id not in held], [p for p in pairs if p.user_id in held]


def sample_pairs(pairs: Sequence[PreferencePair], limit: int | None, seed: int) -> list[PreferencePair]:
    """At most ``limit`` pairs (null: all), a seeded choice: scoring costs a forward pass per model."""
    if limit is None or len(pairs) <= int(limit):
        return list(pairs)
    chosen = np.random.default_rng(seed).choice(len(pairs), size=int(limit), replace=False)
    return [pairs[i] for i in sorted(chosen)]


def summarize_scores(rows: list[dict[str, Any]], n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Reward accuracy and mean reward margin with user-clustered intervals, and how often the
    reference (before) and the policy (after) give the chosen profile the higher likelihood."""
    if not rows:
        return {"pairs": 0, "users": 0}
    users = [r["user_id"] for r in rows]
    reward = np.array([r["reward"] for r in rows], dtype=float)
    wins = np.where(reward > 0, 1.0, np.where(reward == 0, 0.5, 0.0))

    def prefers(prefix):
        diff = np.array([r[f"{prefix}_chosen"] - r[f"{prefix}_rejected"] for r in rows], dtype=float)
        return np.where(diff > 0, 1.0, np.where(diff == 0, 0.5, 0.0))

    def ci(values):
        out = clustered_mean_ci(values, users, n_resamples=n_resamples, seed=seed)
        return {"value": out["value"], "ci": out["ci"]}

    return {"pairs": len(rows), "users": len(set(users)),
            "reward_accuracy": ci(wins), "reward_margin": ci(reward),
            "likelihood_preference_before": ci(prefers("reference")),
            "likelihood_preference_after": ci(prefers("policy"))}


def between_writers(rows: list[dict[str, Any]], writer_of: dict[str, str]) -> list[dict[str, Any]]:
    """For pairs whose two profiles come from different writers (``explore.generators``): per pair of
    writers, how often the trained policy prefers each writer's profile (positive implicit reward
    for it), and how often the judge chose it. A policy that learned "this writer's style helps"
    prefers that writer's profile whichever won, so its reward accuracy on these pairs is the share
    the judge gave that writer: near 0.5 when users' labels split between the writers."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        chosen, rejected = writer_of.get(row["chosen_id"]), writer_of.get(row["rejected_id"])
        if chosen is None or rejected is None or chosen == rejected:
            continue
        pair = tuple(sorted((chosen, rejected)))
        entry = groups.setdefault(pair, {"writers": list(pair), "pairs": 0,
                                         "policy_prefers": dict.fromkeys(pair, 0), "judge_chose": dict.fromkeys(pair, 0)})
        entry["pairs"] += 1
        entry["judge_chose"][chosen] += 1
        if row["reward"] != 0:
            entry["policy_prefers"][chosen if row["reward"] > 0 else rejected] += 1
    return [groups[k] for k in sorted(groups)]


def _favoured(entry: dict[str, Any]) -> str:
    """The writer whose profiles the trained policy prefers more often."""
    return max(entry["writers"], key=lambda w: entry["policy_prefers"][w])


def writers_text(entry: dict[str, Any]) -> str:
    """One sentence on a pair of writers' held-out pairs (see :func:`between_writers`)."""
    n = entry["pairs"]
    favoured = _favoured(entry)
    return (f"Between the {' and '.join(entry['writers'])} writers ({n} held-out pairs): the trained policy "
            f"prefers {favoured}'s profile in {entry['policy_prefers'][favoured]} of {n}; the judge chose "
            f"{favoured}'s in {entry['judge_chose'][favoured]} of {n}.")


def writer_preference(entries: list[dict[str, Any]], min_pairs: int = 10, min_share: float = 0.8):
    """``(writer, entry)`` when the trained policy prefers one writer's profiles in at least
    ``min_share`` of at least ``min_pairs`` held-out pairs between writers; else None."""
    for entry in entries:
        favoured = _favoured(entry)
        if entry["pairs"] >= min_pairs and entry["policy_prefers"][favoured] >= min_share * entry["pairs"]:
            return favoured, entry
    return None


def verdict(train: dict[str, Any], heldout: dict[str, Any], writers: list[dict[str, Any]] | None = None) -> str:
    """One sentence a reader can act on, from the two summaries' intervals (and, with several
    explore generators, from how the policy ranks the writers: :func:`between_writers`)."""
    def accuracy(summary):
        row = summary.get("reward_accuracy")
        return (row["value"], row["ci"]) if row else (math.nan, [math.nan, math.nan])

    def text(summary):
        value, (low, high) = accuracy(summary)
        return f"{value:.2f} [{low:.2f}, {high:.2f}] on {summary.get('pairs', 0)} pairs of {summary.get('users', 0)} users"

    if not heldout.get("pairs"):
        return ("No held-out pairs (align.heldout_users is 0 or too few users): nothing shows whether the "
                "learned preference carries over to other users.")
    moved = bool(train.get("pairs")) and accuracy(train)[1][0] > 0.5
    generalised = accuracy(heldout)[1][0] > 0.5
    style = writer_preference(writers or [])
    if style and not generalised:
        favoured, entry = style
        return (f"The policy learned to prefer the {favoured} writer's profiles: it prefers them in "
                f"{entry['policy_prefers'][favoured]} of {entry['pairs']} held-out pairs between writers, whichever "
                f"won (the judge chose them in {entry['judge_chose'][favoured]}). Per-pair reward accuracy on "
                f"held-out pairs is {text(heldout)}: one style for every user matches the label only where that "
                "writer's profile won. Whether that style helps shows on the test users (LettinGo (aligned) "
                "against base profiles).")
    if generalised:
        return (f"The learned preference holds on held-out users' pairs: reward accuracy {text(heldout)}, "
                "above chance (0.5).")
    if not moved:
        return (f"Training did not move the policy measurably: reward accuracy on its own pairs "
                f"{text(train)}; held-out {text(heldout)}. Try a higher learning rate or more epochs "
                "(aligner.learning_rate, aligner.epochs).")
    return (f"The policy fit its training pairs ({text(train)}) but the preference does not carry over "
            f"to held-out users' pairs ({text(heldout)}, not above chance): it learned these pairs, not "
            "what makes a profile help. More users and pairs, less noisy judgements, or fewer epochs may help.")
