"""LoRA adapters: views share the base weights, answer differently, and leave the base intact."""

from __future__ import annotations

import shutil

import pytest

from lettingo.llm import SamplingParams

PROMPTS = [
    [{"role": "user", "content": "Will this user like the film?"}],
    [{"role": "user", "content": "Rate it."}],
]
LABELS = ["like", "neutral", "dislike"]


def close_to(a, b):
    return all(x[k] == pytest.approx(y[k], abs=1e-5) for x, y in zip(a, b) for k in LABELS)


@pytest.fixture
def base(tiny_model):
    from lettingo_transformers.backend import TransformersLLM

    llm = TransformersLLM(model=tiny_model, device="cpu", threads=1)
    yield llm
    llm.close()


def test_adapter_view_answers_differently_and_base_stays_base(base, lora_adapter, other_lora_adapter):
    before = base.label_logprobs(PROMPTS, LABELS)
    adapted = base.with_adapter(lora_adapter)
    with_a = adapted.label_logprobs(PROMPTS, LABELS)
    assert not close_to(with_a, before)
    assert close_to(base.label_logprobs(PROMPTS, LABELS), before)
    assert close_to(base.with_adapter(None).label_logprobs(PROMPTS, LABELS), before)

    other = base.with_adapter(other_lora_adapter)
    with_b = other.label_logprobs(PROMPTS, LABELS)
    assert not close_to(with_b, with_a)
    assert close_to(adapted.label_logprobs(PROMPTS, LABELS), with_a)  # switching back works
    assert close_to(base.label_logprobs(PROMPTS, LABELS), before)

    engine = base._engine
    assert adapted._engine is engine and other._engine is engine  # one set of base weights
    base.with_adapter(lora_adapter)
    assert len(engine.adapters) == 2  # an adapter is loaded once


def test_adapter_generation_differs_from_base(base, lora_adapter):
    params = SamplingParams(temperature=1.0, max_new_tokens=10, n=2)
    plain = base.generate(PROMPTS[:1], params, seeds=[3])[0]
    adapted = base.with_adapter(lora_adapter).generate(PROMPTS[:1], params, seeds=[3])[0]
    assert [g.text for g in adapted] != [g.text for g in plain]
    assert [g.text for g in base.generate(PROMPTS[:1], params, seeds=[3])[0]] == [g.text for g in plain]


def test_shared_prefill_answers_through_the_adapter(base, lora_adapter, monkeypatch):
    adapted = base.with_adapter(lora_adapter)
    params = SamplingParams(temperature=1.0, max_new_tokens=8, n=3)
    shared = adapted.generate(PROMPTS, params, seeds=[3, 4])
    monkeypatch.setattr(adapted, "_prefill", lambda *args: None)  # each sample prefilled by generate
    assert [[g.text for g in s] for s in adapted.generate(PROMPTS, params, seeds=[3, 4])] == [
        [g.text for g in s] for s in shared
    ]


def test_identity_names_the_adapter_by_digest(base, lora_adapter, other_lora_adapter, tmp_path):
    assert base.identity() == {
        "backend": "transformers", "model": base.model_name, "adapter": None,
        "dtype": "float32", "max_input_tokens": 2048, "sampler": "per-row-exponential-race/1",
    }
    digest = base.with_adapter(lora_adapter).identity()["adapter"]
    assert len(digest) == 64 and lora_adapter not in str(base.with_adapter(lora_adapter).identity())
    assert base.with_adapter(other_lora_adapter).identity()["adapter"] != digest
    # A copy elsewhere, with a README added, is the same adapter.
    copy = shutil.copytree(lora_adapter, tmp_path / "copy")
    (copy / "README.md").write_text("notes")
    assert base.with_adapter(str(copy)).identity()["adapter"] == digest
    assert base.identity()["adapter"] is None


def test_adapter_from_config_at_start(tiny_model, base, lora_adapter):
    from lettingo_transformers.backend import TransformersLLM

    started = TransformersLLM(model=tiny_model, device="cpu", threads=1, adapter=lora_adapter)
    assert started.identity()["adapter"] == base.with_adapter(lora_adapter).identity()["adapter"]
    assert close_to(
        started.label_logprobs(PROMPTS, LABELS), base.with_adapter(lora_adapter).label_logprobs(PROMPTS, LABELS)
    )
    assert close_to(started.with_adapter(None).label_logprobs(PROMPTS, LABELS), base.label_logprobs(PROMPTS, LABELS))
    started.close()


def test_a_folder_without_an_adapter_is_refused_clearly(base, tmp_path):
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        base.with_adapter(str(tmp_path))


def test_close_frees_every_view(tiny_model, lora_adapter):
    from lettingo_transformers.backend import TransformersLLM

    llm = TransformersLLM(model=tiny_model, device="cpu", threads=1)
    view = llm.with_adapter(lora_adapter)
    llm.close()
    with pytest.raises(RuntimeError, match="closed"):
        view.label_logprobs(PROMPTS, LABELS)
