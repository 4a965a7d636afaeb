"""The ``litellm`` LLM backend: any LiteLLM model (API providers, OpenAI-compatible servers).

Requests run ``concurrency`` at a time. Rate limits, 5xx answers, timeouts, lost connections and
200s that are not a completion (a truncated body, a proxy's HTML page, no choices) are retried with
exponential backoff; a request that still fails is *recorded*, not raised, naming its endpoint: its
generations come back with empty text and ``usage["error"]``, and its label scores as NaN. The
pipeline counts them, keeps going, and stops only past its configured failure rate; the call
cache never stores a failure, so a rerun asks again.

The API key is read from the environment at each request and passed to LiteLLM; it is never part
of the identity (so never of a cache key), and it is scrubbed from every error message we keep.
"""

from __future__ import annotations

import logging
import math
import os
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from omegaconf import DictConfig, OmegaConf

from lettingo.errors import ComponentConfigError
from lettingo.llm import Generation, Messages, SamplingParams, check_generate_args
from lettingo.settings import defaults, options
from lettingo_litellm.settings import LiteLLMSettings

log = logging.getLogger("lettingo.litellm")

# every option but the model, with its default (direct construction in notebooks and tests)
DEFAULTS: dict[str, Any] = {k: v for k, v in defaults(LiteLLMSettings).items() if k not in ("name", "model")}
LABEL_SCORING = ("auto", "logprobs", "text")


def import_litellm():
    """LiteLLM fetches its model price map from the internet at import unless told not to."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


def public_base(api_base: str | None) -> str | None:
    """The server address without credentials or query (``https://user:key@host/v1?key=`` ->
    ``https://host/v1``): what may go into identities and cache keys."""
    if not api_base:
        return None
    parts = urlsplit(api_base)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def price_per_token(model: str, api_base: str | None = None) -> tuple[float, float] | None:
    """(USD per prompt token, per completion token); a self-hosted server (api_base) is free when its
    model is not a priced one; None when LiteLLM does not know the model."""
    litellm = import_litellm()
    try:
        info = litellm.get_model_info(model)
        return float(info.get("input_cost_per_token") or 0.0), float(info.get("output_cost_per_token") or 0.0)
    except Exception:  # noqa: BLE001  (litellm raises a plain Exception for unmapped models)
        return (0.0, 0.0) if api_base else None


class RequestFailed(Exception):
    """A request that failed for good (after retries, or not retryable); the message is scrubbed."""


class EmptyAnswer(Exception):
    """A 200 answer with an empty ``choices`` list: retried like the server error it is (LiteLLM
    itself raises InternalServerError for a body without ``choices``, or one that is not JSON)."""


class LiteLLMBackend:
    """A :class:`lettingo.llm.LLM` over ``litellm.completion``."""

    Settings = LiteLLMSettings

    def __init__(self, model: str, **settings: Any):
        if not model or str(model) == "???":
            raise ComponentConfigError("llm 'litellm': set llm.model to a LiteLLM model string, e.g. gpt-4o-mini")
        self.model = str(model)
        self.settings = {**DEFAULTS, **settings}
        if self.settings["label_scoring"] not in LABEL_SCORING:
            raise ComponentConfigError(
                f"llm 'litellm': label_scoring must be one of {', '.join(LABEL_SCORING)}, "
                f"got {self.settings['label_scoring']!r}"
            )
        if int(self.settings["concurrency"]) < 1 or int(self.settings["max_retries"]) < 0:
            raise ComponentConfigError("llm 'litellm': concurrency must be at least 1 and max_retries at least 0")
        self._litellm = import_litellm()
        self._pool = ThreadPoolExecutor(int(self.settings["concurrency"]), thread_name_prefix="litellm")
        self._lock = threading.Lock()
        self.stats = {"requests": 0, "retries": 0, "failures": 0}
        self._score_usage = _zero_usage()

    @classmethod
    def from_config(cls, cfg: DictConfig | dict) -> "LiteLLMBackend":
        keys = (OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, DictConfig) else dict(cfg)).keys()
        secretish = sorted(k for k in keys if "key" in k.lower() and k not in ("model", *DEFAULTS))
        if secretish:  # named, never shown: the value may be the key itself
            raise ComponentConfigError(
                f"llm 'litellm': unknown key(s) {secretish}; API keys never go in config (configs are saved "
                "with runs): put the key in an environment variable and name it in api_key_env")
        return cls(**options("llm", cfg, LiteLLMSettings))

    # -- the LLM protocol -------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        return {
            "backend": "litellm",
            "model": self.model,
            "api_base": public_base(self.settings["api_base"]),
            "label_scoring": self.settings["label_scoring"],
            "n_per_request": bool(self.settings["n_per_request"]),
        }

    def generate(
        self, prompts: list[Messages], params: SamplingParams, seeds: list[int]
    ) -> list[list[Generation]]:
        check_generate_args(prompts, params, seeds)
        greedy = params.temperature <= 0
        if greedy or self.settings["n_per_request"]:
            per_prompt = [[(messages, seed, 1 if greedy else params.n)] for messages, seed in zip(prompts, seeds)]
        else:  # one request per sample, each with its own seed
            per_prompt = [[(messages, seed + j, 1) for j in range(params.n)] for messages, seed in zip(prompts, seeds)]
        jobs = [job for jobs in per_prompt for job in jobs]
        answers = list(self._pool.map(lambda job: self._generate_one(*job, params), jobs))
        results, position = [], 0
        for jobs_of_prompt in per_prompt:
            generations = [g for answer in answers[position : position + len(jobs_of_prompt)] for g in answer]
            position += len(jobs_of_prompt)
            if greedy:
                generations = generations[:1] * params.n
                generations = [Generation(g.text, dict(g.usage)) for g in generations]
            results.append(generations)
        return results

    def label_logprobs(self, prompts: list[Messages], labels: list[str]) -> list[dict[str, float]]:
        if any(not label.strip() for label in labels):
            raise ValueError(f"label_logprobs: labels must be non-empty, got {labels!r}")
        return list(self._pool.map(lambda messages: self._score_one(messages, labels), prompts))

    def take_usage(self) -> dict[str, float]:
        """Tokens, seconds and cost of label scoring since the last call (for the ledger)."""
        with self._lock:
            usage, self._score_usage = self._score_usage, _zero_usage()
        return usage

    def with_adapter(self, adapter_path: str | None) -> "LiteLLMBackend":
        if adapter_path:
            raise ComponentConfigError(
                "llm 'litellm' cannot load a LoRA adapter into an API model; serve the aligned "
                "generator with vLLM (llm=vllm), or point a litellm config at a server that hosts it"
            )
        return self

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- requests ----------------------------------------------------------------------------

    def _generate_one(self, messages: Messages, seed: int, n: int, params: SamplingParams) -> list[Generation]:
        request = {
            "messages": messages,
            "max_tokens": params.max_new_tokens,
            "temperature": max(0.0, params.temperature),
            "top_p": params.top_p,
            "seed": int(seed) % (2**31),
        }
        if n > 1:
            request["n"] = n
        try:
            response, latency, cost = self._call(request)
        except RequestFailed as failure:
            usage = {"error": str(failure), "latency_s": 0.0, "prompt_tokens": 0, "completion_tokens": 0}
            return [Generation("", dict(usage)) for _ in range(n)]
        choices = sorted(response.choices, key=lambda c: c.index or 0)
        usage = getattr(response, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", 0) or 0
        completion_tokens = getattr(usage, "completion_tokens", 0) or 0
        share = max(1, len(choices))
        generations = [
            Generation(
                (choice.message.content or "").strip(),
                {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens / share,
                    "latency_s": latency / share,
                    "cost_usd": cost / share,
                },
            )
            for choice in choices
        ]
        if len(generations) < n:  # a provider that ignored n: a failure for the rest, retried on rerun
            missing = {"error": f"the provider returned {len(generations)} of {n} samples; set llm.n_per_request=false"}
            generations += [Generation("", dict(missing)) for _ in range(n - len(generations))]
        return generations

    def _score_one(self, messages: Messages, labels: list[str]) -> dict[str, float]:
        mode = self.settings["label_scoring"]
        request: dict[str, Any] = {
            "messages": messages, "temperature": 0.0, "max_tokens": 8, "seed": 0,
        }
        if mode != "text":
            request.update(logprobs=True, top_logprobs=int(self.settings["top_logprobs"]))
        try:
            response, latency, cost = self._call(request)
        except RequestFailed as failure:
            log.warning("label scoring failed: %s", failure)
            return {label: math.nan for label in labels}
        usage = getattr(response, "usage", None)
        with self._lock:
            self._score_usage["prompt_tokens"] += getattr(usage, "prompt_tokens", 0) or 0
            self._score_usage["completion_tokens"] += getattr(usage, "completion_tokens", 0) or 0
            self._score_usage["latency_s"] += latency
            self._score_usage["cost_usd"] += cost
        choice = response.choices[0]
        first = _first_position_logprobs(choice)
        if first is not None and mode != "text":
            return first_token_label_logprobs(first, labels)
        if mode == "logprobs":
            with self._lock:
                self.stats["failures"] += 1
            log.warning("%s returned no log-probabilities; use llm.label_scoring=text", self.model)
            return {label: math.nan for label in labels}
        return parse_label(choice.message.content or "", labels)

    def _call(self, request: dict[str, Any]) -> tuple[Any, float, float]:
        """One completion with retries; returns (response, latency, cost in USD)."""
        litellm = self._litellm
        settings = self.settings
        key = self._api_key()
        options = {
            "model": self.model,
            "timeout": float(settings["timeout_s"]),
            "num_retries": 0,  # retries are ours: counted, logged, backed off
            "max_retries": 0,
            **({"api_base": settings["api_base"]} if settings["api_base"] else {}),
            **({"api_key": key} if key else {}),
            **({"extra_body": dict(settings["extra_body"])} if settings["extra_body"] else {}),
            **request,
        }
        attempts = int(settings["max_retries"]) + 1
        for attempt in range(attempts):
            with self._lock:
                self.stats["requests"] += 1
            started = time.perf_counter()
            try:
                response = litellm.completion(**options)
                if not getattr(response, "choices", None):
                    raise EmptyAnswer("the server answered 200 with no choices")
                latency = time.perf_counter() - started
                return response, latency, self._cost(response)
            except Exception as error:  # noqa: BLE001  (sorted below: retry, or record)
                message = self._scrub(f"{type(error).__name__}: {error}", key)
                if not _retryable(error, litellm) or attempt == attempts - 1:
                    with self._lock:
                        self.stats["failures"] += 1
                    tries = f" after {attempt + 1} attempts" if attempt else ""
                    # where it failed ("Connection error." alone names no server): never credentials
                    where = public_base(settings["api_base"])
                    where = f"{self.model} at {where}" if where else self.model
                    raise RequestFailed(self._scrub(f"{message[:400]}{tries} ({where})", key)) from None
                wait = self._backoff(attempt, error)
                with self._lock:
                    self.stats["retries"] += 1
                log.info("%s; retrying in %.1f s (%d/%d)", message[:200], wait, attempt + 1, attempts - 1)
                time.sleep(wait)
        raise AssertionError("unreachable")

    def _api_key(self) -> str | None:
        name = self.settings["api_key_env"]
        if name:
            value = os.environ.get(str(name))
            if not value:
                raise ComponentConfigError(f"llm 'litellm': the environment variable {name} (api_key_env) is not set")
            return value
        # An OpenAI-compatible local server usually takes any key, but the client insists on one.
        if self.settings["api_base"] and not os.environ.get("OPENAI_API_KEY"):
            return "EMPTY"
        return None

    def _cost(self, response: Any) -> float:
        try:
            return float(self._litellm.completion_cost(completion_response=response) or 0.0)
        except Exception:  # noqa: BLE001  (a model without a price: local or unlisted)
            return 0.0

    def _backoff(self, attempt: int, error: Exception) -> float:
        cap = float(self.settings["backoff_max_s"])
        retry_after = _retry_after(error)
        if retry_after is not None:
            return min(cap, retry_after)
        base = float(self.settings["backoff_s"]) * (2**attempt)
        return min(cap, base * (0.5 + random.random() / 2))

    @staticmethod
    def _scrub(text: str, key: str | None) -> str:
        if key and len(key) >= 4:
            text = text.replace(key, "***")
        # provider-style keys that a server echoed back, whoever's they are
        return re.sub(r"\b(sk|pk|rk)-[A-Za-z0-9_\-]{8,}", r"\1-***", text)


def _zero_usage() -> dict[str, float]:
    return {"prompt_tokens": 0, "completion_tokens": 0, "latency_s": 0.0, "cost_usd": 0.0}


def _retryable(error: Exception, litellm: Any) -> bool:
    retry = (
        litellm.RateLimitError, litellm.Timeout, litellm.APIConnectionError, litellm.InternalServerError,
        litellm.ServiceUnavailableError, litellm.BadGatewayError,
    )
    if isinstance(error, (*retry, EmptyAnswer)):
        return True
    status = getattr(error, "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def _retry_after(error: Exception) -> float | None:
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        value = headers.get("retry-after")
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _first_position_logprobs(choice: Any) -> dict[str, float] | None:
    """token -> log-prob among the alternatives at the answer's first position, or None when the
    provider gave no log-probabilities."""
    logprobs = getattr(choice, "logprobs", None)
    content = getattr(logprobs, "content", None) if logprobs is not None else None
    if not content:
        return None
    first = content[0]
    alternatives = {alt.token: alt.logprob for alt in (first.top_logprobs or [])}
    alternatives.setdefault(first.token, first.logprob)
    return alternatives


def first_token_label_logprobs(alternatives: dict[str, float], labels: list[str]) -> dict[str, float]:
    """Each label's log-probability from the answer's first token: the log-sum-exp over the listed
    tokens that start that label and no other (``dis`` counts for ``dislike``; a token that starts
    two labels tells them apart not at all and is skipped). A label no listed token starts is -inf.
    API models give only the top alternatives of generated tokens, so this is the first-token
    approximation of the whole-label probability the local backends compute."""
    matched: dict[str, list[float]] = {label: [] for label in labels}
    for token, logprob in alternatives.items():
        text = token.strip().lower()
        if not text:
            continue
        starts = [label for label in labels if label.strip().lower().startswith(text)]
        if len(starts) == 1:
            matched[starts[0]].append(logprob)
    return {label: _logsumexp(values) for label, values in matched.items()}


def parse_label(text: str, labels: list[str]) -> dict[str, float]:
    """Free-text answers: the label the answer starts with (or the only one it names) gets log-prob 0,
    the others -inf; an answer naming none or several is all -inf (counted invalid by the judge)."""
    answer = re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split()
    words = set(answer)
    normalised = {label: re.sub(r"[^a-z0-9 ]+", " ", label.lower()).split() for label in labels}
    chosen = [label for label, parts in normalised.items() if parts and answer[: len(parts)] == parts]
    if len(chosen) != 1:
        chosen = [label for label, parts in normalised.items() if parts and set(parts) <= words]
    if len(chosen) != 1:
        return {label: -math.inf for label in labels}
    return {label: (0.0 if label == chosen[0] else -math.inf) for label in labels}


def _logsumexp(values: list[float]) -> float:
    if not values:
        return -math.inf
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))

