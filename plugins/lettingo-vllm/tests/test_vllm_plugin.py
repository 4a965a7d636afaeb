"""The plugin through lettingo: registration, config file, config errors."""

from __future__ import annotations

import importlib.metadata

import pytest
from omegaconf import OmegaConf

from lettingo import plugins


def test_settings_are_the_backend_keys():
    from lettingo_vllm.backend import ENGINE_DEFAULTS
    from lettingo_vllm.settings import VLLMSettings

    cfg = OmegaConf.structured(VLLMSettings)
    assert cfg.name == "vllm"
    assert set(cfg) - {"name", "model", "max_input_tokens", "adapter"} == set(ENGINE_DEFAULTS)


def test_entry_point_is_installed():
    found = importlib.metadata.entry_points(group="lettingo", name="vllm")
    assert [ep.value for ep in found] == ["lettingo_vllm.plugin"]


def test_registered_through_lettingo():
    import lettingo_vllm.plugin

    from lettingo.testing import plugin_registered

    with plugin_registered(lettingo_vllm.plugin, "vllm-test"):
        assert "vllm" in plugins.components("llm")
        assert plugins.factory("llm", "vllm").Settings.__name__ == "VLLMSettings"


def test_unknown_keys_and_impossible_lengths_are_refused_before_loading():
    from lettingo_vllm.backend import VLLMBackend

    with pytest.raises(ValueError, match=r"unknown key\(s\) \['max_tokens'\].*engine_args"):
        VLLMBackend.from_config({"name": "vllm", "max_tokens": 5})
    with pytest.raises(ValueError, match="must be below max_model_len"):
        VLLMBackend.from_config({"name": "vllm", "max_input_tokens": 4096, "max_model_len": 4096})
