"""Fixtures for the transformers backend tests: one engine on the tiny model, random LoRAs.

Engines here run with ``threads=1`` (scoped to their calls): a tiny model gains nothing from more,
and two threads on a busy two-core machine wait on each other for seconds per call.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_llm(tiny_model):
    """A shared engine on the tiny random Llama; tests that load adapters build their own."""
    from lettingo_transformers.backend import TransformersLLM

    llm = TransformersLLM(model=tiny_model, device="cpu", batch_size=4, threads=1)
    yield llm
    llm.close()


def _random_lora(base_dir: str, out_dir, seed: int) -> str:
    """A LoRA adapter with random non-zero weights, so it visibly changes the model's answers."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    torch.manual_seed(seed)
    config = LoraConfig(
        r=4, lora_alpha=16, init_lora_weights=False,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"],
    )
    get_peft_model(model, config).save_pretrained(out_dir)
    return str(out_dir)


@pytest.fixture(scope="session")
def lora_adapter(tiny_model, tmp_path_factory):
    return _random_lora(tiny_model, tmp_path_factory.mktemp("lora-a"), seed=1)


@pytest.fixture(scope="session")
def other_lora_adapter(tiny_model, tmp_path_factory):
    return _random_lora(tiny_model, tmp_path_factory.mktemp("lora-b"), seed=2)
