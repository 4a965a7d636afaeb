"""A whole run with llm=vllm: the engine is shared by stages, shut down before DPO, and the aligned
generator is served as a LoRA request in the test stage."""

from __future__ import annotations

import json
import time

import psutil
import pytest

from lettingo import api, plugins
from lettingo.hookspecs import hookimpl
from lettingo.testing import tiny_model_dir, tiny_overrides


def engine_processes() -> int:
    """vLLM's engine core and its workers run as child processes named VLLM::..."""
    return sum(child.name().startswith("VLLM") for child in psutil.Process().children(recursive=True))


class EngineWatcher:
    """Counts vLLM engine processes as stages finish."""

    def __init__(self):
        self.engines = {}

    @hookimpl
    def lettingo_stage_finished(self, stage, run_dir, summary):
        self.engines[stage] = engine_processes()


@pytest.mark.slow
def test_whole_run_on_vllm(tmp_path_factory):
    plugins.load_entrypoints(only=["vllm", "trl"])
    model = tiny_model_dir(tmp_path_factory.mktemp("tiny-vllm"), hidden_size=128, heads=2, tie_word_embeddings=False)
    run_dir = tmp_path_factory.mktemp("run")
    overrides = tiny_overrides(str(model), train=6, test=4) + [
        "llm=vllm", f"llm.model={model}", "llm.dtype=float32", "llm.max_model_len=1024",
        "llm.max_input_tokens=768", "llm.cpu_kvcache_gb=1", "recommender=llm_sentiment",
        "pair_selector=best_vs_worst",
    ]
    watcher = EngineWatcher()
    plugins.register_plugin(watcher, "engine-watcher")
    try:
        results = api.run(api.compose(overrides), run_dir)
    finally:
        plugins.unregister_plugin("engine-watcher")
    assert {"base profiles", "LettinGo (aligned)", "10H (no profile)"} <= set(results["methods"])
    # one engine served explore and evaluate; align shut it down to train, test started a new one
    assert watcher.engines["explore"] >= 1 and watcher.engines["evaluate"] == watcher.engines["explore"]
    assert watcher.engines["align"] == 0 and watcher.engines["test"] >= 1
    deadline = time.monotonic() + 30  # and the run shut that one down at its end (workers exit async)
    while engine_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert engine_processes() == 0
    usage = json.loads((run_dir / "results.json").read_text())["usage"]
    models = {(row["stage"], row["model"]) for row in usage}
    assert ("explore", f"vllm:{model}") in models and ("test", f"vllm:{model}+adapter") in models
    assert ("evaluate", f"vllm:{model}") in models  # llm_sentiment judged through label_logprobs
