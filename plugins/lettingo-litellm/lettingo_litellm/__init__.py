"""lettingo-litellm: the ``litellm`` LLM backend for lettingo."""

__version__ = "0.1.0"
