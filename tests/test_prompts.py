"""The built-in `lettingo` profile prompt: profile window in, recent window and target never."""

from __future__ import annotations


import pytest
from omegaconf import OmegaConf

from lettingo.components import Context
from lettingo.prompts.history import MissingItemError
from lettingo.run_data import RunData
from lettingo.testing import option
from lettingo.types import Interaction, Item, UserTask


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


def make_task() -> UserTask:
    def it(item_id, rating, ts):
        return Interaction("u1", item_id, rating, ts)

    return UserTask(
        task_id="u1", user_id="u1", split="train",
        profile_window=[it("p1", 5, 1), it("p2", 1, 2), it("p3", 3, 3), it("p4", 4, 4)],
        recent_window=[it("r1", 5, 10), it("r2", 2, 11)],
        target=it("t", 5, 20), label="like", candidates=["t"], candidate_seed=0,
    )


def build(**overrides):
    cfg = OmegaConf.merge(option("prompt", "lettingo"), overrides)
    return Context(cache=None).build("prompt", cfg)


def user_text(messages) -> str:
    return "\n".join(m["content"] for m in messages if m["role"] == "user")


def test_prompt_holds_profile_window_items_with_sentiments():
    messages = build().messages(make_task(), DATA)
    assert [m["role"] for m in messages] == ["user"]
    text = user_text(messages)
    assert "Alien (1979); genres: Horror, Sci-Fi -> like" in text
    assert "Notting Hill (1999); genres: Comedy, Romance -> dislike" in text
    assert "Heat (1995); genres: Crime, Thriller -> neutral" in text
    assert "Toy Story (1995); genres: Animation, Children's -> like" in text
    assert text.index("Alien") < text.index("Notting Hill") < text.index("Toy Story")  # oldest first
    assert "profile" in text.lower() and "format" in text.lower()  # open-ended: no required format


def test_prompt_never_shows_target_or_recent_window():
    text = user_text(build().messages(make_task(), DATA))
    for hidden in ("The Matrix", "Fargo", "Casablanca"):
        assert hidden not in text


def test_max_items_keeps_the_most_recent_and_system_message_is_optional():
    messages = build(max_items=2, system="You are a careful analyst.").messages(make_task(), DATA)
    assert messages[0] == {"role": "system", "content": "You are a careful analyst."}
    text = user_text(messages)
    assert "Heat (1995)" in text and "Toy Story (1995)" in text
    assert "Alien" not in text and "Notting Hill" not in text


def test_sentiment_thresholds_come_from_the_dataset_config():
    # like_min 5: a 4-star rating is no longer "like"; dislike_max 3: a 3 is now "dislike"
    data = RunData.of(ITEMS, OmegaConf.create({"like_min": 5, "dislike_max": 3}))
    text = user_text(build().messages(make_task(), data))
    assert "Toy Story (1995); genres: Animation, Children's -> neutral" in text
    assert "Heat (1995); genres: Crime, Thriller -> dislike" in text


def test_missing_item_names_the_item_and_task():
    items = {k: v for k, v in ITEMS.items() if k != "p2"}
    with pytest.raises(MissingItemError, match=r"'p2'.*profile window of task u1"):
        build().messages(make_task(), RunData(items))


def test_option_file_name_is_the_registered_name():
    assert option("prompt", "lettingo").name == "lettingo"


def test_reviews_are_shown_only_when_asked_cut_to_length_and_never_the_targets():
    task = make_task()
    task.profile_window[0].text = "Terrifying.\n  Best {history} ever made, I watched it ten times since 1979"
    task.profile_window[1].text = "   "
    task.recent_window[0].text = "RECENT REVIEW"
    assert "review" not in user_text(build().messages(task, DATA)).split("Write a profile")[0]
    text = user_text(build(review_chars=40).messages(task, DATA))
    assert 'Alien (1979); genres: Horror, Sci-Fi -> like (review: "Terrifying. Best {history} ever made, I...")' in text
    assert "Notting Hill (1999); genres: Comedy, Romance -> dislike\n" in text  # blank review: nothing added
    assert "RECENT REVIEW" not in text
