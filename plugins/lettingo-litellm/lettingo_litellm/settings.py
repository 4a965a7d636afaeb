"""The ``litellm`` backend's options (imports nothing heavy: read when configs are composed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Optional

from omegaconf import MISSING


@dataclass
class LiteLLMSettings:
    """Any API model through LiteLLM (plugin distribution lettingo-litellm)."""

    unknown_key_hint: ClassVar[str] = ("an API key never goes in config (configs are saved with runs): put it in an "
                                       "environment variable and name that variable in api_key_env")

    name: str = "litellm"
    # a LiteLLM model string: gpt-4o-mini, anthropic/claude-3-5-haiku-latest, openai/<served-name> with
    # api_base for an OpenAI-compatible server
    model: str = MISSING
    api_base: Optional[str] = None     # e.g. http://127.0.0.1:8000/v1 for a local vLLM server
    # name of the environment variable holding the key; null: LiteLLM's default for the provider
    # (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...). The key itself never goes in config: configs are saved with runs.
    api_key_env: Optional[str] = None
    concurrency: int = 8               # requests in flight at once
    timeout_s: float = 60              # per request
    max_retries: int = 4               # on rate limits (429), server errors (5xx), timeouts and lost connections
    backoff_s: float = 1.0             # first wait before a retry; doubles each time (with jitter)
    backoff_max_s: float = 30.0        # longest wait between retries (a Retry-After header is honoured up to this)
    n_per_request: bool = True         # ask for n samples in one request; false: n requests (providers without n)
    label_scoring: str = "auto"        # auto | logprobs | text: how label_logprobs reads the answer (see README)
    top_logprobs: int = 20             # alternatives per position when scoring labels from log-probabilities
    extra_body: Dict[str, Any] = field(default_factory=dict)  # extra request fields passed through, e.g. {top_k: 20}
