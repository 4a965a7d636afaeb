"""Per-row sampling: the exponential race samples the right distribution, generate emits the forced
tokens, and batches are planned by length within the sequence cap."""

from __future__ import annotations

import pytest
import torch

from lettingo.llm import SamplingParams
from lettingo_transformers.sampling import RowSampler, nucleus_threshold, plan_batches, race_tokens, row_seed

PROMPT = [{"role": "user", "content": "Describe this user's taste in movies."}]


def exp_noise(rows: int, vocab: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(rows, vocab, generator=generator).double().log().neg()


def frequencies(tokens: torch.Tensor, vocab: int) -> torch.Tensor:
    return torch.bincount(tokens, minlength=vocab).double() / len(tokens)


def test_race_samples_the_tempered_distribution():
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, float("-inf")])
    draws = 40_000
    tokens = race_tokens(logits.expand(draws, -1), 0.5, 1.0, exp_noise(draws, 6, seed=0))
    expected = torch.softmax(logits.double() / 0.5, -1)
    assert torch.allclose(frequencies(tokens, 6), expected, atol=0.01)
    assert int((tokens == 5).sum()) == 0  # a -inf logit is never drawn


def test_race_with_top_p_samples_the_renormalised_nucleus():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
    draws = 40_000
    # top_p 0.79, clear of the 0.5 + 0.3 boundary: the nucleus is the first two tokens.
    tokens = race_tokens(probs.log().expand(draws, -1), 1.0, 0.79, exp_noise(draws, 4, seed=1))
    expected = torch.tensor([0.625, 0.375, 0, 0], dtype=torch.float64)
    assert torch.allclose(frequencies(tokens, 4), expected, atol=0.01)


def test_nucleus_is_the_tokens_whose_more_likely_tokens_hold_less_than_top_p():
    probs = torch.tensor(
        [[0.5, 0.3, 0.15, 0.05], [0.05, 0.15, 0.5, 0.3], [0.2, 0.4, 0.2, 0.2]], dtype=torch.float64
    )
    assert nucleus_threshold(probs, 0.8).flatten().tolist() == [0.3, 0.3, 0.2]  # ties are in together
    assert nucleus_threshold(probs, 0.81).flatten().tolist() == [0.15, 0.15, 0.2]
    assert nucleus_threshold(probs, 0.01).flatten().tolist() == [0.5, 0.5, 0.4]  # the top token always


def test_row_sampler_forces_one_token_per_row_from_its_own_generator():
    scores = torch.randn(3, 50)
    forced = RowSampler([row_seed(1, 0), row_seed(1, 1), row_seed(2, 0)], 1.0, 1.0)(None, scores)
    assert (torch.isfinite(forced).sum(-1) == 1).all()
    # Row 0 alone, with the same seed, draws the same token: its generator is its own.
    alone = RowSampler([row_seed(1, 0)], 1.0, 1.0)(None, scores[:1])
    assert torch.equal(alone.argmax(-1), forced[:1].argmax(-1))
    with pytest.raises(ValueError, match="temperature"):
        RowSampler([0], 0.0, 1.0)


def test_row_seeds_are_pinned_and_distinct():
    # Changing these changes every sample for a given seed: bump SAMPLER in backend.py if you do.
    assert row_seed(0, 0) == 1122422778321921326
    assert row_seed(7, 2) == 3705176327703451016
    assert len({row_seed(seed, sample) for seed in range(20) for sample in range(20)}) == 400


def test_plan_batches_groups_similar_lengths_within_the_cap():
    lengths = [50, 10, 30, 20, 40]
    assert plan_batches(lengths, per_prompt=2, max_sequences=4) == [[1, 3], [2, 4], [0]]
    assert plan_batches(lengths, per_prompt=8, max_sequences=4) == [[1], [3], [2], [4], [0]]
    assert plan_batches(lengths, per_prompt=1, max_sequences=16) == [[1, 3, 2, 4, 0]]
    assert plan_batches([], per_prompt=1, max_sequences=4) == []


def test_generate_emits_the_race_tokens_of_the_prompt_alone(tiny_llm):
    """A hand-written decoding loop (no KV cache, no generate) with the same per-row draws gives
    the backend's samples: generate applies no temperature/top-p of its own on top."""
    params = SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=8, n=2)
    engine = tiny_llm._engine
    # A model whose own defaults say "sample hot with top-k": the backend must override them.
    config = engine.model.generation_config
    saved = (config.do_sample, config.temperature, config.top_k, config.top_p)
    config.do_sample, config.temperature, config.top_k, config.top_p = True, 0.3, 5, 0.5
    try:
        out = tiny_llm.generate([PROMPT], params, seeds=[42])[0]
    finally:
        config.do_sample, config.temperature, config.top_k, config.top_p = saved
    prompt_ids = tiny_llm._encode(PROMPT)
    for sample, generation in enumerate(out):
        generator = torch.Generator().manual_seed(row_seed(42, sample))
        tokens: list[int] = []
        with torch.inference_mode():
            for _ in range(params.max_new_tokens):
                logits = engine.model(input_ids=torch.tensor([prompt_ids + tokens])).logits[:, -1].float()
                noise = torch.rand(logits.shape[-1], generator=generator).double().log().neg()
                tokens.append(int(race_tokens(logits, params.temperature, params.top_p, noise[None])[0]))
                if tokens[-1] in engine.stop_ids:
                    break
        assert generation.usage["completion_tokens"] == len(tokens)
        assert generation.text == engine.tokenizer.decode(tokens, skip_special_tokens=True).strip()
