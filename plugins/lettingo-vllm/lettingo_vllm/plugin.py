"""Registers the ``vllm`` LLM backend and its settings (the `llm` option) with lettingo.

vllm is imported only when an engine is built, so listing plugins stays fast.
"""

from __future__ import annotations

from lettingo.hookspecs import hookimpl

from lettingo_vllm import __version__  # noqa: F401  (shown by `lettingo plugins`)
from lettingo_vllm.settings import VLLMSettings


def build_vllm_llm(cfg, ctx):
    from lettingo_vllm.backend import VLLMBackend

    return VLLMBackend.from_config(cfg)


build_vllm_llm.Settings = VLLMSettings  # the option's keys and defaults: llm=vllm
build_vllm_llm.implementation = "lettingo_vllm.backend:VLLMBackend"  # what `lettingo plugins --components` shows


@hookimpl
def lettingo_register_llms(register):
    register("vllm", build_vllm_llm)


@hookimpl
def lettingo_llm_price(llm_cfg):
    """A local model costs nothing per token."""
    return (0.0, 0.0) if llm_cfg.get("name") == "vllm" else None


@hookimpl
def lettingo_token_counter(llm_cfg):
    """The model's own tokenizer and chat template (no weights loaded)."""
    if llm_cfg.get("name") != "vllm":
        return None
    from lettingo.models import chat_token_counter

    return chat_token_counter(str(llm_cfg.get("model")))
