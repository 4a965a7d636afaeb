"""The ``transformers`` backend's options (imports nothing heavy: read when configs are composed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class TransformersSettings:
    """Hugging Face transformers backend (plugin distribution lettingo-transformers)."""

    name: str = "transformers"
    model: str = "smollm2-135m-instruct"  # a lettingo.models alias, a Hugging Face id, or a local directory
    dtype: str = "float32"                # float32 | bfloat16 | float16 | auto
    device: str = "auto"                  # auto (cuda when available, else cpu) | cpu | cuda | cuda:1 ...
    batch_size: int = 8                   # sequences per forward pass when scoring labels
    generate_batch_size: int = 16         # sequences (prompts x n) per generate call; a prompt's n samples share one call
    max_input_tokens: int = 2048          # longer prompts lose their oldest tokens (the chat template's end is kept)
    threads: Optional[int] = None         # torch CPU threads during this engine's calls; null: torch's default
    adapter: Optional[str] = None         # a PEFT LoRA adapter directory to answer through from the start
