"""Grouped-query attention on CPU: the same logits as stock sdpa on padded batches, without the
per-layer K/V copy."""

from __future__ import annotations

import pytest
import torch
import transformers.integrations.sdpa_attention as sdpa_module

from lettingo_transformers.attention import NAME, use_grouped_attention


@pytest.fixture
def models(tiny_model):
    from transformers import AutoModelForCausalLM

    stock = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    grouped = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    assert stock.config._attn_implementation == "sdpa"
    assert stock.model.layers[0].self_attn.num_key_value_groups > 1  # the tiny Llama groups its K/V heads
    assert use_grouped_attention(grouped)
    assert grouped.config._attn_implementation == NAME
    return stock, grouped


def padded_prefill_and_decode(model):
    """Logits of a left-padded batch: the prefill, then three cached decode steps."""
    ids = torch.randint(5, 1000, (3, 24), generator=torch.Generator().manual_seed(0))
    attention = torch.ones_like(ids)
    attention[0, :7] = 0
    attention[1, :2] = 0
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=attention, position_ids=positions, use_cache=True)
        logits, cache = [out.logits[:, 7:]], out.past_key_values
        for step in range(3):
            attention = torch.cat([attention, torch.ones(3, 1, dtype=torch.long)], dim=1)
            out = model(
                input_ids=torch.full((3, 1), 100 + step), attention_mask=attention,
                position_ids=positions[:, -1:] + step + 1, past_key_values=cache, use_cache=True,
            )
            logits.append(out.logits)
    return torch.cat(logits, dim=1)


def test_same_logits_as_stock_sdpa_without_copying_kv(models, monkeypatch):
    stock, grouped = models
    copies = []
    real_repeat_kv = sdpa_module.repeat_kv
    monkeypatch.setattr(sdpa_module, "repeat_kv", lambda h, n: copies.append(n) or real_repeat_kv(h, n))
    expected = padded_prefill_and_decode(stock)
    assert copies  # stock sdpa copies K/V per query head when there is a mask
    copies.clear()
    got = padded_prefill_and_decode(grouped)
    assert not copies
    assert torch.allclose(got, expected, atol=1e-5, rtol=0)


def test_engine_switches_only_cpu_sdpa_models(tiny_llm, models):
    assert tiny_llm._engine.grouped_attention
    _, grouped = models
    assert not use_grouped_attention(grouped)  # already switched: not sdpa any more
