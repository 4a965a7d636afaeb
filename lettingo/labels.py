"""The label rule, in one place: a rating's sentiment word.

Targets are labelled with it (``lettingo.data.protocol``) and histories are shown to LLMs with it
(``lettingo.prompts.history``), so the words a profile is written from agree with the labels.
``dataset.like_min`` / ``dataset.dislike_max`` set the thresholds; these are their defaults.
"""

from __future__ import annotations

from typing import Any

DEFAULT_LIKE_MIN = 4.0
DEFAULT_DISLIKE_MAX = 2.0


def label_for(rating: float, like_min: float, dislike_max: float) -> str:
    if rating >= like_min:
        return "like"
    if rating <= dislike_max:
        return "dislike"
    return "neutral"


def thresholds(dataset_cfg: Any) -> tuple[float, float]:
    """``(like_min, dislike_max)`` from a ``dataset`` config node (a missing or null key: the default)."""
    node = dataset_cfg if dataset_cfg is not None else {}
    like_min, dislike_max = node.get("like_min"), node.get("dislike_max")
    return (float(DEFAULT_LIKE_MIN if like_min is None else like_min),
            float(DEFAULT_DISLIKE_MAX if dislike_max is None else dislike_max))
