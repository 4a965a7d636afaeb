"""An API key used by a run never reaches its artifacts, the call cache or the logs."""

from __future__ import annotations

import logging

import pytest
from servers import scripted_server

from lettingo import api, plugins
from lettingo.testing import tiny_model_dir, tiny_overrides

SECRET = "sk-live-DO-NOT-LEAK-9f8e7d6c5b4a"


@pytest.fixture
def tiny(tmp_path_factory):
    return str(tiny_model_dir(tmp_path_factory.mktemp("tiny")))


def test_a_run_with_an_api_generator_keeps_the_key_out_of_everything(tmp_path, tiny, monkeypatch, caplog):
    plugins.load_entrypoints(only=["transformers", "trl", "litellm"])
    monkeypatch.setenv("LETTINGO_SECRET_TEST_KEY", SECRET)
    cache = tmp_path / "cache" / "calls.sqlite"
    run_dir = tmp_path / "run"
    # the first two requests fail for good (the server echoes the Authorization header in its error)
    # and are not retried (max_retries 0): two users' api profiles are missing, within the budget
    with scripted_server([(500, {"message": "boom"})] * 2) as server, caplog.at_level(logging.DEBUG):
        generators = (
            "explore.generators=[{name: local, llm: ${llm}, num_profiles: 1},"
            f"{{name: api, llm: {{name: litellm, model: openai/scripted, api_base: '{server['url']}', "
            "api_key_env: LETTINGO_SECRET_TEST_KEY, max_retries: 0}, num_profiles: 2}]"
        )
        cfg = api.compose(tiny_overrides(tiny, train=6, test=2) + [generators, "max_failure_rate=0.5",
                                                                    f"cache.path={cache}"])
        api.run(cfg, run_dir, stages=["prepare", "explore", "evaluate"])
    assert all(SECRET in header for header in server["auth"])  # the key did go to the server
    api_rows = [line for line in (run_dir / "profiles.jsonl").read_text().splitlines() if '"api"' in line]
    assert len(api_rows) == 2 * 4  # 6 users, 2 failed: not written, so a rerun asks for them again
    manifest = (run_dir / "manifest.json").read_text()
    assert '"failed_requests": 2' in manifest and "InternalServerError" in manifest
    leaked = [p.name for p in [*run_dir.rglob("*"), *cache.parent.rglob("*")] if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaked == []
    assert SECRET not in caplog.text and "InternalServerError" in caplog.text


def test_credentials_in_the_server_address_stay_out_of_the_run(tmp_path, tiny, monkeypatch):
    """A base URL carrying credentials (user:token@ and ?api_key=) is used for the calls but
    recorded masked: manifest, stage records, ledger, report and cache never hold them."""
    plugins.load_entrypoints(only=["transformers", "trl", "litellm"])
    cache = tmp_path / "cache" / "calls.sqlite"
    with scripted_server([]) as server:
        base = server["url"].replace("http://", f"http://proxyuser:{SECRET}@") + f"?api_key={SECRET}-q"
        monkeypatch.setenv("LETTINGO_SECRET_TEST_BASE", base)
        generators = ("explore.generators=[{name: api, llm: {name: litellm, model: openai/scripted, "
                      "api_base: '${oc.env:LETTINGO_SECRET_TEST_BASE}', max_retries: 0}, num_profiles: 1}]")
        cfg = api.compose(tiny_overrides(tiny, train=4, test=2) + [generators, f"cache.path={cache}"])
        api.run(cfg, tmp_path / "run", stages=["prepare", "explore"])
    assert len(server["requests"]) == 4  # the calls went out, through the address with its credentials
    manifest = (tmp_path / "run" / "manifest.json").read_text()
    assert "http://***@127.0.0.1" in manifest and "api_key=***" in manifest
    leaked = [p.name for p in [*(tmp_path / "run").rglob("*"), *cache.parent.rglob("*")]
              if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaked == []
