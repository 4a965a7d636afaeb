"""A real OpenAI-compatible server for the litellm backend tests: vLLM's own, serving the real
SmolLM2-135M-Instruct on 127.0.0.1 (started once per session), and scripted misbehaving servers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lettingo.testing import require_module

sys.path.insert(0, str(Path(__file__).parent))

SERVED_NAME = "smollm2"


@pytest.fixture(scope="session")
def smollm2_dir():
    from lettingo.models import resolve_model

    return resolve_model("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def vllm_server(smollm2_dir, tmp_path_factory):
    require_module("vllm", "the real OpenAI-compatible server is vLLM's (lettingo-vllm[cpu], make install)")
    from lettingo_vllm.server import openai_server

    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    with openai_server(smollm2_dir, SERVED_NAME, log_file=log) as url:
        yield url


@pytest.fixture(scope="session")
def served_llm(vllm_server):
    from lettingo_litellm.backend import LiteLLMBackend

    llm = LiteLLMBackend(model=f"openai/{SERVED_NAME}", api_base=vllm_server, concurrency=4, timeout_s=120)
    yield llm
    llm.close()


@pytest.fixture(scope="session")
def transformers_llm(smollm2_dir):
    from lettingo_transformers.backend import TransformersLLM

    llm = TransformersLLM(model=smollm2_dir, dtype="float32", device="cpu")
    yield llm
    llm.close()
