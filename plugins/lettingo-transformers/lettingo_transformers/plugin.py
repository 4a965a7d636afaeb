"""Registers the ``transformers`` LLM backend and its settings (the `llm` option) with lettingo.

torch and transformers are imported only when an engine is built, so listing plugins stays fast.
"""

from __future__ import annotations

from lettingo.hookspecs import hookimpl

from lettingo_transformers import __version__  # noqa: F401  (shown by `lettingo plugins`)
from lettingo_transformers.settings import TransformersSettings


def build_transformers_llm(cfg, ctx):
    from lettingo_transformers.backend import TransformersLLM

    return TransformersLLM.from_config(cfg)


build_transformers_llm.Settings = TransformersSettings  # the option's keys and defaults: llm=transformers
build_transformers_llm.implementation = "lettingo_transformers.backend:TransformersLLM"  # what `lettingo plugins --components` shows


@hookimpl
def lettingo_register_llms(register):
    register("transformers", build_transformers_llm)


@hookimpl
def lettingo_llm_price(llm_cfg):
    """A local model costs nothing per token."""
    return (0.0, 0.0) if llm_cfg.get("name") == "transformers" else None


@hookimpl
def lettingo_token_counter(llm_cfg):
    """The model's own tokenizer and chat template (no weights loaded)."""
    if llm_cfg.get("name") != "transformers":
        return None
    from lettingo.models import chat_token_counter

    return chat_token_counter(str(llm_cfg.get("model")))
