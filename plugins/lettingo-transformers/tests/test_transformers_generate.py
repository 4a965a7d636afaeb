"""Generation on the tiny random Llama: samples, seeds, greedy decoding, usage, truncation."""

from __future__ import annotations

import torch

from lettingo.llm import SamplingParams

PROMPT = [{"role": "user", "content": "Describe this user's taste in movies."}]
OTHER = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Another, longer prompt here."}]
SAMPLE = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=12, n=3)
GREEDY = SamplingParams(temperature=0.0, max_new_tokens=12, n=2)


def texts(generations):
    return [g.text for g in generations]


def test_n_samples_per_prompt_with_usage(tiny_llm):
    out = tiny_llm.generate([PROMPT, OTHER], SAMPLE, seeds=[1, 2])
    assert [len(samples) for samples in out] == [3, 3]
    assert len(set(texts(out[0]))) > 1  # temperature 1 on a random model: samples differ
    for generation in out[0] + out[1]:
        assert isinstance(generation.text, str)
        assert generation.usage["prompt_tokens"] > 10
        assert 1 <= generation.usage["completion_tokens"] <= SAMPLE.max_new_tokens
        assert generation.usage["latency_s"] >= 0
    assert out[0][0].usage["prompt_tokens"] != out[1][0].usage["prompt_tokens"]


def test_same_seed_same_samples_alone_or_batched(tiny_llm):
    alone = tiny_llm.generate([PROMPT], SAMPLE, seeds=[7])
    batched = tiny_llm.generate([OTHER, PROMPT], SAMPLE, seeds=[3, 7])
    assert texts(batched[1]) == texts(alone[0])


def test_different_seeds_give_different_samples(tiny_llm):
    first = tiny_llm.generate([PROMPT], SAMPLE, seeds=[7])
    second = tiny_llm.generate([PROMPT], SAMPLE, seeds=[8])
    assert texts(first[0]) != texts(second[0])


def test_greedy_is_deterministic_and_ignores_seed(tiny_llm):
    first = tiny_llm.generate([PROMPT], GREEDY, seeds=[1])[0]
    second = tiny_llm.generate([PROMPT], GREEDY, seeds=[99])[0]
    assert len(first) == 2 and texts(first) == texts(second)
    assert first[0].text == first[1].text
    assert first[0].usage["completion_tokens"] == second[0].usage["completion_tokens"]


def test_seeding_leaves_the_global_random_state_alone(tiny_llm):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    tiny_llm.generate([PROMPT], SAMPLE, seeds=[5])
    assert torch.equal(torch.rand(3), expected)


def test_long_prompts_lose_their_oldest_tokens(tiny_model):
    from lettingo_transformers.backend import TransformersLLM

    llm = TransformersLLM(model=tiny_model, device="cpu", threads=1, max_input_tokens=40)
    tail = " ".join(f"item{i}" for i in range(60))
    a = [{"role": "user", "content": "Alpha beta gamma. " + tail}]
    b = [{"role": "user", "content": "Something else entirely. " + tail}]
    out = llm.generate([a, b], SamplingParams(temperature=1.0, max_new_tokens=8, n=2), seeds=[4, 4])
    assert out[0][0].usage["prompt_tokens"] == 40
    # Only the differing beginnings were cut, so both prompts answer identically.
    assert texts(out[0]) == texts(out[1])
    scores = llm.label_logprobs([a, b], ["like", "dislike"])
    assert scores[0] == scores[1]
    # The generation prompt survives truncation: the answer slot is still the assistant's turn.
    assert llm._encode(a)[-3:] == llm._encode([{"role": "user", "content": "x"}])[-3:]
    llm.close()


def test_thread_setting_applies_only_during_calls(tiny_llm):
    before = torch.get_num_threads()
    seen = []
    real_generate = tiny_llm._engine.model.generate

    def spying_generate(**kwargs):
        seen.append(torch.get_num_threads())
        return real_generate(**kwargs)

    tiny_llm._engine.model.generate = spying_generate
    try:
        tiny_llm.generate([PROMPT], GREEDY, seeds=[0])
    finally:
        del tiny_llm._engine.model.generate
    assert seen == [1]
    assert torch.get_num_threads() == before
