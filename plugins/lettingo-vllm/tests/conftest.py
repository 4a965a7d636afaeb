"""One real vLLM engine per test session, on the real SmolLM2-135M-Instruct (float32).

vLLM's engine takes ~20 s to start, so tests share it; the real model (not a random one) makes
greedy answers clear-cut, which the cross-backend comparison needs.
"""

from __future__ import annotations

import pytest

MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="session")
def smollm2_dir():
    from lettingo.models import resolve_model

    return resolve_model(MODEL)


@pytest.fixture(scope="session")
def vllm_llm(smollm2_dir):
    from lettingo_vllm.backend import VLLMBackend

    llm = VLLMBackend(model=smollm2_dir, dtype="float32", max_model_len=2048, max_input_tokens=1536,
                      cpu_kvcache_gb=1, max_lora_rank=8)
    yield llm
    llm.close()


@pytest.fixture(scope="session")
def transformers_llm(smollm2_dir):
    from lettingo_transformers.backend import TransformersLLM

    llm = TransformersLLM(model=smollm2_dir, dtype="float32", device="cpu", max_input_tokens=1536)
    yield llm
    llm.close()


@pytest.fixture(scope="session")
def random_lora(smollm2_dir, tmp_path_factory):
    """A LoRA adapter on SmolLM2 with small random weights: it changes answers but keeps them text."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("smollm2-lora")
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    torch.manual_seed(3)
    config = LoraConfig(r=8, lora_alpha=16, init_lora_weights=False, target_modules=["q_proj", "v_proj"])
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name:
                param.mul_(0.5)
    peft_model.save_pretrained(out)
    return str(out)
