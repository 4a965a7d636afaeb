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


@pytest.fixture(scope="session")
def untied_llm(tmp_path_factory):
    """An engine on a tiny random Llama with untied embeddings, whose greedy answer depends on the
    prompt (``tiny_model`` ties them, so greedy decoding just repeats the prompt's last token)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from lettingo.models import prepare_packaged_model
    from lettingo_transformers.backend import TransformersLLM

    path = tmp_path_factory.mktemp("untied-llama")
    tokenizer = AutoTokenizer.from_pretrained(prepare_packaged_model("smollm2-135m-instruct"))
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    llm = TransformersLLM(model=str(path), device="cpu", threads=1)
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
