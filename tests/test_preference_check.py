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


def test_pairs_between_two_writers_show_a_learned_writer_preference():
    """A policy that learned "the palr writer's style helps" prefers palr's profile whichever won; its
    reward accuracy on such pairs is then the share the judge gave palr (here 1 of 3), and the
    between-writers summary says what the accuracy alone hides."""
    from lettingo.preference_check import between_writers, writers_text
    from lettingo.reporting.markdown import pair_check_section

    writer = {"a/p": "palr", "a/l": "lettingo", "b/p": "palr", "b/l": "lettingo", "c/p": "palr", "c/l": "lettingo",
              "d/l1": "lettingo", "d/l2": "lettingo"}
    rows = [{"chosen_id": "a/p", "rejected_id": "a/l", "reward": 0.3},    # palr chosen, policy agrees
            {"chosen_id": "b/l", "rejected_id": "b/p", "reward": -0.2},   # lettingo chosen, policy prefers palr
            {"chosen_id": "c/l", "rejected_id": "c/p", "reward": -0.1},
            {"chosen_id": "d/l1", "rejected_id": "d/l2", "reward": 0.5}]  # one writer: not between writers
    [entry] = between_writers(rows, writer)
    assert entry == {"writers": ["lettingo", "palr"], "pairs": 3, "policy_prefers": {"lettingo": 0, "palr": 3},
                     "judge_chose": {"lettingo": 2, "palr": 1}}
    text = writers_text(entry)
    assert text == ("Between the lettingo and palr writers (3 held-out pairs): the trained policy prefers palr's "
                    "profile in 3 of 3; the judge chose palr's in 1 of 3.")
    check = {"verdict": "v", "train": {}, "heldout": {}, "heldout_between_writers": [entry]}
    assert f"- {text}" in pair_check_section(check)
    assert between_writers(rows[3:], writer) == []  # a single writer: nothing to say


def test_the_verdict_names_a_learned_writer_preference():
    from lettingo.preference_check import verdict

    held = {"pairs": 30, "users": 30, "reward_accuracy": {"value": 0.4, "ci": [0.23, 0.57]}}
    train = {"pairs": 8, "users": 8, "reward_accuracy": {"value": 0.62, "ci": [0.38, 0.88]}}
    entry = {"writers": ["lettingo", "palr"], "pairs": 25, "policy_prefers": {"lettingo": 1, "palr": 24},
             "judge_chose": {"lettingo": 15, "palr": 10}}
    text = verdict(train, held, [entry])
    assert text.startswith("The policy learned to prefer the palr writer's profiles: it prefers them in 24 of 25")
    assert "the judge chose them in 10" in text
    weak = {**entry, "policy_prefers": {"lettingo": 10, "palr": 15}}
    assert verdict(train, held, [weak]).startswith("Training did not move the policy")  # 60%: no style shown
    assert verdict(train, held) == verdict(train, held, [])
