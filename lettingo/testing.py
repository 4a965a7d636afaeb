"""Helpers for tests of lettingo and of third-party plugins.

``tiny_model_dir`` writes a random two-layer Llama with the real SmolLM2 tokenizer: real loading
code, real generation and real training, in well under a second a call.
"""

from __future__ import annotations

import importlib
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from lettingo.models import prepare_packaged_model


def tiny_model_dir(path: str | Path, hidden_size: int = 64, layers: int = 2, seed: int = 0,
                   heads: int = 4, tie_word_embeddings: bool = True) -> Path:
    """Untied embeddings make greedy answers depend on the prompt (tied ones on a random model
    mostly repeat the prompt's last token); vLLM's CPU attention needs ``hidden_size / heads`` of
    32 or more."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    path = Path(path)
    if (path / "config.json").exists():
        return path
    tokenizer = AutoTokenizer.from_pretrained(prepare_packaged_model("smollm2-135m-instruct"))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 2),
        max_position_embeddings=4096,
        tie_word_embeddings=tie_word_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def tiny_overrides(tiny_model: str, train: int = 10, test: int = 10) -> list[str]:
    """A whole run on the tiny model in seconds: few users, short profiles, one short DPO epoch."""
    return [
        f"llm.model={tiny_model}",
        f"protocol.train_users={train}",
        f"protocol.test_users={test}",
        "protocol.profile_window=10",
        "explore.num_profiles=2",
        "explore.max_new_tokens=24",
        "aligner.batch_size=4",
        "aligner.max_length=512",
        "report.bootstrap_resamples=200",
    ]


def missing(message: str) -> NoReturn:
    """A real path a test needs is absent: skipped on a developer's machine, but a failure under CI
    (the ``CI`` variable set, as ``.ci/run`` and hosted CI do), where every real path must run."""
    import pytest

    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: a real path may not be skipped)", pytrace=False)
    pytest.skip(message)


def require_module(name: str, why: str) -> Any:
    """``importlib.import_module(name)``, or :func:`missing` saying ``why`` the test needs it."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        missing(f"{name} cannot be imported ({error}); {why}")


def require_program(*names: str, why: str) -> str:
    """The path of the first of ``names`` on PATH, or :func:`missing` saying ``why``."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    missing(f"none of {', '.join(names)} is on PATH; {why}")


@contextmanager
def plugin_registered(plugin, name: str):
    """Register ``plugin`` as ``name`` for the block; if it was already registered (say, through its
    entry point), it goes back under its old name afterwards."""
    from lettingo import plugins

    previous = plugins.pm.get_name(plugin) if plugins.pm.is_registered(plugin) else None
    if previous is not None:
        plugins.pm.unregister(plugin=plugin)
    plugins.register_plugin(plugin, name)
    try:
        yield plugin
    finally:
        plugins.unregister_plugin(name)
        if previous is not None:
            plugins.register_plugin(plugin, previous)


def rounded(value, digits: int = 7):
    """Floats (in nested dicts and lists) to ``digits`` significant digits: what differs between CPUs'
    BLAS kernels (AVX2 and AVX-512 sentence embeddings, from about the ninth digit) drops out."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value


def comparable_rows(path) -> list[dict]:
    """A stage file's rows without what two equal runs may differ in: wall-clock latency, and the
    sixth decimal of embedding similarities (sentence-transformers batches users differently)."""
    import json

    from lettingo.store import read_jsonl

    rows = read_jsonl(Path(path))
    for row in rows:
        row.get("usage", {}).pop("latency_s", None)
        if row.get("recommender") == "embedding_ranker":
            row["raw_output"] = {k: round(v, 4) for k, v in json.loads(row["raw_output"]).items()}
    return rows


def option(kind: str, name: str):
    """A config-group option's node as composing ``<kind>=<name>`` gives it: its settings' defaults
    (interpolations such as ``llm: ${llm}`` unresolved until the node sits in a whole config)."""
    from omegaconf import OmegaConf

    from lettingo import plugins, settings

    found = settings.settings_of(plugins.factory(kind, name))
    if found is None:
        raise LookupError(f"{kind} {name!r} has no Settings dataclass")
    return OmegaConf.structured(found)
