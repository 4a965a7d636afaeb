"""Registers the ``litellm`` LLM backend and its config-group option with lettingo.

litellm is imported only when an engine is built (and only after LITELLM_LOCAL_MODEL_COST_MAP is
set, so importing it never reaches for the network).
"""

from __future__ import annotations

from lettingo.hookspecs import hookimpl

from lettingo_litellm import __version__  # noqa: F401  (shown by `lettingo plugins`)


def build_litellm_llm(cfg, ctx):
    from lettingo_litellm.backend import LiteLLMBackend

    return LiteLLMBackend.from_config(cfg)


build_litellm_llm.implementation = "lettingo_litellm.backend:LiteLLMBackend"  # what `lettingo plugins --components` shows


@hookimpl
def lettingo_register_llms(register):
    register("litellm", build_litellm_llm)


@hookimpl
def lettingo_config_searchpath():
    return ["pkg://lettingo_litellm/conf"]


@hookimpl
def lettingo_llm_price(llm_cfg):
    """USD per token from LiteLLM's price map (the copy inside the installed package)."""
    if llm_cfg.get("name") != "litellm":
        return None
    from lettingo_litellm.backend import price_per_token

    return price_per_token(str(llm_cfg.get("model")), llm_cfg.get("api_base"))
