"""`lettingo export`: an adapter merged into a whole model that answers like base + adapter."""

from __future__ import annotations

import json

import pytest

from lettingo import cli
from lettingo.export import ExportError, export
from lettingo_trl.dpo import DPOAligner
from lettingo_trl.testing import make_pairs

FAST = {"learning_rate": 5e-3, "epochs": 2, "batch_size": 2, "seed": 0}


@pytest.fixture(scope="module")
def adapter_run(tiny_model, tmp_path_factory):
    """A run-directory layout: aligned/ with the adapter and aligned_model.json."""
    run_dir = tmp_path_factory.mktemp("run")
    aligned = DPOAligner(FAST).train(make_pairs(4), tiny_model, run_dir / "aligned")
    (run_dir / "aligned" / "aligned_model.json").write_text(json.dumps(aligned.to_dict()))
    return run_dir, aligned


def logits(model, tokenizer):
    import torch

    ids = tokenizer("The user loves science fiction.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_exported_model_answers_like_base_plus_adapter(adapter_run, tiny_model, tmp_path, capsys):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run_dir, aligned = adapter_run
    cli.main(["export", str(run_dir), str(tmp_path / "merged"), "--dtype", "float32"])
    assert "wrote a whole model" in capsys.readouterr().out
    merged_dir = tmp_path / "merged"
    assert not (merged_dir / "adapter_config.json").exists()  # a plain model, no PEFT needed
    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    with_adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), aligned.adapter_path).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    assert torch.allclose(logits(merged, tokenizer), logits(with_adapter, tokenizer), atol=1e-4)
    assert not torch.allclose(logits(merged, tokenizer), logits(base, tokenizer), atol=1e-4)
    card = (merged_dir / "README.md").read_text()
    assert tiny_model in card and "lettingo export" in card
    from huggingface_hub import ModelCard

    assert ModelCard.load(merged_dir / "README.md").data.library_name == "transformers"  # no longer a PEFT adapter
    # the adapter folder alone works too (its adapter_config.json names the base model)
    assert export(aligned.adapter_path, tmp_path / "from-adapter", dtype="float32").exists()


def test_push_to_hub_without_network_says_where_the_model_is(adapter_run, tmp_path, capsys, monkeypatch):
    """No network here: the upload fails with one clear message, and the exported model stays."""
    run_dir, _ = adapter_run
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(SystemExit):
        cli.main(["export", str(run_dir), str(tmp_path / "merged"), "--push-to-hub", "someone/profile-writer"])
    err = capsys.readouterr().err
    assert "someone/profile-writer" in err and "hf upload someone/profile-writer" in err and "Traceback" not in err
    assert (tmp_path / "merged" / "config.json").exists()


def test_export_refuses_what_it_cannot_export(adapter_run, tmp_path, capsys):
    run_dir, _ = adapter_run
    with pytest.raises(ExportError, match="not a lettingo run directory"):
        export(tmp_path, tmp_path / "out")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit):
        cli.main(["export", str(run_dir), str(tmp_path / "busy")])
    assert "exists and is not empty" in capsys.readouterr().err
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"  # nothing overwritten without --force
    none_run = tmp_path / "none-run" / "aligned"
    none_run.mkdir(parents=True)
    (none_run / "aligned_model.json").write_text(json.dumps(
        {"base": "m", "adapter_path": None, "aligner": "none", "metrics": {}}))
    with pytest.raises(ExportError, match="no new weights"):
        export(none_run.parent, tmp_path / "out2")
