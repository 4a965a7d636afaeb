"""Datasets as one shape: a prepared interactions table plus item metadata, on disk as Parquet.

Every loader (``movielens``, ``amazon``, ``yelp``, ``jsonl``, a plugin's) streams its raw files
through a :class:`~lettingo.data.prepared.DatasetBuilder` and returns an
:class:`~lettingo.data.prepared.InteractionData`; the evaluation protocol in
:mod:`lettingo.data.protocol` only ever sees that shape, so splits, labels and guards are written
once for all datasets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from omegaconf import DictConfig, OmegaConf

from lettingo.data.prepared import DatasetBuilder, InteractionData, cached_dataset
from lettingo.errors import DatasetError
from lettingo.labels import DEFAULT_DISLIKE_MAX, DEFAULT_LIKE_MIN
from lettingo.settings import validated


@dataclass
class DatasetSettings:
    """What every file dataset takes."""

    name: str = "?"
    path: Optional[str] = None
    # Label thresholds: like if rating >= like_min, dislike if rating <= dislike_max, neutral in between
    # (the paper: 3 stars is neutral). Set them for your dataset's rating scale.
    like_min: float = DEFAULT_LIKE_MIN
    dislike_max: float = DEFAULT_DISLIKE_MAX
    # Ratings outside this range are bad records; llm_rating predicts on it. null: the loader's default.
    rating_scale: Optional[List[float]] = field(default_factory=lambda: [1, 5])
    # A single bad record (a malformed line, a rating outside the scale, a rating of an item without
    # metadata): skip (counted in the data summary) | fail (stop, naming the file and line).
    # Structure errors (missing, empty or truncated files; another format) always stop the run.
    on_bad_record: str = "skip"
    # More bad records than this share of all records means the wrong file or format: stop.
    max_bad_fraction: float = 0.2
    # The prepared dataset (Parquet) is cached under $LETTINGO_CACHE_DIR/datasets by file path, size and
    # modification time; false rebuilds it.
    cache: bool = True


class FileDataset:
    """A ``dataset`` component that reads files the user downloaded into ``dataset.path``."""

    Settings: type[DatasetSettings] = DatasetSettings

    def __init__(self, cfg, ctx=None):
        # built by hand (tests, notebooks): a plain dict is checked and completed here too
        self.cfg = validated("dataset", cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg), self.Settings)
        self.ctx = ctx

    def folder(self, when_null: str) -> Path:
        """``dataset.path`` as a path; ``when_null`` is the error (what to download, where) if unset."""
        path = self.cfg.path
        if path is None:
            raise DatasetError(when_null)
        return Path(str(path)).expanduser()


__all__ = ["DatasetError", "DatasetBuilder", "DatasetSettings", "FileDataset", "InteractionData", "cached_dataset"]
