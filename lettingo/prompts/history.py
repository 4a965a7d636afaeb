"""How a user's interactions are shown to an LLM: item text plus the user's sentiment word.

The profile prompt and the LLM recommender render histories the same way, so the words a profile
is written from are the words the recommender reads next to it.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from omegaconf import OmegaConf

from lettingo.labels import label_for, thresholds
from lettingo.types import Interaction, Item


class MissingItemError(KeyError):
    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def sentiment_thresholds(cfg: Any) -> tuple[float, float]:
    """``(like_min, dislike_max)`` from the run config's ``dataset`` node (``lettingo.labels``)."""
    return thresholds(OmegaConf.select(cfg, "dataset", default=None) if cfg is not None else None)


def sentiment_word(rating: float, like_min: float, dislike_max: float) -> str:
    """The rule that labels targets (``lettingo.labels``), so history and label agree."""
    return label_for(rating, like_min, dislike_max)


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
    items: Mapping[str, Item],
    like_min: float,
    dislike_max: float,
    where: str,
    review_chars: int = 0,
) -> str:
    """One numbered line per interaction: ``1. <item text> -> like``, and with ``review_chars`` > 0
    the start of the user's review after it (datasets with reviews: Amazon, Yelp, jsonl).

    Review text is data: it is pasted in as it is, never used as a template."""
    lines = []
    for number, interaction in enumerate(interactions, start=1):
        text = item_text(items, interaction.item_id, where)
        line = f"{number}. {text} -> {sentiment_word(interaction.rating, like_min, dislike_max)}"
        if review_chars > 0 and interaction.text and interaction.text.strip():
            review = " ".join(interaction.text.split())
            if len(review) > review_chars:
                review = review[:review_chars].rstrip() + "..."
            line += f' (review: "{review}")'
        lines.append(line)
    return "\n".join(lines)
