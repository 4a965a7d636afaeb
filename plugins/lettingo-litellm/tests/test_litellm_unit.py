"""Pure functions of the litellm backend, and config errors (no server needed)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from omegaconf import OmegaConf

from lettingo_litellm.backend import (
    DEFAULTS, LiteLLMBackend, first_token_label_logprobs, parse_label, public_base,
)
from lettingo_litellm.settings import LiteLLMSettings

LABELS = ["like", "neutral", "dislike"]


def test_settings_are_the_backend_keys():
    fields = {f.name: f.default for f in dataclasses.fields(LiteLLMSettings)}
    assert fields["name"] == "litellm" and set(fields) - {"name", "model"} == set(DEFAULTS)
    assert all(DEFAULTS[k] == v for k, v in fields.items() if k in DEFAULTS and k != "extra_body")


def test_a_key_in_config_is_refused_with_advice():
    with pytest.raises(ValueError, match="API keys never go in config") as refused:
        LiteLLMBackend.from_config({"name": "litellm", "model": "gpt-4o-mini", "api_key": "sk-abc"})
    assert "sk-abc" not in str(refused.value)  # the key is named, its value never shown
    with pytest.raises(ValueError, match="set llm.model"):
        LiteLLMBackend.from_config(OmegaConf.create({"name": "litellm", "model": "???"}))


def test_public_base_drops_credentials_and_query():
    assert public_base("https://user:sk-123@api.example.com:8443/v1/?key=abc") == "https://api.example.com:8443/v1"
    assert public_base(None) is None


def test_first_token_scores():
    scores = first_token_label_logprobs({"like": -0.5, " Like": -1.0, "dis": -2.0, "?": -3.0, " ": -4.0}, LABELS)
    assert scores["like"] == pytest.approx(math.log(math.exp(-0.5) + math.exp(-1.0)))
    assert scores["dislike"] == -2.0 and scores["neutral"] == -math.inf


def test_a_token_that_starts_two_labels_counts_for_neither():
    scores = first_token_label_logprobs({"Yes": -0.2, "No": -1.5}, ["yes", "yes, definitely", "no"])
    assert scores == {"yes": -math.inf, "yes, definitely": -math.inf, "no": -1.5}


@pytest.mark.parametrize("answer, label", [
    ("Like.", "like"), ("dislike", "dislike"), ("Neutral - hard to say", "neutral"),
    ("I think they would dislike it", "dislike"),
])
def test_free_text_answers_are_parsed(answer, label):
    scores = parse_label(answer, LABELS)
    assert scores[label] == 0.0 and sum(v == 0.0 for v in scores.values()) == 1


@pytest.mark.parametrize("answer", ["", "maybe", "hard to tell: like and dislike", "They will like it, not dislike it"])
def test_unreadable_answers_score_nothing(answer):
    assert all(v == -math.inf for v in parse_label(answer, LABELS).values())


def test_adapters_are_refused_with_advice():
    llm = LiteLLMBackend(model="gpt-4o-mini")
    with pytest.raises(ValueError, match="llm=vllm"):
        llm.with_adapter("/some/adapter")
    assert llm.with_adapter(None) is llm
    llm.close()


def test_a_key_in_a_config_node_built_by_lettingo_is_refused_with_advice_and_never_shown():
    from lettingo.components import Context
    from lettingo.errors import ComponentConfigError
    from lettingo.testing import plugin_registered
    import lettingo_litellm.plugin

    with plugin_registered(lettingo_litellm.plugin, "litellm-test"):
        with pytest.raises(ComponentConfigError, match=r"\['api_key'\].*api_key_env") as refused:
            Context(cache=None).build("llm", {"name": "litellm", "model": "gpt-4o-mini", "api_key": "sk-abc"})
    assert "sk-abc" not in str(refused.value)
