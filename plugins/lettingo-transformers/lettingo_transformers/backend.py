"""The ``transformers`` LLM backend: Hugging Face ``generate`` for profiles, one forward pass for
label scoring, and PEFT LoRA adapters that share the base model's weights.

Generation batches prompts of similar length into one left-padded ``generate`` call, yet prompt
``i``'s samples depend only on (prompt ``i``, params, ``seeds[i]``), never on its batch mates (the
cache and resumed runs rely on that): each row samples with its own generator (see
:mod:`lettingo_transformers.sampling`). Scoring batches many (prompt, label) sequences per forward
pass, because a recommender scores thousands of them.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import inspect
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import torch
from omegaconf import DictConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

from lettingo.adapters import adapter_digest
from lettingo.settings import options
from lettingo.errors import ComponentConfigError
from lettingo.llm import Generation, Messages, SamplingParams, check_generate_args, encode_chat
from lettingo.models import resolve_model
from lettingo_transformers.attention import use_grouped_attention
from lettingo_transformers.sampling import RowSampler, plan_batches, row_seed
from lettingo_transformers.settings import TransformersSettings as S


# Names the sampling algorithm in the identity: a new one maps seeds to other samples, so it must
# not answer from a cache filled by the old one.
SAMPLER = "per-row-exponential-race/1"
def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str) -> torch.dtype | str:
    if dtype == "auto":
        return "auto"
    value = getattr(torch, str(dtype), None)
    if not isinstance(value, torch.dtype):
        raise ComponentConfigError(f"llm 'transformers': unknown dtype {dtype!r}; use float32, bfloat16, float16 or auto")
    return value


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """torch's CPU thread count for one call, restored after: other components keep theirs."""
    if not count:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(count))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def completion_length(tokens: list[int], stop_ids: set[int]) -> int:
    """Generated tokens up to and including the first end-of-turn token (padding after it excluded)."""
    for position, token in enumerate(tokens):
        if token in stop_ids:
            return position + 1
    return len(tokens)


class _Engine:
    """Model, tokenizer and loaded adapters, shared by every view of one base model."""

    def __init__(self, model: str, dtype: str, device: str, threads: int | None):
        self.threads = threads
        self.device = resolve_device(device)
        path = resolve_model(model)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if not self.tokenizer.chat_template:
            raise ComponentConfigError(
                f"llm 'transformers': the tokenizer of {model!r} has no chat template; "
                "use an instruction-tuned (chat) model"
            )
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=resolve_dtype(dtype))
        self.model.to(self.device).eval()
        # Padded batches on CPU: grouped-query attention without copying K/V (same numbers).
        self.grouped_attention = use_grouped_attention(self.model)
        self.peft = None  # the PeftModel wrapper, once the first adapter is loaded
        self.adapters: dict[str, str] = {}  # adapter digest -> PEFT adapter name
        self.lock = threading.RLock()  # the active adapter is state of the shared model

        eos = self.model.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        if self.tokenizer.eos_token_id is not None:
            eos.append(self.tokenizer.eos_token_id)
        if not eos:
            raise ComponentConfigError(f"llm 'transformers': {model!r} defines no end-of-turn (eos) token")
        self.stop_ids = sorted(set(eos))
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.stop_ids[0]
        self.keeps_few_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters

    def load_adapter(self, path: str | Path) -> str:
        """Load an adapter once (keyed by its digest) and return the digest."""
        digest = adapter_digest(path)
        with self.lock:
            if digest not in self.adapters:
                from peft import PeftModel

                name = f"adapter_{digest[:16]}"
                if self.peft is None:
                    # Injects LoRA layers into self.model in place: the base weights stay shared.
                    self.peft = PeftModel.from_pretrained(self.model, str(path), adapter_name=name)
                else:
                    self.peft.load_adapter(str(path), adapter_name=name)
                self.model.eval()
                self.adapters[digest] = name
        return digest

    @contextlib.contextmanager
    def in_use(self, digest: str | None) -> Iterator[None]:
        """Hold the model with the given adapter active (``None``: adapters off)."""
        with self.lock, torch_threads(self.threads):
            if self.peft is None:
                yield
            elif digest is None:
                with self.peft.disable_adapter():
                    yield
            else:
                self.peft.set_adapter(self.adapters[digest])
                yield

    def release(self) -> None:
        self.model = self.peft = self.tokenizer = None
        self.adapters.clear()


class TransformersLLM:
    """A :class:`lettingo.llm.LLM` on a Hugging Face causal LM; ``with_adapter`` views share weights."""

    Settings = S

    def __init__(
        self,
        model: str = S.model,
        dtype: str = S.dtype,
        device: str = S.device,
        batch_size: int = S.batch_size,
        generate_batch_size: int = S.generate_batch_size,
        max_input_tokens: int = S.max_input_tokens,
        threads: int | None = None,
        adapter: str | None = None,
    ):
        if min(int(batch_size), int(generate_batch_size), int(max_input_tokens)) < 1:
            raise ComponentConfigError(
                "llm 'transformers': batch_size, generate_batch_size and max_input_tokens must be at least 1"
            )
        self.model_name = str(model)
        self.dtype = str(dtype)
        self.batch_size = int(batch_size)
        self.generate_batch_size = int(generate_batch_size)
        self.max_input_tokens = int(max_input_tokens)
        self._engine: _Engine | None = _Engine(self.model_name, self.dtype, str(device), threads)
        self._adapter: str | None = self._engine.load_adapter(adapter) if adapter else None

    @classmethod
    def from_config(cls, cfg: DictConfig | dict) -> "TransformersLLM":
        return cls(**options("llm", cfg, S))

    # -- the LLM protocol -------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        return {
            "backend": "transformers",
            "model": self.model_name,
            "adapter": self._adapter,
            "dtype": self.dtype,
            "max_input_tokens": self.max_input_tokens,  # truncation changes long prompts' answers
            "sampler": SAMPLER,
        }

    def generate(
        self, prompts: list[Messages], params: SamplingParams, seeds: list[int]
    ) -> list[list[Generation]]:
        check_generate_args(prompts, params, seeds)
        encoded = [self._encode(messages) for messages in prompts]
        greedy = params.temperature <= 0
        rows_per_prompt = 1 if greedy else params.n  # n greedy samples are one sample repeated
        results: list[list[Generation]] = [[] for _ in prompts]
        for batch in plan_batches([len(ids) for ids in encoded], rows_per_prompt, self.generate_batch_size):
            generated = self._generate_batch([encoded[i] for i in batch], [seeds[i] for i in batch], params)
            for index, generations in zip(batch, generated):
                results[index] = generations
        return results

    def label_logprobs(self, prompts: list[Messages], labels: list[str]) -> list[dict[str, float]]:
        engine = self._live_engine()
        label_ids = [engine.tokenizer(label, add_special_tokens=False)["input_ids"] for label in labels]
        for label, ids in zip(labels, label_ids):
            if not ids:
                raise ValueError(f"label_logprobs: label {label!r} encodes to no tokens")
        sequences = [
            (index, label, prompt_ids, ids)
            for index, prompt_ids in enumerate(self._encode(m) for m in prompts)
            for label, ids in zip(labels, label_ids)
        ]
        # Similar lengths share a batch, so little compute goes to padding.
        sequences.sort(key=lambda s: len(s[2]) + len(s[3]))
        scores: list[dict[str, float]] = [{} for _ in prompts]
        with engine.in_use(self._adapter), torch.inference_mode():
            for start in range(0, len(sequences), self.batch_size):
                batch = sequences[start : start + self.batch_size]
                for (index, label, _, _), value in zip(batch, self._score_batch(engine, batch)):
                    scores[index][label] = value
        return [{label: found[label] for label in labels} for found in scores]

    def with_adapter(self, adapter_path: str | None) -> "TransformersLLM":
        engine = self._live_engine()
        view = copy.copy(self)
        view._adapter = engine.load_adapter(adapter_path) if adapter_path else None
        return view

    def close(self) -> None:
        """Free the shared engine: every view of this base model stops working."""
        engine, self._engine = self._engine, None
        if engine is None:
            return
        on_cuda = engine.device.type == "cuda"
        engine.release()
        gc.collect()
        if on_cuda:
            torch.cuda.empty_cache()

    # -- internals ---------------------------------------------------------------------------

    def _live_engine(self) -> _Engine:
        if self._engine is None or self._engine.model is None:
            raise RuntimeError(
                f"the transformers engine for {self.model_name!r} was closed; build a new one "
                "(Context.llm after release_llms)"
            )
        return self._engine

    def _encode(self, messages: Messages) -> list[int]:
        return encode_chat(self._live_engine().tokenizer, messages, self.max_input_tokens)

    def _generate_batch(
        self, prompt_ids: list[list[int]], seeds: list[int], params: SamplingParams
    ) -> list[list[Generation]]:
        """One left-padded ``generate`` call for a few prompts; ``params.n`` generations for each."""
        engine = self._live_engine()
        greedy = params.temperature <= 0
        rows_per_prompt = 1 if greedy else params.n
        width = max(len(ids) for ids in prompt_ids)
        input_ids = torch.full((len(prompt_ids), width), engine.pad_id, dtype=torch.long)
        attention = torch.zeros((len(prompt_ids), width), dtype=torch.long)
        for row, ids in enumerate(prompt_ids):
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            attention[row, width - len(ids) :] = 1
        input_ids, attention = input_ids.to(engine.device), attention.to(engine.device)
        # generate always decodes greedily; sampling happens in RowSampler, which forces each row's
        # token. The warpers are switched off (they only run with do_sample=True anyway), and so
        # is a model's own default top_k/top_p/temperature.
        options: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "eos_token_id": engine.stop_ids,
            "pad_token_id": engine.pad_id,
            "do_sample": False,
            "num_beams": 1,
            "num_return_sequences": 1,
            "temperature": None,
            "top_p": None,
            "top_k": None,
        }
        if not greedy:
            row_seeds = [row_seed(seed, sample) for seed in seeds for sample in range(params.n)]
            options["logits_processor"] = LogitsProcessorList(
                [RowSampler(row_seeds, params.temperature, params.top_p)]
            )
        started = time.perf_counter()
        with engine.in_use(self._adapter), torch.inference_mode():
            if rows_per_prompt > 1:
                # A prompt's n samples share one prefill: it is most of the work for profile prompts.
                cache = self._prefill(engine, input_ids, attention)
                if cache is not None:
                    cache.batch_repeat_interleave(rows_per_prompt)
                    options["past_key_values"] = cache
            # Row r * n + j is sample j of prompt r.
            output = engine.model.generate(
                input_ids=input_ids.repeat_interleave(rows_per_prompt, dim=0),
                attention_mask=attention.repeat_interleave(rows_per_prompt, dim=0),
                **options,
            )
        latency = time.perf_counter() - started
        rows = output[:, width:].tolist()
        stop_ids = set(engine.stop_ids)
        results = []
        for index, ids in enumerate(prompt_ids):
            generations = []
            for row in rows[index * rows_per_prompt : (index + 1) * rows_per_prompt]:
                length = completion_length(row, stop_ids)
                text = engine.tokenizer.decode(row[:length], skip_special_tokens=True).strip()
                usage = {
                    "prompt_tokens": len(ids),
                    "completion_tokens": length,
                    "latency_s": latency / len(rows),  # this row's share of its call
                }
                generations.append(Generation(text, usage))
            if greedy:
                generations = [generations[0]] + [copy.deepcopy(generations[0]) for _ in range(params.n - 1)]
            results.append(generations)
        return results

    def _prefill(self, engine: _Engine, input_ids: torch.Tensor, attention: torch.Tensor) -> Any:
        """The KV cache of each left-padded prompt but its last token (``generate`` feeds that one
        and goes on from the cache), with the positions ``generate`` gives; ``None`` when the
        model's cache can't be copied per sample."""
        if input_ids.shape[1] < 2:
            return None
        attention = attention[:, :-1]
        inputs = {
            "input_ids": input_ids[:, :-1],
            "attention_mask": attention,
            "position_ids": (attention.cumsum(-1) - 1).masked_fill(attention == 0, 0),
            "use_cache": True,
        }
        if engine.keeps_few_logits:
            inputs["logits_to_keep"] = 1
        cache = getattr(engine.model(**inputs), "past_key_values", None)
        return cache if hasattr(cache, "batch_repeat_interleave") else None

    def _score_batch(self, engine: _Engine, batch: list[tuple]) -> list[float]:
        """Summed log-probs of each label's tokens after its prompt, for one padded batch.

        Left padding puts every label at the end of its row, so only the last few positions
        need logits; explicit position ids keep each row's positions as if it were alone.
        """
        width = max(len(p) + len(ids) for _, _, p, ids in batch)
        input_ids = torch.full((len(batch), width), engine.pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (_, _, prompt_ids, ids) in enumerate(batch):
            tokens = prompt_ids + ids
            input_ids[row, width - len(tokens) :] = torch.tensor(tokens)
            attention[row, width - len(tokens) :] = 1
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        keep = max(len(ids) for _, _, _, ids in batch) + 1
        inputs = {
            "input_ids": input_ids.to(engine.device),
            "attention_mask": attention.to(engine.device),
            "position_ids": positions.to(engine.device),
            "use_cache": False,
        }
        if engine.keeps_few_logits:
            inputs["logits_to_keep"] = keep
        logits = engine.model(**inputs).logits[:, -keep:, :]
        logprobs = logits.float().log_softmax(-1)
        values = []
        for row, (_, _, _, ids) in enumerate(batch):
            # Position q predicts token q+1: the label's tokens are predicted by the L positions
            # before the last one.
            predicted = logprobs[row, keep - len(ids) - 1 : keep - 1]
            targets = torch.tensor(ids, device=predicted.device)[:, None]
            values.append(float(predicted.gather(-1, targets).sum()))
        return values
