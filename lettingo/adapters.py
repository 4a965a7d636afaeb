"""Naming LoRA adapters by content, so every backend's identity and cache key agree on them."""

from __future__ import annotations

import hashlib
from pathlib import Path

# The files that decide what an adapter answers; READMEs and trainer state do not.
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


def adapter_digest(path: str | Path) -> str:
    """sha256 over an adapter's config and weights: names the adapter in identities and caches."""
    path = Path(path).expanduser()
    if not (path / "adapter_config.json").is_file():
        raise FileNotFoundError(
            f"{path} is not a PEFT adapter directory (no adapter_config.json in it); "
            "pass the folder an aligner saved its adapter to"
        )
    sha = hashlib.sha256()
    for name in ADAPTER_FILES:
        file = path / name
        if not file.is_file():
            continue
        sha.update(f"{name}\0{file.stat().st_size}\0".encode())
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                sha.update(chunk)
    return sha.hexdigest()
