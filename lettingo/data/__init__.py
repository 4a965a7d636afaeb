"""Datasets as one shape: an interactions table plus item metadata.

Every loader (``movielens``, ``amazon``, ``yelp``, ``jsonl``, a plugin's) returns an
:class:`InteractionData`; the evaluation protocol in :mod:`lettingo.data.protocol` only ever sees
this shape, so splits, labels and guards are written once for all datasets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from lettingo.errors import LettingoError
from lettingo.types import Item

INTERACTION_COLUMNS = ("user_id", "item_id", "rating", "timestamp", "text")


class DatasetError(LettingoError, ValueError):
    """Input data that cannot be used; the message names the file, the line when known, and the fix."""


def interactions_frame(user_ids, item_ids, ratings, timestamps, texts=None) -> pd.DataFrame:
    """An interactions table with the column types every stage relies on.

    ``user_id`` / ``item_id`` are strings (ids are names, never numbers to add), ``rating`` float,
    ``timestamp`` int64 (seconds), ``text`` a string or None (reviews; None when a dataset has none).
    """
    n = len(user_ids)
    return pd.DataFrame(
        {
            "user_id": pd.Series(user_ids, dtype=object).astype(str),
            "item_id": pd.Series(item_ids, dtype=object).astype(str),
            "rating": pd.Series(ratings, dtype="float64"),
            "timestamp": pd.Series(timestamps, dtype="int64"),
            "text": pd.Series([None] * n if texts is None else list(texts), dtype=object),
        }
    )


@dataclass
class InteractionData:
    """A loaded dataset: ``interactions`` (columns :data:`INTERACTION_COLUMNS`) and ``items`` by id."""

    name: str
    interactions: pd.DataFrame
    items: dict[str, Item] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in INTERACTION_COLUMNS if c not in self.interactions.columns]
        if missing:
            raise DatasetError(
                f"dataset {self.name!r}: the interactions table lacks columns {missing}; a loader must "
                f"return columns {list(INTERACTION_COLUMNS)} (see lettingo.data.interactions_frame)"
            )
