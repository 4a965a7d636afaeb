"""The plugin through lettingo: registration, config file, config errors."""

from __future__ import annotations

import importlib.metadata
import importlib.resources

import pytest
from omegaconf import OmegaConf

from lettingo import plugins


def test_config_file_keys_are_the_backend_keys():
    from lettingo_vllm.backend import CONFIG_KEYS

    conf = importlib.resources.files("lettingo_vllm") / "conf" / "llm" / "vllm.yaml"
    cfg = OmegaConf.create(conf.read_text())
    assert cfg.name == "vllm"
    assert set(cfg) - {"name"} == set(CONFIG_KEYS)


def test_entry_point_is_installed():
    found = importlib.metadata.entry_points(group="lettingo", name="vllm")
    assert [ep.value for ep in found] == ["lettingo_vllm.plugin"]


def test_registered_through_lettingo():
    import lettingo_vllm.plugin

    from lettingo.testing import plugin_registered

    with plugin_registered(lettingo_vllm.plugin, "vllm-test"):
        assert "vllm" in plugins.components("llm")
        assert "pkg://lettingo_vllm/conf" in plugins.config_searchpath()


def test_unknown_keys_and_impossible_lengths_are_refused_before_loading():
    from lettingo_vllm.backend import VLLMBackend

    with pytest.raises(ValueError, match=r"unknown key\(s\) \['max_tokens'\].*engine_args"):
        VLLMBackend.from_config({"name": "vllm", "max_tokens": 5})
    with pytest.raises(ValueError, match="must be below max_model_len"):
        VLLMBackend.from_config({"name": "vllm", "max_input_tokens": 4096, "max_model_len": 4096})
