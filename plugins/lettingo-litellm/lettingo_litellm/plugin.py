"""Registers the ``litellm`` LLM backend and its settings (the `llm` option) with lettingo.

litellm is imported only when an engine is built (and only after LITELLM_LOCAL_MODEL_COST_MAP is
set, so importing it never reaches for the network).
"""

from __future__ import annotations

from lettingo.hookspecs import hookimpl

from lettingo_litellm import __version__  # noqa: F401  (shown by `lettingo plugins`)
from lettingo_litellm.settings import LiteLLMSettings


def build_litellm_llm(cfg, ctx):
    from lettingo_litellm.backend import LiteLLMBackend

    return LiteLLMBackend.from_config(cfg)


build_litellm_llm.Settings = LiteLLMSettings  # the option's keys and defaults: llm=litellm
build_litellm_llm.implementation = "lettingo_litellm.backend:LiteLLMBackend"  # what `lettingo plugins --components` shows
build_litellm_llm.trainable = False  # an API model: no weights here to train or to load an adapter into


@hookimpl
def lettingo_register_llms(register):
    register("litellm", build_litellm_llm)


@hookimpl
def lettingo_llm_price(llm_cfg):
    """USD per token from LiteLLM's price map (the copy inside the installed package)."""
    if llm_cfg.get("name") != "litellm":
        return None
    from lettingo_litellm.backend import price_per_token

    return price_per_token(str(llm_cfg.get("model")), llm_cfg.get("api_base"))


@hookimpl
def lettingo_token_counter(llm_cfg):
    """LiteLLM's token counter for the model (its tokenizer where LiteLLM knows it, else tiktoken's)."""
    if llm_cfg.get("name") != "litellm":
        return None
    import litellm

    model = str(llm_cfg.get("model"))
    return lambda messages: int(litellm.token_counter(model=model, messages=messages))
