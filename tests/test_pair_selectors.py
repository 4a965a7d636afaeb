"""Built-in pair selectors (correct_vs_incorrect, best_vs_worst, margin, between_writers), caps, length balance."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from lettingo.components import Context
from lettingo.testing import option
from lettingo.types import Interaction, Judgement, Profile, UserTask

PROMPT = [{"role": "user", "content": "Describe user {}."}]


def task(task_id: str) -> UserTask:
    target = Interaction(f"user-{task_id}", "t", 5, 9)
    return UserTask(task_id, f"user-{task_id}", "train", [], [], target, "like", ["t"], 0)


def judged(task_id: str, sample: int, text: str, correct: bool, score: float, valid: bool = True,
           prompt=None, generator: str = "base") -> tuple[Profile, Judgement]:
    messages = prompt or [{"role": "user", "content": PROMPT[0]["content"].format(task_id)}]
    profile = Profile(task_id, generator, "lettingo", sample, text, messages)
    judgement = Judgement(profile.profile_id, task_id, "llm_sentiment", "like" if correct else "dislike",
                          correct, score, valid)
    return profile, judgement


def select(selector: str, rows, tasks=None, **overrides):
    cfg = OmegaConf.merge(option("pair_selector", selector), overrides)
    tasks = tasks or {t: task(t) for t in {p.task_id for p, _ in rows}}
    profiles = [p for p, _ in rows]
    judgements = [j for _, j in rows][::-1]  # the join must not depend on order
    return Context(cache=None).build("pair_selector", cfg).select(tasks, profiles, judgements)


def ids(pairs):
    return [(p.chosen_id, p.rejected_id) for p in pairs]


MIXED = [
    judged("a", 0, "Loves space operas.", True, 0.9),
    judged("a", 1, "Enjoys sci-fi and hates romance.", True, 0.6),
    judged("a", 2, "Likes cooking shows.", False, 0.2),
    judged("a", 3, "Watches anything.", False, 0.4),
    judged("a", 4, "Loves space operas.", False, 0.3),  # same text as sample 0: never paired with it
    judged("a", 5, "   ", False, 0.0),  # empty: skipped
    judged("a", 6, "Invalid judgement.", False, 0.0, valid=False),  # unreadable output: skipped
    judged("b", 0, "Right.", True, 0.8),
    judged("b", 1, "Also right.", True, 0.7),  # task b: every profile correct
]


def test_correct_vs_incorrect_pairs_every_correct_with_every_incorrect():
    pairs = select("correct_vs_incorrect", MIXED)
    a = "a/base/lettingo/"
    expected = {(a + "0", a + "2"), (a + "0", a + "3"),
                (a + "1", a + "2"), (a + "1", a + "3"), (a + "1", a + "4")}
    assert set(ids(pairs)) == expected and len(pairs) == len(expected)  # task b (all correct): none
    assert [p.margin for p in pairs] == sorted((p.margin for p in pairs), reverse=True)
    first = pairs[0]
    assert ids([first]) == [(a + "0", a + "2")] and first.margin == pytest.approx(0.7)
    assert (first.chosen, first.rejected) == ("Loves space operas.", "Likes cooking shows.")
    assert (first.user_id, first.task_id) == ("user-a", "a")
    assert first.prompt_messages == [{"role": "user", "content": "Describe user a."}]
    assert all(p.chosen.strip() != p.rejected.strip() and p.rejected.strip() for p in pairs)
    assert ids(select("correct_vs_incorrect", MIXED[::-1])) == ids(pairs)  # deterministic


def test_correct_vs_incorrect_cap_keeps_the_largest_margins():
    pairs = select("correct_vs_incorrect", MIXED, max_pairs_per_user=2)
    a = "a/base/lettingo/"
    assert ids(pairs) == [(a + "0", a + "2"), (a + "0", a + "3")]  # margins 0.7 and 0.5


def test_identical_texts_and_all_wrong_tasks_give_no_pairs():
    rows = [judged("c", 0, "Same text.", True, 0.9), judged("c", 1, "Same text. ", False, 0.1),
            judged("d", 0, "Wrong.", False, 0.3), judged("d", 1, "Also wrong.", False, 0.1)]
    assert select("correct_vs_incorrect", rows) == []
    assert select("best_vs_worst", rows[:2]) == []  # best and worst say the same thing


def test_best_vs_worst_pairs_the_extremes_even_when_all_are_correct():
    pairs = select("best_vs_worst", MIXED)
    assert ids(pairs) == [("a/base/lettingo/0", "a/base/lettingo/2"), ("b/base/lettingo/0", "b/base/lettingo/1")]
    assert [p.margin for p in pairs] == pytest.approx([0.7, 0.1])
    assert [p.user_id for p in pairs] == ["user-a", "user-b"]


def test_best_vs_worst_needs_a_margin():
    tie = [judged("e", 0, "One.", True, 0.5), judged("e", 1, "Two.", False, 0.5)]
    assert select("best_vs_worst", tie) == []  # exact ties never pair, even with min_margin 0
    assert len(select("best_vs_worst", MIXED, min_margin=0.5)) == 1  # only task a (0.7) is wide enough


def test_profiles_with_different_prompts_are_not_compared():
    other = [{"role": "user", "content": "A different prompt."}]
    rows = [judged("f", 0, "Right.", True, 0.9), judged("f", 1, "Wrong.", False, 0.1, prompt=other)]
    assert select("correct_vs_incorrect", rows) == []
    assert select("best_vs_worst", rows) == []


def test_conflicting_judgements_and_unknown_tasks_are_errors():
    profile, judgement = judged("g", 0, "Text.", True, 0.9)
    other = Judgement(judgement.profile_id, "g", "embedding_ranker", ["t"], False, 0.1, True)
    with pytest.raises(ValueError, match="two different judgements"):
        select("correct_vs_incorrect", [(profile, judgement), (profile, other)])
    with pytest.raises(KeyError, match="task 'g'"):
        select("best_vs_worst", [(profile, judgement)], tasks={"h": task("h")})


def test_margin_pairs_every_profile_ahead_by_delta():
    a = "a/base/lettingo/"
    pairs = select("margin", MIXED, delta=0.3)
    # scores a: 0=0.9 1=0.6 2=0.2 3=0.4 4=0.3 ("Loves space operas." again: never with sample 0)
    assert set(ids(pairs)) == {(a + "0", a + "1"), (a + "0", a + "2"), (a + "0", a + "3"), (a + "1", a + "2"),
                               (a + "1", a + "4")}  # graded: two right profiles can pair
    assert all(p.margin >= 0.3 - 1e-9 for p in pairs)
    assert [p.margin for p in pairs] == sorted((p.margin for p in pairs), reverse=True)
    assert len(select("margin", MIXED, delta=0.05)) > len(pairs)  # task b's 0.1 difference now counts
    with pytest.raises(ValueError, match="delta must be > 0"):
        select("margin", MIXED, delta=0)


@pytest.mark.parametrize("selector", ["correct_vs_incorrect", "best_vs_worst", "margin"])
def test_every_selector_caps_pairs_per_user_keeping_the_largest_margins(selector):
    other = [{"role": "user", "content": "Second prompt for a."}]  # best_vs_worst: one pair per prompt
    rows = MIXED + [judged("a", 7, "Second prompt, good.", True, 1.0, prompt=other),
                    judged("a", 8, "Second prompt, bad.", False, 0.0, prompt=other)]
    uncapped = select(selector, rows)
    capped = select(selector, rows, max_pairs_per_user=1)
    for user in {p.user_id for p in uncapped}:
        best = max(p.margin for p in uncapped if p.user_id == user)
        kept = [p for p in capped if p.user_id == user]
        assert len(kept) == 1 and kept[0].margin == best
    assert len([p for p in uncapped if p.user_id == "user-a"]) >= 2


def long_and_short(task_id: str, chosen_longer: bool, margin: float) -> list:
    long, short = f"{task_id}: a long and detailed profile of this user's tastes.", f"{task_id}: short."
    good, bad = (long, short) if chosen_longer else (short, long)
    return [judged(task_id, 0, good, True, 0.5 + margin / 2), judged(task_id, 1, bad, False, 0.5 - margin / 2)]


def test_length_balance_keeps_as_many_chosen_longer_as_chosen_shorter_pairs():
    rows = (long_and_short("l1", True, 0.9) + long_and_short("l2", True, 0.5) + long_and_short("l3", True, 0.2)
            + long_and_short("s1", False, 0.3))
    plain = select("correct_vs_incorrect", rows)
    assert sum(len(p.chosen) > len(p.rejected) for p in plain) == 3
    cfg = OmegaConf.merge(option("pair_selector", "correct_vs_incorrect"), {"length_balance": True})
    selector = Context(cache=None).build("pair_selector", cfg)
    balanced = selector.select({t: task(t) for t in ("l1", "l2", "l3", "s1")}, [p for p, _ in rows],
                               [j for _, j in rows])
    assert [p.task_id for p in balanced] == ["l1", "s1"]  # of the chosen-longer, the largest margin stays
    assert selector.last_summary["dropped_by_length_balance"] == 2
    assert selector.last_summary["before_length_balance"] == {"pairs": 4, "chosen_longer": 3, "chosen_shorter": 1}


def test_pairs_across_generators_use_the_shared_prompt():
    rows = [judged("m", 0, "Written by model A.", True, 0.9, generator="model-a"),
            judged("m", 0, "Written by model B.", False, 0.1, generator="model-b")]
    pairs = select("correct_vs_incorrect", rows)
    assert ids(pairs) == [("m/model-a/lettingo/0", "m/model-b/lettingo/0")]
    assert pairs[0].prompt_messages == [{"role": "user", "content": "Describe user m."}]


def test_between_writers_pairs_the_best_profile_with_another_writers_worst():
    rows = [
        judged("a", 0, "Own prompt, best.", True, 0.9, generator="lettingo"),
        judged("a", 1, "Own prompt, worst.", False, 0.1, generator="lettingo"),
        judged("a", 0, "PALR way, good.", True, 0.6, generator="palr"),
        judged("a", 1, "PALR way, poor.", False, 0.3, generator="palr"),
        judged("b", 0, "Own prompt.", False, 0.2, generator="lettingo"),
        judged("b", 0, "PALR way.", True, 0.7, generator="palr"),
        judged("c", 0, "One writer only.", True, 0.8, generator="lettingo"),
        judged("c", 1, "One writer only, worse.", False, 0.1, generator="lettingo"),
        judged("d", 0, "Tie.", True, 0.5, generator="lettingo"),
        judged("d", 0, "Tie too.", True, 0.5, generator="palr"),
    ]
    pairs = select("between_writers", rows)
    # a: best (lettingo) against palr's worst, not against lettingo's own worst; b: palr wins;
    # c: one writer, no pair; d: a tie, no pair
    assert ids(pairs) == [("a/lettingo/lettingo/0", "a/palr/lettingo/1"), ("b/palr/lettingo/0", "b/lettingo/lettingo/0")]
    assert [p.margin for p in pairs] == pytest.approx([0.6, 0.5])
    assert ids(select("between_writers", rows, min_margin=0.55)) == [("a/lettingo/lettingo/0", "a/palr/lettingo/1")]
    with pytest.raises(ValueError, match="min_margin"):
        select("between_writers", rows, min_margin=-0.1)
