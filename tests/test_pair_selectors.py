"""Built-in pair selectors: correct_vs_incorrect (the paper) and best_vs_worst."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lettingo.components import Context
from lettingo.types import Interaction, Judgement, Profile, UserTask

CONF = Path(__file__).resolve().parents[1] / "conf" / "pair_selector"
PROMPT = [{"role": "user", "content": "Describe user {}."}]


def task(task_id: str) -> UserTask:
    target = Interaction(f"user-{task_id}", "t", 5, 9)
    return UserTask(task_id, f"user-{task_id}", "train", [], [], target, "like", ["t"], 0)


def judged(task_id: str, sample: int, text: str, correct: bool, score: float, valid: bool = True,
           prompt=None) -> tuple[Profile, Judgement]:
    messages = prompt or [{"role": "user", "content": PROMPT[0]["content"].format(task_id)}]
    profile = Profile(task_id, "base", "lettingo", sample, text, messages)
    judgement = Judgement(profile.profile_id, task_id, "llm_sentiment", "like" if correct else "dislike",
                          correct, score, valid)
    return profile, judgement


def select(selector: str, rows, tasks=None, **overrides):
    cfg = OmegaConf.merge(OmegaConf.load(CONF / f"{selector}.yaml"), overrides)
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
