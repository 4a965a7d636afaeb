"""The baseline profile prompts (palr, rlmrec, kar, raw_history): same history, their own formats."""

from __future__ import annotations

import json
import re

import pytest
from omegaconf import OmegaConf

from lettingo.builtins import prompts as builtin_prompts
from lettingo.components import Context
from lettingo.prompts.baselines import KarPrompt, PalrPrompt, RawHistoryPrompt, RlmRecPrompt
from lettingo.run_data import RunData
from lettingo.testing import option
from lettingo.types import Interaction, Item, UserTask

LLM_BASELINES = ["palr", "rlmrec", "kar"]
BASELINES = LLM_BASELINES + ["raw_history"]

ITEMS = {
    "p1": Item("p1", "Alien (1979)", {"genres": ["Horror", "Sci-Fi"]}),
    "p2": Item("p2", "Notting Hill (1999)", {"genres": ["Comedy", "Romance"]}),
    "p3": Item("p3", "Heat (1995)", {"genres": ["Crime", "Thriller"]}),
    "p4": Item("p4", "Toy Story (1995)", {"genres": ["Animation", "Children's"]}),
    "r1": Item("r1", "Fargo (1996)", {"genres": ["Crime"]}),
    "r2": Item("r2", "Casablanca (1942)", {"genres": ["Drama", "Romance"]}),
    "t": Item("t", "The Matrix (1999)", {"genres": ["Action", "Sci-Fi"]}),
}
DATA = RunData(ITEMS)  # the label rule's defaults: like >= 4, dislike <= 2
WINDOW = (
    "1. Alien (1979); genres: Horror, Sci-Fi -> like\n"
    "2. Notting Hill (1999); genres: Comedy, Romance -> dislike\n"
    "3. Heat (1995); genres: Crime, Thriller -> neutral\n"
    "4. Toy Story (1995); genres: Animation, Children's -> like"
)


def make_task() -> UserTask:
    def it(item_id, rating, ts, text=None):
        return Interaction("u1", item_id, rating, ts, text)

    return UserTask(
        task_id="u1", user_id="u1", split="train",
        # stored out of time order: the prompt must sort oldest first
        profile_window=[it("p3", 3, 3), it("p1", 5, 1), it("p4", 4, 4), it("p2", 1, 2)],
        recent_window=[it("r1", 5, 10, "RECENT REVIEW"), it("r2", 2, 11)],
        target=it("t", 5, 20, "TARGET REVIEW"), label="like", candidates=["t"], candidate_seed=0,
    )


def build(name, **overrides):
    cfg = OmegaConf.merge(option("prompt", name), overrides)
    return Context(cache=None).build("prompt", cfg)


def user_text(messages) -> str:
    return "\n".join(m["content"] for m in messages if m["role"] == "user")


@pytest.mark.parametrize("name", BASELINES)
def test_prompt_shows_the_profile_window_oldest_first_with_sentiments(name):
    messages = build(name).messages(make_task(), DATA)
    assert [m["role"] for m in messages] == ["user"]
    text = user_text(messages)
    assert WINDOW in text  # every item, its sentiment word, numbered oldest first


@pytest.mark.parametrize("name", BASELINES)
def test_prompt_never_shows_the_recent_window_or_the_target(name):
    text = user_text(build(name, review_chars=100).messages(make_task(), DATA))
    for hidden in ("The Matrix", "Fargo", "Casablanca", "RECENT REVIEW", "TARGET REVIEW"):
        assert hidden not in text


@pytest.mark.parametrize("name", BASELINES)
def test_history_is_rendered_exactly_as_the_lettingo_prompt_renders_it(name):
    task = make_task()
    task.profile_window[1].text = "Terrifying.\n  Best {history} ever made, I watched it ten times"
    options = {"max_items": 3, "review_chars": 30}
    lettingo_text = user_text(build("lettingo", **options).messages(task, DATA))
    history = build(name, **options).history(task, DATA)
    assert history.startswith("1. Notting Hill")  # max_items keeps the 3 most recent
    assert "\n" + history + "\n" in lettingo_text


@pytest.mark.parametrize("name", LLM_BASELINES)
def test_llm_baselines_need_an_llm_and_take_an_optional_system_message(name):
    prompt = build(name, system="You are a careful analyst.")
    assert prompt.needs_llm is True and prompt.name == name
    messages = prompt.messages(make_task(), DATA)
    assert messages[0] == {"role": "system", "content": "You are a careful analyst."}
    assert [m["role"] for m in messages] == ["system", "user"]


def test_palr_asks_for_keywords_ordered_by_importance_with_supporting_items():
    text = user_text(build("palr").messages(make_task(), DATA))
    instruction = text.split(WINDOW)[1]
    assert "keywords to summarize the user's preferences" in instruction
    assert "ordered by importance, most important keyword first" in instruction
    assert "items from the history above that support it" in instruction
    assert "1. KEYWORD: ITEM A, ITEM B\n2. KEYWORD: ITEM C" in instruction  # the fixed output format


def test_rlmrec_asks_for_json_summarization_of_at_most_100_words_and_reasoning():
    text = user_text(build("rlmrec").messages(make_task(), DATA))
    instruction = text.split(WINDOW)[1]
    template = re.search(r"\{.*\}", instruction).group(0)
    assert list(json.loads(template)) == ["summarization", "reasoning"]  # valid JSON, both keys
    assert "likes and dislikes" in json.loads(template)["summarization"]
    assert 'The "summarization" must be no longer than 100 words.' in instruction
    assert "Output only the JSON object" in instruction


def test_kar_asks_for_factors_then_an_explained_preference_on_each():
    text = user_text(build("kar").messages(make_task(), DATA))
    instruction = text.split(WINDOW)[1]
    assert "Analyze the user's preferences and explain them" in instruction
    assert instruction.index("Step 1: List the factors") < instruction.index("Step 2: For each factor")
    assert "genre" in instruction
    assert "explain it with clear evidence from the items above" in instruction
    assert "Factors: FACTOR 1, FACTOR 2" in instruction


@pytest.mark.parametrize("name", LLM_BASELINES)
def test_instructions_are_domain_neutral(name):
    instruction = user_text(build(name).messages(make_task(), DATA)).split(WINDOW)[1].lower()
    for word in ("movie", "film", "book", "business", "restaurant", "watched", "purchased"):
        assert word not in instruction


def test_raw_history_is_the_rendered_window_and_needs_no_llm():
    prompt = build("raw_history")
    assert prompt.needs_llm is False and prompt.name == "raw_history"
    text = prompt.profile_text(make_task(), DATA)
    assert text == "The user's earlier items, oldest first, with how they felt:\n" + WINDOW
    assert prompt.messages(make_task(), DATA) == [{"role": "user", "content": text}]


def test_raw_history_honours_max_items_and_review_chars_and_hides_recent_and_target():
    task = make_task()
    task.profile_window[3].text = "Cheesy,   predictable and far too long for what it is"  # Notting Hill
    task.profile_window[0].text = "Tense."  # Heat
    text = build("raw_history", max_items=3, review_chars=20).profile_text(task, DATA)
    assert text.splitlines()[1:] == [
        '1. Notting Hill (1999); genres: Comedy, Romance -> dislike (review: "Cheesy, predictable...")',
        '2. Heat (1995); genres: Crime, Thriller -> neutral (review: "Tense.")',
        "3. Toy Story (1995); genres: Animation, Children's -> like",
    ]
    for hidden in ("Alien", "The Matrix", "Fargo", "Casablanca", "RECENT REVIEW", "TARGET REVIEW"):
        assert hidden not in text
    assert "review" not in build("raw_history").profile_text(task, DATA)  # off by default


def test_classes_construct_directly_with_their_own_names():
    assert [cls().name for cls in (PalrPrompt, RlmRecPrompt, KarPrompt, RawHistoryPrompt)] == BASELINES
    with pytest.raises(ValueError, match="max_items"):
        KarPrompt(max_items=0)


def test_every_prompt_option_is_registered_by_the_builtins_and_vice_versa():
    registered = {}
    builtin_prompts.lettingo_register_prompts(register=lambda name, factory: registered.setdefault(name, factory))
    assert all(option("prompt", name).name == name for name in registered)  # the option is the registered name
    assert set(BASELINES) | {"lettingo"} <= set(registered)
    for name in registered:
        assert build(name).name == name
