"""Retries, recorded failures, timeouts and secrets, against scripted servers on 127.0.0.1."""

from __future__ import annotations

import json
import math
import time

import pytest
from servers import Drop, Raw, completion_body, refused_url, scripted_server

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


# -- answers that are not a completion: a broken body, a proxy's error page, no choices ---------
# A 200 whose body is not a usable completion is what a reverse proxy or a crashing server sends
# (a truncated body, an HTML error page): transient, so retried like a 5xx, then recorded.

NOT_A_COMPLETION = {
    "truncated JSON": (Raw(200, '{"choices": ['), "Expecting value"),
    "an HTML error page": (Raw(200, "<html>502 Bad Gateway ({auth})</html>", "text/html"), "502 Bad Gateway"),
    "JSON without choices": (Raw(200, '{"id": "x", "object": "chat.completion"}'), "no 'choices'"),
    "an empty choices list": (Raw(200, '{"id": "x", "object": "chat.completion", "choices": []}'), "no choices"),
}


def assert_recorded(error: str, url: str, readable: str, attempts: int):
    assert readable in error and f"after {attempts} attempts" in error
    assert f"(openai/scripted at {url})" in error  # names the endpoint
    assert SECRET not in error and "SECRET" not in error


@pytest.mark.parametrize("case", NOT_A_COMPLETION)
def test_a_broken_answer_is_retried(case):
    entry, _ = NOT_A_COMPLETION[case]
    with scripted_server([entry]) as server:
        llm = backend(server["url"], max_retries=1)
        out = llm.generate(PROMPT, SamplingParams(max_new_tokens=8), seeds=[0])
    assert out[0][0].text == "like" and "error" not in out[0][0].usage
    assert llm.stats == {"requests": 2, "retries": 1, "failures": 0}


@pytest.mark.parametrize("case", NOT_A_COMPLETION)
def test_broken_answers_are_recorded_never_cached_and_asked_again(case, tmp_path):
    from lettingo.cache import CachedLLM, CallCache

    entry, readable = NOT_A_COMPLETION[case]
    with scripted_server([entry] * 2) as server:
        cached = CachedLLM(backend(server["url"], max_retries=1), CallCache(tmp_path / "c.sqlite"))
        params = SamplingParams(max_new_tokens=8, n=2)
        first = cached.generate(PROMPT, params, [1])[0]
        again = cached.generate(PROMPT, params, [1])[0]  # the server is fine now
        third = cached.generate(PROMPT, params, [1])[0]
    assert [g.text for g in first] == ["", ""]
    assert_recorded(first[0].usage["error"], server["url"], readable, attempts=2)
    assert [g.text for g in again] == ["like", "like"] and "cached" not in again[0].usage
    assert third[0].usage.get("cached") is True
    assert len(server["requests"]) == 3 and cached.backend.stats["failures"] == 1


@pytest.mark.parametrize("case", NOT_A_COMPLETION)
def test_broken_answers_score_nan_and_are_never_cached(case, tmp_path):
    from lettingo.cache import CachedLLM, CallCache

    entry, _ = NOT_A_COMPLETION[case]
    with scripted_server([entry] * 2) as server:
        cached = CachedLLM(backend(server["url"], max_retries=1), CallCache(tmp_path / "c.sqlite"))
        failed = cached.label_logprobs(PROMPT, ["like", "dislike"])[0]
        answered = cached.label_logprobs(PROMPT, ["like", "dislike"])[0]
        again = cached.label_logprobs(PROMPT, ["like", "dislike"])[0]
    assert set(failed) == {"like", "dislike"} and all(math.isnan(v) for v in failed.values())
    assert answered == again == {"like": 0.0, "dislike": -math.inf}  # auto: no logprobs, so the text
    assert cached.stats == {"calls": 2, "cache_hits": 1} and len(server["requests"]) == 3


def test_an_error_object_in_a_200_follows_its_code():
    """OpenRouter-style: 200 with {"error": {"code": 502}}; LiteLLM raises by the code, so it is retried."""
    with scripted_server([Raw(200, '{"error": {"message": "upstream overloaded", "code": 502}}')]) as server:
        llm = backend(server["url"], max_retries=1)
        out = llm.generate(PROMPT, SamplingParams(max_new_tokens=8), seeds=[0])
    assert out[0][0].text == "like" and llm.stats["retries"] == 1


# -- the network: nothing listening, a connection dropped mid-answer ---------------------------


def test_a_refused_connection_is_retried_then_recorded_and_the_backend_recovers():
    url = refused_url()
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    # credentials in the address must not reach the recorded error (nor the key, sent as a header)
    with_credentials = url.replace("http://", "http://user:hunter2-pw@") + "?token=qs-hunter3"
    llm = backend(with_credentials, max_retries=2)
    started = time.monotonic()
    out = llm.generate(PROMPT, SamplingParams(max_new_tokens=8, n=2), seeds=[0])
    scores = llm.label_logprobs(PROMPT, ["like", "dislike"])[0]
    assert time.monotonic() - started < 5
    error = out[0][0].usage["error"]
    assert out[0][1].usage["error"] == error and [g.text for g in out[0]] == ["", ""]
    assert_recorded(error, url, "Connection error", attempts=3)
    assert "hunter" not in error and "user:" not in error and "token" not in error
    assert all(math.isnan(v) for v in scores.values())
    assert llm.stats == {"requests": 6, "retries": 4, "failures": 2}
    with scripted_server([], port=port) as server:  # the server comes up: the same backend goes on
        out = llm.generate(PROMPT, SamplingParams(max_new_tokens=8), seeds=[0])
    assert out[0][0].text == "like" and len(server["requests"]) == 1


@pytest.mark.parametrize("drop", [Drop(), Drop(partial="")], ids=["mid-body", "after-headers"])
def test_a_connection_dropped_mid_answer_is_retried_then_recorded(drop):
    with scripted_server([drop] * 3) as server:
        llm = backend(server["url"], max_retries=1)
        lost = llm.generate(PROMPT, SamplingParams(max_new_tokens=8), seeds=[0])[0][0]
        kept = llm.generate(PROMPT, SamplingParams(max_new_tokens=8), seeds=[0])[0][0]  # drop, then an answer
    assert lost.text == "" and kept.text == "like" and "error" not in kept.usage
    assert_recorded(lost.usage["error"], server["url"], "Connection error", attempts=2)
    assert llm.stats == {"requests": 4, "retries": 2, "failures": 1} and len(server["requests"]) == 4


# -- a stage's view: a batch where some requests fail for good ---------------------------------


def test_a_batch_with_lasting_failures_caches_the_rest_within_the_failure_budget(tmp_path):
    """What explore does with a batch (lettingo.pipeline.explore.write_profiles): write the answered
    prompts, record each failed one in the stage's FailureBudget, and on a rerun ask only for those."""
    from lettingo.cache import CachedLLM, CallCache
    from lettingo.llm import failed
    from lettingo.pipeline.failures import FailureBudget, TooManyFailuresError

    users = ["alice", "bob", "carol", "dave"]
    prompts = [[{"role": "user", "content": f"Write the profile of {u}."}] for u in users]
    params = SamplingParams(max_new_tokens=8, n=2)
    broken = {"bob": (500, {"message": "down"}), "carol": Drop()}  # every time, whatever the order

    def stage(llm, budget):
        written = {}
        for user, gens in zip(users, llm.generate(prompts, params, seeds=[1, 2, 3, 4])):
            error = next((g.usage["error"] for g in gens if failed(g)), None)
            if error is not None:
                budget.record(f"task {user}", error)
                continue
            written[user] = [g.text for g in gens]
        return written

    with scripted_server([], by_prompt=broken) as server:
        llm = CachedLLM(backend(server["url"], max_retries=1, concurrency=4), CallCache(tmp_path / "c.sqlite"))
        budget = FailureBudget("explore", total=4, max_rate=0.5)
        assert stage(llm, budget) == {"alice": ["like", "like"], "dave": ["like", "like"]}
        summary = budget.summary()
        assert summary["failed_requests"] == 2 and summary["first_failure"].startswith("task bob: InternalServerError")
        assert SECRET not in summary["first_failure"] and f"at {server['url']})" in summary["first_failure"]
        assert llm.stats == {"calls": 4, "cache_hits": 0}

        # a rerun with a tighter budget: the answered ones come from the cache, the failed ones are
        # asked again and fail again, and the second failure is over the budget
        with pytest.raises(TooManyFailuresError, match=r"2 of 4 .*first failure: task bob: InternalServerError"):
            stage(llm, FailureBudget("explore", total=4, max_rate=0.25))
        assert llm.stats == {"calls": 6, "cache_hits": 2}

        broken.clear()  # the server is fixed: only bob and carol are asked for
        budget = FailureBudget("explore", total=4, max_rate=0.0)
        assert stage(llm, budget) == {u: ["like", "like"] for u in users} and budget.summary() == {}
        assert llm.stats == {"calls": 8, "cache_hits": 4}
    asked = [json.dumps(r["messages"]) for r in server["requests"]]
    assert [sum(u in a for a in asked) for u in users] == [1, 5, 5, 1]  # bob and carol: 2 + 2 attempts, then 1
