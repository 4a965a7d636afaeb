"""Generation on the tiny random Llama: samples, seeds, batching, greedy decoding, usage, truncation."""

from __future__ import annotations

import contextlib

import pytest
import torch

from lettingo.llm import SamplingParams

PROMPT = [{"role": "user", "content": "Describe this user's taste in movies."}]
OTHER = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Another, longer prompt here."}]
# Batch mates of different token lengths, so PROMPT sits in a left-padded batch.
MATES = [
    [{"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "The user liked " + ", ".join(f"film {i}" for i in range(30)) + "."}],
    OTHER,
]
SAMPLE = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=12, n=3)
NUCLEUS = SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=12, n=2)
GREEDY = SamplingParams(temperature=0.0, max_new_tokens=12, n=2)


def texts(generations):
    return [g.text for g in generations]


@contextlib.contextmanager
def recorded_generate_calls(llm):
    """Each ``model.generate`` call's kwargs and output, while the real generate runs."""
    model = llm._engine.model
    real_generate = model.generate
    calls = []

    def recording_generate(**kwargs):
        output = real_generate(**kwargs)
        calls.append({**kwargs, "output": output})
        return output

    model.generate = recording_generate
    try:
        yield calls
    finally:
        del model.generate


def test_n_samples_per_prompt_with_usage(tiny_llm):
    out = tiny_llm.generate([PROMPT, OTHER], SAMPLE, seeds=[1, 2])
    assert [len(samples) for samples in out] == [3, 3]
    for samples in out:  # temperature 1 on a random model: a prompt's samples all differ
        assert len(set(texts(samples))) == 3
    for generation in out[0] + out[1]:
        assert isinstance(generation.text, str)
        assert generation.usage["prompt_tokens"] > 10
        assert 1 <= generation.usage["completion_tokens"] <= SAMPLE.max_new_tokens
        assert generation.usage["latency_s"] >= 0
    assert out[0][0].usage["prompt_tokens"] == len(tiny_llm._encode(PROMPT))  # not the padded width
    assert out[1][0].usage["prompt_tokens"] == len(tiny_llm._encode(OTHER))


@pytest.mark.parametrize("params", [SAMPLE, NUCLEUS, GREEDY], ids=["t1", "t0.7-top_p0.9", "greedy"])
def test_a_prompts_samples_do_not_depend_on_its_batch_mates(tiny_llm, untied_llm, params):
    llm = untied_llm if params is GREEDY else tiny_llm
    for seed in (0, 7, 31):
        alone = llm.generate([PROMPT], params, seeds=[seed])[0]
        batched = llm.generate([MATES[0], PROMPT, MATES[1], MATES[2]], params, seeds=[5, seed, 6, 9])
        assert texts(batched[1]) == texts(alone), f"seed {seed}"
        # ... and the batch mates' answers are their own, not copies of PROMPT's.
        assert texts(batched[0]) != texts(alone) and texts(batched[2]) != texts(alone)


def test_batch_mates_share_one_padded_call(tiny_llm):
    with recorded_generate_calls(tiny_llm) as calls:
        tiny_llm.generate([PROMPT, *MATES], SAMPLE, seeds=[1, 2, 3, 4])
    [call] = calls  # 4 prompts x 3 samples <= 16 sequences
    assert call["input_ids"].shape[0] == 12
    lengths = call["attention_mask"].sum(-1)
    assert len(set(lengths.tolist())) == 4  # different lengths, left-padded to one width
    assert bool((call["attention_mask"][:, -1] == 1).all())  # padding on the left
    assert call["do_sample"] is False  # sampling happens in the per-row logits processor


def test_a_prompts_samples_share_one_prefill(tiny_llm, monkeypatch):
    prompts = [PROMPT, *MATES]
    real_prefill, prefills = tiny_llm._prefill, []

    def recording_prefill(engine, input_ids, attention):
        cache = real_prefill(engine, input_ids, attention)
        prefills.append((input_ids.shape, cache.get_seq_length(), cache.layers[0].keys.shape[0]))
        return cache

    monkeypatch.setattr(tiny_llm, "_prefill", recording_prefill)
    with recorded_generate_calls(tiny_llm) as calls:
        shared = tiny_llm.generate(prompts, SAMPLE, seeds=[1, 2, 3, 4])
    [call] = calls
    width = call["input_ids"].shape[1]
    # One prefill row per prompt, of all its tokens but the last, which generate feeds itself ...
    assert prefills == [((4, width), width - 1, 4)]
    # ... and its cache copied for each of the prompt's samples.
    assert call["past_key_values"].layers[0].keys.shape[0] == 4 * SAMPLE.n
    # Prefilling each sample's row on its own gives the same samples.
    monkeypatch.setattr(tiny_llm, "_prefill", lambda *args: None)
    with recorded_generate_calls(tiny_llm) as calls:
        separate = tiny_llm.generate(prompts, SAMPLE, seeds=[1, 2, 3, 4])
    assert "past_key_values" not in calls[0]
    assert [texts(s) for s in separate] == [texts(s) for s in shared]


def test_generate_batch_size_caps_sequences_per_call_and_groups_lengths(tiny_model):
    from lettingo_transformers.backend import TransformersLLM

    llm = TransformersLLM(model=tiny_model, device="cpu", threads=1, generate_batch_size=7)
    prompts = [[{"role": "user", "content": "word " * k}] for k in (40, 1, 30, 5, 20)]
    params = SamplingParams(temperature=1.0, max_new_tokens=3, n=3)
    with recorded_generate_calls(llm) as calls:
        out = llm.generate(prompts, params, seeds=[0, 1, 2, 3, 4])
    assert [call["input_ids"].shape[0] for call in calls] == [6, 6, 3]  # 2 prompts x 3 samples <= 7
    # Shortest prompts first, similar lengths together: each call's prompts are adjacent in length.
    widths = [call["input_ids"].shape[1] for call in calls]
    assert widths == sorted(widths)
    assert [len(samples) for samples in out] == [3] * 5

    # A prompt's samples are never split: n above the cap gives one prompt per call.
    with recorded_generate_calls(llm) as calls:
        llm.generate(prompts[:2], SamplingParams(temperature=1.0, max_new_tokens=3, n=8), seeds=[0, 1])
    assert [call["input_ids"].shape[0] for call in calls] == [8, 8]
    # Greedy decodes one row per prompt, so 7 prompts fit.
    with recorded_generate_calls(llm) as calls:
        llm.generate(prompts, SamplingParams(temperature=0, max_new_tokens=3, n=3), seeds=[0] * 5)
    assert [call["input_ids"].shape[0] for call in calls] == [5]
    llm.close()


def test_generate_batch_size_must_be_positive(tiny_model):
    from lettingo_transformers.backend import TransformersLLM

    with pytest.raises(ValueError, match="generate_batch_size"):
        TransformersLLM(model=tiny_model, device="cpu", generate_batch_size=0)


def test_completion_tokens_are_counted_per_row(tiny_llm):
    prompts = [PROMPT, OTHER]
    first = tiny_llm.generate(prompts, SAMPLE, seeds=[3, 4])
    assert all(g.usage["completion_tokens"] == SAMPLE.max_new_tokens for g in first[0] + first[1])
    # Make the token row 0 sampled fourth an end-of-turn token: row 0 now stops there, the others
    # (same seeds, same draws) run on, and finished rows are padded inside the batch.
    with recorded_generate_calls(tiny_llm) as calls:
        tiny_llm.generate(prompts, SAMPLE, seeds=[3, 4])
    batch_rows = calls[0]["output"][:, -SAMPLE.max_new_tokens :].tolist()
    # The call holds the prompts shortest first, each prompt's n samples together.
    order = sorted(range(len(prompts)), key=lambda i: len(tiny_llm._encode(prompts[i])))
    rows = [row for i in range(len(prompts)) for row in batch_rows[order.index(i) * 3 : order.index(i) * 3 + 3]]
    engine = tiny_llm._engine
    stop = rows[0][3]
    original = engine.stop_ids
    engine.stop_ids = sorted(set(original) | {stop})
    try:
        second = tiny_llm.generate(prompts, SAMPLE, seeds=[3, 4])
    finally:
        engine.stop_ids = original
    flat = second[0] + second[1]
    for row, generation in zip(rows, flat):
        expected = row.index(stop) + 1 if stop in row else SAMPLE.max_new_tokens
        assert generation.usage["completion_tokens"] == expected
        expected_text = engine.tokenizer.decode(row[:expected], skip_special_tokens=True).strip()
        assert generation.text == expected_text
    assert flat[0].usage["completion_tokens"] <= 4


def test_same_seed_same_samples_and_different_seeds_differ(tiny_llm):
    first = tiny_llm.generate([PROMPT], SAMPLE, seeds=[7])
    assert texts(tiny_llm.generate([PROMPT], SAMPLE, seeds=[7])[0]) == texts(first[0])
    assert texts(tiny_llm.generate([PROMPT], SAMPLE, seeds=[8])[0]) != texts(first[0])


def test_greedy_matches_plain_greedy_generate_and_ignores_seed(untied_llm):
    first = untied_llm.generate([PROMPT, OTHER], GREEDY, seeds=[1, 2])
    second = untied_llm.generate([PROMPT], GREEDY, seeds=[99])[0]
    assert len(first[0]) == 2 and texts(first[0]) == texts(second)
    assert first[0][0].text == first[0][1].text
    assert first[0][0].usage["completion_tokens"] == second[0].usage["completion_tokens"]
    assert first[0][0].text and first[1][0].text != first[0][0].text
    # The same tokens as transformers' own greedy decoding of the prompt alone.
    engine = untied_llm._engine
    ids = torch.tensor([untied_llm._encode(OTHER)])
    with torch.inference_mode():
        plain = engine.model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=12,
            eos_token_id=engine.stop_ids, pad_token_id=engine.pad_id,
        )
    row = plain[0, ids.shape[1] :].tolist()
    assert first[1][0].usage["completion_tokens"] == len(row)
    assert first[1][0].text == engine.tokenizer.decode(row, skip_special_tokens=True).strip()


def test_seeding_leaves_the_global_random_state_alone(tiny_llm):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    tiny_llm.generate([PROMPT, OTHER], SAMPLE, seeds=[5, 6])
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
