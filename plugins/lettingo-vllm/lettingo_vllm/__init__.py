"""lettingo-vllm: the ``vllm`` LLM backend for lettingo."""

__version__ = "0.1.0"
