"""The plan is checked before the first LLM request: a run that cannot finish fails before it pays."""

from __future__ import annotations

import pytest

from lettingo import api, plugins
from lettingo.errors import PlanError
from lettingo.testing import tiny_overrides


@pytest.fixture(autouse=True)
def backends():
    plugins.load_entrypoints(only=["transformers", "trl", "litellm"])


def nothing_paid(run_dir) -> bool:
    return not (run_dir / "ledger.jsonl").exists() and not (run_dir / "profiles.jsonl").exists()


def test_an_api_generator_with_a_training_aligner_fails_before_explore(tmp_path, tiny_model):
    cfg = api.compose(tiny_overrides(tiny_model, train=4, test=3) + ["llm=litellm", "llm.model=gpt-4o-mini"])
    with pytest.raises(PlanError, match=r"aligner=dpo trains the generator's weights, but llm=litellm serves "
                                        r"'gpt-4o-mini' through an API.*llm=transformers or llm=vllm.*aligner=none"):
        api.run(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "tasks.jsonl").exists() and nothing_paid(tmp_path / "run")
    with pytest.raises(PlanError, match="aligner=dpo"):  # a dry run says so too
        api.run(api.compose(tiny_overrides(tiny_model, train=4, test=3) + [
            "llm=litellm", "llm.model=gpt-4o-mini", "dry_run=true"]), tmp_path / "dry")


def test_a_prompt_longer_than_the_models_context_fails_before_explore(tmp_path, tiny_model):
    cfg = api.compose(tiny_overrides(tiny_model, train=4, test=3) + ["llm.max_input_tokens=120"])
    with pytest.raises(PlanError) as error:
        api.run(cfg, tmp_path / "run")
    message = str(error.value)
    assert "the lettingo profile prompt of task" in message and "over max_input_tokens=120" in message
    assert "Raise llm.max_input_tokens, or shorten the prompt (protocol.profile_window, prompt.max_items)" in message
    assert nothing_paid(tmp_path / "run")


def test_the_judges_requests_are_checked_too(tmp_path, tiny_model):
    # profile prompts fit; the ranker's request (20 candidates and a profile) does not
    overrides = tiny_overrides(tiny_model, train=4, test=3) + [
        "recommender=llm_ranker", "recommender.llm={name: transformers, model: " + tiny_model + ", max_input_tokens: 300}"]
    with pytest.raises(PlanError, match=r"the judge's request of task .* over max_input_tokens=300.*"
                                        r"Raise recommender\.llm\.max_input_tokens"):
        api.run(api.compose(overrides), tmp_path / "run")
    assert nothing_paid(tmp_path / "run")
