"""The real SmolLM2-135M-Instruct through the real path: alias, conversion cache, chat template."""

from __future__ import annotations

import re

from lettingo.llm import SamplingParams


def test_real_smollm2_answers_in_english():
    from lettingo_transformers.backend import TransformersLLM

    llm = TransformersLLM(model="smollm2-135m-instruct", device="cpu", threads=1)
    assert llm.identity()["model"] == "smollm2-135m-instruct"  # the alias, not a machine path
    prompt = [{"role": "user", "content": "What is the capital of France?"}]
    [[answer]] = llm.generate([prompt], SamplingParams(temperature=0, max_new_tokens=16), seeds=[0])
    words = re.findall(r"[A-Za-z]+", answer.text)
    assert len(words) >= 3, answer.text
    assert sum(len(w) for w in words) >= 0.6 * len(answer.text.replace(" ", "")), answer.text
    assert "paris" in answer.text.lower(), answer.text  # greedy float32: "The capital of France is Paris."
    llm.close()
