"""Shared fixtures for core and plugin tests."""

from __future__ import annotations

import os

import pytest

# Test mode, set here and nowhere else: third-party plugins never leak into tests (nor into the
# `lettingo` processes tests start); a test that wants them calls plugins.load_entrypoints().
os.environ.setdefault("LETTINGO_LOAD_PLUGINS", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A random 2-layer Llama with the real SmolLM2 tokenizer, saved as a transformers directory."""
    from lettingo.testing import tiny_model_dir

    return str(tiny_model_dir(tmp_path_factory.mktemp("tiny-llama")))


@pytest.fixture(autouse=True)
def isolated_call_cache(tmp_path, monkeypatch):
    """Each test gets its own LLM-call cache, so no test answers from another's calls."""
    monkeypatch.setenv("LETTINGO_CACHE_DIR", str(tmp_path / "lettingo-cache"))
