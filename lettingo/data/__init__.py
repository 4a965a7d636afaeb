"""Datasets as one shape: a prepared interactions table plus item metadata, on disk as Parquet.

Every loader (``movielens``, ``amazon``, ``yelp``, ``jsonl``, a plugin's) streams its raw files
through a :class:`~lettingo.data.prepared.DatasetBuilder` and returns an
:class:`~lettingo.data.prepared.InteractionData`; the evaluation protocol in
:mod:`lettingo.data.protocol` only ever sees that shape, so splits, labels and guards are written
once for all datasets.
"""

from __future__ import annotations

from lettingo.errors import LettingoError


class DatasetError(LettingoError, ValueError):
    """Input data that cannot be used; the message names the file, the line when known, and the fix."""


from lettingo.data.prepared import DatasetBuilder, InteractionData, cached_dataset  # noqa: E402

__all__ = ["DatasetError", "DatasetBuilder", "InteractionData", "cached_dataset"]
