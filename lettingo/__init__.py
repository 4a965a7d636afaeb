"""lettingo: LLM-written user profiles for recommenders, aligned with what helps the recommender."""

from __future__ import annotations

import importlib.metadata

try:
    __version__ = importlib.metadata.version("lettingo")
except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
