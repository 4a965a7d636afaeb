"""Retries, recorded failures, timeouts and secrets, against scripted servers on 127.0.0.1."""

from __future__ import annotations

import math
import time

import pytest
from servers import completion_body, scripted_server

from lettingo.llm import SamplingParams

SECRET = "sk-test-SECRET-0123456789abcdef"
PROMPT = [[{"role": "user", "content": "Write a profile."}]]


def backend(url, **settings):
    from lettingo_litellm.backend import LiteLLMBackend

    defaults = {"api_key_env": "LETTINGO_TEST_KEY", "backoff_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 10}
    return LiteLLMBackend(model="openai/scripted", api_base=url, **{**defaults, **settings})


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("LETTINGO_TEST_KEY", SECRET)


def test_rate_limits_and_server_errors_are_retried():
    script = [(429, {"message": "slow down"}), (429, {"message": "slow down"}), (500, {"message": "oops"})]
    with scripted_server(script) as server:
        llm = backend(server["url"], max_retries=4)
        out = llm.generate(PROMPT, SamplingParams(max_new_tokens=8, n=2), seeds=[3])
    assert [g.text for g in out[0]] == ["like", "like"] and "error" not in out[0][0].usage
    assert llm.stats == {"requests": 4, "retries": 3, "failures": 0}
    assert len(server["requests"]) == 4 and server["requests"][-1]["n"] == 2
    assert server["requests"][-1]["seed"] == 3


def test_a_request_that_keeps_failing_is_recorded_without_the_key():
    with scripted_server([(500, {"message": "down"})] * 3) as server:
        llm = backend(server["url"], max_retries=2)
        out = llm.generate(PROMPT, SamplingParams(max_new_tokens=8, n=2), seeds=[3])
    for generation in out[0]:
        assert generation.text == ""
        assert "InternalServerError" in generation.usage["error"] and "after 3 attempts" in generation.usage["error"]
        assert SECRET not in generation.usage["error"] and "SECRET" not in generation.usage["error"]
    assert llm.stats["failures"] == 1


def test_client_errors_are_not_retried():
    with scripted_server([(400, {"message": "bad request"})]) as server:
        llm = backend(server["url"], max_retries=4)
        out = llm.generate(PROMPT, SamplingParams(max_new_tokens=8), seeds=[0])
    assert "BadRequestError" in out[0][0].usage["error"] and len(server["requests"]) == 1


def test_a_hanging_server_times_out():
    with scripted_server([], hang_s=5) as server:
        llm = backend(server["url"], timeout_s=0.5, max_retries=1)
        started = time.monotonic()
        out = llm.generate(PROMPT, SamplingParams(max_new_tokens=8), seeds=[0])
        elapsed = time.monotonic() - started
    assert "Timeout" in out[0][0].usage["error"]
    assert elapsed < 4  # two attempts of 0.5 s, not the server's 5 s each
    assert llm.stats["retries"] == 1 and llm.stats["failures"] == 1


def test_failed_label_scores_are_nan_and_never_cached(tmp_path):
    from lettingo.cache import CachedLLM, CallCache

    with scripted_server([(503, {"message": "busy"})] * 2) as server:
        cached = CachedLLM(backend(server["url"], max_retries=1, label_scoring="text"), CallCache(tmp_path / "c.sqlite"))
        failed = cached.label_logprobs(PROMPT, ["like", "dislike"])[0]
        assert all(math.isnan(v) for v in failed.values())
        answered = cached.label_logprobs(PROMPT, ["like", "dislike"])[0]  # asked again, not from the cache
    assert answered == {"like": 0.0, "dislike": -math.inf}
    assert cached.stats["calls"] == 2 and cached.stats["cache_hits"] == 0


def test_failed_generations_are_never_cached(tmp_path):
    from lettingo.cache import CachedLLM, CallCache

    with scripted_server([(500, {"message": "down"})] * 2) as server:
        cached = CachedLLM(backend(server["url"], max_retries=1), CallCache(tmp_path / "c.sqlite"))
        params = SamplingParams(max_new_tokens=8, n=2)
        assert "error" in cached.generate(PROMPT, params, [1])[0][0].usage
        again = cached.generate(PROMPT, params, [1])[0]
        third = cached.generate(PROMPT, params, [1])[0]
    assert [g.text for g in again] == ["like", "like"] and "cached" not in again[0].usage
    assert third[0].usage.get("cached") is True


def test_a_missing_key_variable_is_named():
    with scripted_server([]) as server:
        llm = backend(server["url"], api_key_env="LETTINGO_UNSET_KEY_VARIABLE")
        with pytest.raises(ValueError, match="LETTINGO_UNSET_KEY_VARIABLE"):
            llm.generate(PROMPT, SamplingParams(max_new_tokens=8), seeds=[0])


def test_providers_ignoring_n_leave_the_rest_failed():
    with scripted_server([(200, completion_body(n=1))]) as server:
        out = backend(server["url"]).generate(PROMPT, SamplingParams(max_new_tokens=8, n=3), seeds=[0])
    assert out[0][0].text == "like" and "n_per_request=false" in out[0][2].usage["error"]


def test_one_request_per_sample_when_asked():
    with scripted_server([]) as server:
        out = backend(server["url"], n_per_request=False).generate(PROMPT, SamplingParams(n=3), seeds=[10])
        seeds = sorted(r["seed"] for r in server["requests"])
    assert len(out[0]) == 3 and seeds == [10, 11, 12]
