"""The interface every LLM backend implements, and the cache that wraps all of them.

A backend plugin (``transformers``, ``vllm``, ``litellm``, ...) returns an object with the
:class:`LLM` methods. Core never calls a backend directly: :func:`lettingo.components.Context.llm`
wraps it in :class:`CachedLLM`, so every backend gets the persistent call cache for free.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Messages = list[dict[str, str]]
log = logging.getLogger("lettingo.llm")


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0  # 0 means greedy
    top_p: float = 1.0
    max_new_tokens: int = 256
    n: int = 1  # samples per prompt

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Generation:
    text: str
    usage: dict[str, Any] = field(default_factory=dict)  # prompt_tokens, completion_tokens, latency_s, cached


def check_generate_args(prompts: list[Messages], params: SamplingParams, seeds: list[int]) -> None:
    """The argument checks every backend's ``generate`` starts with."""
    if len(seeds) != len(prompts):
        raise ValueError(f"generate: {len(prompts)} prompts but {len(seeds)} seeds; give one seed per prompt")
    if params.n < 1 or params.max_new_tokens < 1:
        raise ValueError(f"generate: n and max_new_tokens must be at least 1, got {params}")


_SLOT = "\ue000lettingo-content-{}\ue001"  # private-use characters: never in a template


def encode_chat(tokenizer, messages: Messages, max_input_tokens: int) -> list[int]:
    """Chat-template token ids ending in the generation prompt, cut to their last
    ``max_input_tokens``. Local backends (transformers, vllm) share it, so both see the same tokens.

    Message contents are data (reviews, titles, profiles): a ``<|im_start|>`` written inside one
    must stay text, never become the control token that starts a new turn. Contents holding a
    special token's text are tokenized on their own with ``split_special_tokens=True``; the
    template around them keeps its real special tokens.
    """
    special = set(getattr(tokenizer, "all_special_tokens", [])) | {
        token.content for token in getattr(tokenizer, "added_tokens_decoder", {}).values()}
    if not any(token and token in m["content"] for m in messages for token in special):
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = tokenizer.encode(text, add_special_tokens=False)  # the template has its own
    else:
        slots = [{**m, "content": _SLOT.format(i)} for i, m in enumerate(messages)]
        rest = tokenizer.apply_chat_template(slots, add_generation_prompt=True, tokenize=False)
        ids = []
        for i, message in enumerate(messages):
            before, rest = rest.split(_SLOT.format(i), 1)
            ids += tokenizer.encode(before, add_special_tokens=False)
            ids += tokenizer.encode(message["content"], add_special_tokens=False, split_special_tokens=True)
        ids += tokenizer.encode(rest, add_special_tokens=False)
    if len(ids) > max_input_tokens:
        log.warning("prompt of %d tokens cut to its last %d (max_input_tokens)", len(ids), max_input_tokens)
        ids = ids[-max_input_tokens:]
    return ids


def failed(generation: Generation) -> bool:
    """A backend returns a request that failed for good (after its retries) as generations with
    ``usage["error"]`` (and label scores of NaN) instead of raising."""
    return "error" in generation.usage


@runtime_checkable
class LLM(Protocol):
    def identity(self) -> dict[str, Any]:
        """What determines this engine's outputs: backend, model, adapter digest. Never secrets."""

    def generate(
        self, prompts: list[Messages], params: SamplingParams, seeds: list[int]
    ) -> list[list[Generation]]:
        """For each chat prompt, ``params.n`` samples. Prompt ``i`` is sampled with ``seeds[i]``,
        so its samples do not depend on which other prompts share the batch."""

    def label_logprobs(self, prompts: list[Messages], labels: list[str]) -> list[dict[str, float]]:
        """For each chat prompt, the log-probability of each label as the assistant's whole answer."""

    def with_adapter(self, adapter_path: str | None) -> "LLM":
        """The same base engine (shared weights) answering through a LoRA adapter, or none."""

    def close(self) -> None:
        """Free the engine's memory."""

    # Optional: ``take_usage() -> dict`` returns (and resets) the prompt/completion tokens, latency
    # and cost of the label scoring since the last call, for the ledger; generation reports its
    # usage per Generation instead.
