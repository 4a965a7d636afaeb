"""Where model weights come from, and which Hugging Face model a prepared directory holds."""

from __future__ import annotations

import json

from lettingo import models


def test_a_models_hub_id_comes_from_its_alias_its_record_or_its_name(tmp_path, monkeypatch):
    assert models.hub_id("smollm2-135m-instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert models.hub_id("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"  # a Hub id as given
    unknown = tmp_path / "my-model"
    unknown.mkdir()
    assert models.hub_id(str(unknown)) is None  # a local directory of unknown origin
    (unknown / models.MODEL_RECORD).write_text(json.dumps({"hub_id": "someone/their-model"}))
    assert models.hub_id(str(unknown)) == "someone/their-model"
    # a packaged model prepared before directories recorded their id is known by where it lies
    monkeypatch.setenv("LETTINGO_MODELS_DIR", str(tmp_path / "cache"))
    old = tmp_path / "cache" / models.PACKAGED_MODELS["smollm2-135m-instruct"]["directory"]
    old.mkdir(parents=True)
    assert models.hub_id(str(old)) == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_the_prepared_packaged_model_records_its_hub_id(tmp_path, monkeypatch):
    monkeypatch.setenv("LETTINGO_MODELS_DIR", str(tmp_path))
    prepared = models.prepare_packaged_model("smollm2-135m-instruct")  # converted afresh from the GGUF
    record = json.loads((prepared / models.MODEL_RECORD).read_text())
    assert record["hub_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and "GGUF" in record["prepared_from"]
