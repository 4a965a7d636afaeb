"""lettingo's Hugging Face transformers LLM backend (generation, label scoring, LoRA adapters)."""

__version__ = "0.1.0"
