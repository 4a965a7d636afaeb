"""How a user's interactions are shown to an LLM: item text plus the user's sentiment word.

The profile prompt and the LLM recommender render histories the same way, so the words a profile
is written from are the words the recommender reads next to it.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from lettingo.run_data import RunData
from lettingo.types import Interaction, Item


class MissingItemError(KeyError):
    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def item_text(items: Mapping[str, Item], item_id: str, where: str) -> str:
    """``Item.describe()`` of one catalog item; a clear error when the catalog lacks it."""
    try:
        return items[item_id].describe()
    except KeyError:
        raise MissingItemError(
            f"item {item_id!r} ({where}) is not in the item catalog ({len(items)} items); "
            "check that the dataset's item metadata covers every interaction"
        ) from None


def format_interactions(
    interactions: Iterable[Interaction],
    data: RunData,
    where: str,
    review_chars: int = 0,
) -> str:
    """One numbered line per interaction: ``1. <item text> -> like``, and with ``review_chars`` > 0
    the start of the user's review after it (datasets with reviews: Amazon, Yelp, jsonl). The word is
    the label rule's (``data.label``), so history and target labels agree.

    Review text is data: it is pasted in as it is, never used as a template."""
    lines = []
    for number, interaction in enumerate(interactions, start=1):
        text = item_text(data.items, interaction.item_id, where)
        line = f"{number}. {text} -> {data.label(interaction.rating)}"
        if review_chars > 0 and interaction.text and interaction.text.strip():
            review = " ".join(interaction.text.split())
            if len(review) > review_chars:
                review = review[:review_chars].rstrip() + "..."
            line += f' (review: "{review}")'
        lines.append(line)
    return "\n".join(lines)
