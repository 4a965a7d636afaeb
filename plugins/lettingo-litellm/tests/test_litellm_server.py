"""The litellm backend against a real OpenAI-compatible server (vLLM's) on 127.0.0.1."""

from __future__ import annotations

import pytest

from lettingo.llm import LLM, SamplingParams

PROMPTS = [
    [{"role": "user", "content": "Describe a movie fan who loves Alien, Blade Runner and The Matrix."}],
    [{"role": "user", "content": "In one sentence, what does a person who rates Toy Story 5 stars like?"}],
]
JUDGE = [[{"role": "user", "content": "The user loved Star Wars and Alien. Will they like Aliens? "
                                      "Answer with one word: like, neutral, or dislike."}]]


def test_implements_the_protocol_and_names_no_secret(served_llm, monkeypatch):
    assert isinstance(served_llm, LLM)
    identity = served_llm.identity()
    assert identity["backend"] == "litellm" and identity["model"] == "openai/smollm2"
    assert identity["api_base"].startswith("http://127.0.0.1:")


def test_chat_with_n_samples_and_usage(served_llm):
    out = served_llm.generate(PROMPTS, SamplingParams(temperature=1.0, max_new_tokens=16, n=3), seeds=[1, 2])
    assert [len(samples) for samples in out] == [3, 3]
    for samples in out:
        assert len({g.text for g in samples}) > 1
        for g in samples:
            assert g.text and "error" not in g.usage
            assert g.usage["prompt_tokens"] > 10 and 0 < g.usage["completion_tokens"] <= 16
            assert g.usage["cost_usd"] == 0.0  # a local model has no price
    assert served_llm.stats["failures"] == 0


def test_seeded_samples_repeat(served_llm):
    params = SamplingParams(temperature=1.0, max_new_tokens=16, n=2)
    first = served_llm.generate(PROMPTS[:1], params, seeds=[42])
    again = served_llm.generate(PROMPTS[:1], params, seeds=[42])
    assert [g.text for g in first[0]] == [g.text for g in again[0]]


def test_greedy_answers_equal_the_transformers_backend(served_llm, transformers_llm):
    params = SamplingParams(temperature=0.0, max_new_tokens=24, n=2)
    ours = served_llm.generate(PROMPTS, params, seeds=[0, 0])
    theirs = transformers_llm.generate(PROMPTS, params, seeds=[0, 0])
    assert [[g.text for g in s] for s in ours] == [[g.text for g in s] for s in theirs]


def test_label_logprobs_from_the_servers_logprobs(served_llm, transformers_llm):
    labels = ["like", "neutral", "dislike"]
    ours = served_llm.label_logprobs(JUDGE, labels)[0]
    theirs = transformers_llm.label_logprobs(JUDGE, labels)[0]
    assert list(ours) == labels
    # each label's score gathers its first-token spellings ("like", " like", "Like", ...), so it is
    # at least the exact label's probability; "dislike" is "dis" + "like", bounded by its first token
    for label in labels:
        assert ours[label] >= theirs[label] - 2e-3
    # and the server's log-prob of the exact token is the model's own
    from lettingo_litellm.backend import _first_position_logprobs

    response, _, _ = served_llm._call({"messages": JUDGE[0], "max_tokens": 1, "temperature": 0.0,
                                       "logprobs": True, "top_logprobs": 20})
    alternatives = _first_position_logprobs(response.choices[0])
    assert alternatives["like"] == pytest.approx(theirs["like"], abs=2e-3)


ECHO = [[{"role": "user", "content": "Choose one word from: like, neutral, dislike."}]]  # SmolLM2: "like"


def test_free_text_label_scoring_reads_the_servers_own_reply(vllm_server):
    """label_scoring=text: the label the server's greedy reply names scores 0, the others -inf; a
    reply naming none (or several) scores -inf for all. Checked against the reply the real server
    gives to the same request, for a prompt whose reply names a label and for the judge prompt."""
    from lettingo_litellm.backend import LiteLLMBackend, parse_label

    llm = LiteLLMBackend(model="openai/smollm2", api_base=vllm_server, label_scoring="text")
    labels = ["like", "neutral", "dislike"]
    for prompt in (ECHO, JUDGE):
        [scores] = llm.label_logprobs(prompt, labels)
        response, _, _ = llm._call({"messages": prompt[0], "temperature": 0.0, "max_tokens": 8, "seed": 0})
        reply = response.choices[0].message.content or ""
        assert scores == parse_label(reply, labels), reply
        assert set(scores.values()) <= {0.0, float("-inf")} and list(scores.values()).count(0.0) <= 1
        if prompt is ECHO:  # a reply that is a label: the positive case is really exercised
            assert reply.strip().lower().startswith("like") and scores["like"] == 0.0, reply
    llm.close()
