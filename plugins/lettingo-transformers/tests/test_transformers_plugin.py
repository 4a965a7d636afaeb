"""The plugin through lettingo: registration, config file, entry point, cached engine."""

from __future__ import annotations

import importlib.metadata
import inspect

import pytest
from omegaconf import OmegaConf

from lettingo import plugins
from lettingo.cache import CallCache
from lettingo.components import Context
from lettingo.llm import LLM, SamplingParams


@pytest.fixture
def registered():
    import lettingo_transformers.plugin

    from lettingo.testing import plugin_registered

    with plugin_registered(lettingo_transformers.plugin, "transformers-test"):
        yield


def test_settings_match_the_registered_name_and_constructor():
    from lettingo_transformers.backend import TransformersLLM
    from lettingo_transformers.settings import TransformersSettings

    cfg = OmegaConf.structured(TransformersSettings)
    assert cfg.name == "transformers"
    signature = inspect.signature(TransformersLLM.__init__).parameters
    assert set(cfg) - {"name"} == set(signature) - {"self"}
    assert all(signature[k].default == cfg[k] for k in signature if k != "self")  # one home of the defaults
    assert cfg.model == "smollm2-135m-instruct" and cfg.device == "auto"


def test_entry_point_is_installed():
    found = importlib.metadata.entry_points(group="lettingo", name="transformers")
    assert [ep.value for ep in found] == ["lettingo_transformers.plugin"]


def test_registered_through_lettingo(registered):
    assert "transformers" in plugins.components("llm")
    assert plugins.factory("llm", "transformers").Settings.__name__ == "TransformersSettings"


def test_context_builds_a_cached_engine(registered, tiny_model):
    ctx = Context(cache=CallCache())
    llm = ctx.llm({"name": "transformers", "model": tiny_model, "device": "cpu", "threads": 1})
    assert isinstance(llm.backend, LLM)
    prompts = [[{"role": "user", "content": "Hello"}]]
    params = SamplingParams(temperature=1.0, max_new_tokens=6, n=2)
    first = llm.generate(prompts, params, seeds=[11])
    calls, hits = llm.stats["calls"], llm.stats["cache_hits"]
    again = ctx.llm({"name": "transformers", "model": tiny_model, "device": "cpu", "threads": 1})
    assert again.backend is llm.backend  # the same config shares one engine
    second = again.generate(prompts, params, seeds=[11])
    assert again.stats["cache_hits"] == hits + 1 and again.stats["calls"] == calls
    assert [g.text for g in second[0]] == [g.text for g in first[0]]
    assert all(g.usage["cached"] for g in second[0])
    ctx.release_llms()


def test_unknown_config_keys_are_refused(registered, tiny_model):
    with pytest.raises(ValueError, match="unknown key.*temprature"):
        Context().llm({"name": "transformers", "model": tiny_model, "temprature": 0.5})
