"""Datasets as one shape: a prepared interactions table plus item metadata, on disk as Parquet.

Every loader (``movielens``, ``amazon``, ``yelp``, ``jsonl``, a plugin's) streams its raw files
through a :class:`~lettingo.data.prepared.DatasetBuilder` and returns an
:class:`~lettingo.data.prepared.InteractionData`; the evaluation protocol in
:mod:`lettingo.data.protocol` only ever sees that shape, so splits, labels and guards are written
once for all datasets.
"""

from __future__ import annotations

from pathlib import Path

from lettingo.data.prepared import DatasetBuilder, InteractionData, cached_dataset
from lettingo.errors import DatasetError


class FileDataset:
    """A ``dataset`` component that reads files the user downloaded into ``dataset.path``."""

    def __init__(self, cfg, ctx=None):
        self.cfg = cfg
        self.ctx = ctx

    def folder(self, when_null: str) -> Path:
        """``dataset.path`` as a path; ``when_null`` is the error (what to download, where) if unset."""
        path = self.cfg.get("path")
        if path is None:
            raise DatasetError(when_null)
        return Path(str(path)).expanduser()


__all__ = ["DatasetError", "DatasetBuilder", "FileDataset", "InteractionData", "cached_dataset"]
