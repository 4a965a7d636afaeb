"""Held-out pairs: the split by user, the summary with clustered intervals, the verdict in words."""

from __future__ import annotations

import random

import pytest

from lettingo.preference_check import sample_pairs, split_heldout, summarize_scores, verdict
from lettingo.types import PreferencePair


def pairs_of(users: int, per_user: int = 2) -> list[PreferencePair]:
    return [PreferencePair(f"u{u}", f"t{u}", [{"role": "user", "content": "q"}], f"c{u}{k}", f"r{u}{k}", 0.5)
            for u in range(users) for k in range(per_user)]


def test_heldout_split_keeps_users_whole_is_seeded_and_ignores_order():
    pairs = pairs_of(20)
    train, held = split_heldout(pairs, 0.25, seed=0)
    assert len({p.user_id for p in held}) == 5 and len(held) == 10 and len(train) == 30
    assert not {p.user_id for p in train} & {p.user_id for p in held}
    shuffled = pairs[:]
    random.Random(1).shuffle(shuffled)
    assert {p.user_id for p in split_heldout(shuffled, 0.25, seed=0)[1]} == {p.user_id for p in held}
    assert {p.user_id for p in split_heldout(pairs, 0.25, seed=1)[1]} != {p.user_id for p in held}
    assert split_heldout(pairs, 0.0, seed=0) == (pairs, [])
    train, held = split_heldout(pairs_of(2), 0.9, seed=0)  # one user always trains
    assert len({p.user_id for p in train}) == 1 and len({p.user_id for p in held}) == 1
    with pytest.raises(ValueError, match="align.heldout_users"):
        split_heldout(pairs, 1.0, seed=0)


def test_sample_pairs_caps_the_training_pairs_scored():
    pairs = pairs_of(30)
    assert sample_pairs(pairs, None, 0) == pairs and sample_pairs(pairs, 100, 0) == pairs
    picked = sample_pairs(pairs, 8, 0)
    assert len(picked) == 8 and picked == sample_pairs(pairs, 8, 0) and set(map(id, picked)) <= set(map(id, pairs))


def row(user: str, reward: float, policy=(0.0, 0.0), reference=(0.0, 0.0)) -> dict:
    return {"user_id": user, "reward": reward, "policy_chosen": policy[0], "policy_rejected": policy[1],
            "reference_chosen": reference[0], "reference_rejected": reference[1]}


def test_summary_counts_ties_half_and_reads_likelihoods_before_and_after():
    rows = [row("a", 1.0, (-5, -9), (-7, -6)), row("a", -1.0, (-9, -5), (-9, -5)), row("b", 0.0)]
    summary = summarize_scores(rows, n_resamples=100)
    assert summary["pairs"] == 3 and summary["users"] == 2
    assert summary["reward_accuracy"]["value"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert summary["reward_margin"]["value"] == pytest.approx(0.0)
    assert summary["likelihood_preference_before"]["value"] == pytest.approx((0 + 0 + 0.5) / 3)
    assert summary["likelihood_preference_after"]["value"] == pytest.approx((1 + 0 + 0.5) / 3)
    low, high = summary["reward_accuracy"]["ci"]
    assert low <= summary["reward_accuracy"]["value"] <= high
    assert summarize_scores([]) == {"pairs": 0, "users": 0}


def summary(accuracy: float, users: int = 30) -> dict:
    return summarize_scores([row(f"u{i}", 1.0 if i < accuracy * users else -1.0) for i in range(users)],
                            n_resamples=300)


def test_verdict_says_whether_the_policy_moved_and_whether_it_generalised():
    assert verdict(summary(1.0), summary(0.9)).startswith("The learned preference holds on held-out users' pairs")
    fit = verdict(summary(1.0), summary(0.5))
    assert fit.startswith("The policy fit its training pairs") and "not above chance" in fit
    still = verdict(summary(0.5), summary(0.5))
    assert still.startswith("Training did not move the policy") and "aligner.learning_rate" in still
    assert verdict(summary(1.0), {"pairs": 0, "users": 0}).startswith("No held-out pairs")
