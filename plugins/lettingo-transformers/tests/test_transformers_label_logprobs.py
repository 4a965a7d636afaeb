"""Label scoring: finite log-probs, equal to a hand computation, independent of batching."""

from __future__ import annotations

import math

import pytest
import torch

LABELS = ["like", "neutral", "dislike", "I would rather not"]
PROMPTS = [
    [{"role": "user", "content": "Will this user like the film? Answer like, neutral or dislike."}],
    [{"role": "user", "content": "Short."}],
    [{"role": "system", "content": "You judge movies."},
     {"role": "user", "content": "A much longer question " + "with many words " * 20}],
]


def test_values_are_finite_negative_and_keyed_by_label(tiny_llm):
    scores = tiny_llm.label_logprobs(PROMPTS, LABELS)
    assert len(scores) == len(PROMPTS)
    for found in scores:
        assert list(found) == LABELS
        assert all(math.isfinite(v) and v < 0 for v in found.values())


def test_matches_a_manual_computation_from_the_logits(tiny_llm, tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    label = "I would rather not"  # several tokens: the sum runs over all of them
    text = tokenizer.apply_chat_template(PROMPTS[0], add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    label_ids = tokenizer(label, add_special_tokens=False)["input_ids"]
    assert len(label_ids) > 1
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids + label_ids])).logits[0]
    logprobs = logits.log_softmax(-1)
    expected = sum(
        float(logprobs[len(prompt_ids) - 1 + k, token]) for k, token in enumerate(label_ids)
    )
    got = tiny_llm.label_logprobs(PROMPTS[:1], [label])[0][label]
    assert got == pytest.approx(expected, abs=1e-4)


def test_batched_equals_one_by_one(tiny_llm):
    batched = tiny_llm.label_logprobs(PROMPTS, LABELS)  # batch_size 4: padded, mixed lengths
    for prompt, found in zip(PROMPTS, batched):
        for label in LABELS:
            alone = tiny_llm.label_logprobs([prompt], [label])[0][label]
            assert found[label] == pytest.approx(alone, abs=1e-4)
