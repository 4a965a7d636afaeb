"""A whole run judged by llm_rating on the tiny model: rating metrics, baselines and tests in the report."""

from __future__ import annotations

import json

import pytest

from lettingo import api, plugins
from lettingo.testing import tiny_overrides


@pytest.mark.slow
def test_a_rating_run_reports_mae_rmse_and_rating_baselines(tmp_path, tiny_model):
    plugins.load_entrypoints(only=["transformers", "trl"])
    cfg = api.compose(tiny_overrides(tiny_model, train=6, test=6) + [
        f"cache.path={tmp_path / 'calls.sqlite'}", "recommender=llm_rating", "recommender.answer=logprobs",
        "pair_selector=best_vs_worst"])
    results = api.run(cfg, tmp_path / "run")
    assert results["task_type"] == "rating"
    methods = results["methods"]
    assert {"10H (no profile)", "base profiles", "LettinGo (aligned)", "random (baseline)",
            "majority (baseline)"} <= set(methods)
    for row in methods.values():
        assert 0 <= row["mae"]["value"] <= 4 and row["rmse"]["value"] >= row["mae"]["value"]
        assert row["mae"]["ci"][0] <= row["mae"]["value"] <= row["mae"]["ci"][1]
    judged = [json.loads(line) for line in (tmp_path / "run" / "test_judgements.jsonl").read_text().splitlines()]
    assert all(j["valid"] and 1 <= j["prediction"] <= 5 for j in judged)  # expected ratings: always readable
    assert {t["metric"] for t in results["paired_tests"]} == {"mae", "rmse"}
    report = (tmp_path / "run" / "report.md").read_text()
    assert "| method | mae | rmse | accuracy | n | invalid |" in report and "MAE and RMSE: lower is better" in report
