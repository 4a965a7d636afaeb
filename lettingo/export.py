"""``lettingo export``: an aligned profile writer as one whole model directory, ready to serve.

A LoRA adapter is merged into its base model's weights (PEFT ``merge_and_unload``); the directory
then loads with plain ``AutoModelForCausalLM.from_pretrained`` or ``vllm serve`` and needs neither
PEFT nor the base model. A whole fine-tuned model (``aligner.lora=null``) is copied as it is.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from lettingo.errors import LettingoError
from lettingo.models import resolve_model
from lettingo.types import AlignedModel


class ExportError(LettingoError, ValueError):
    """The source is not an aligned model lettingo can export; the message says what was expected."""


def find_aligned(source: str | Path) -> AlignedModel:
    """The aligned model of a run directory, of its ``aligned/`` folder, or of an adapter folder."""
    source = Path(source)
    for record in (source / "aligned" / "aligned_model.json", source / "aligned_model.json", source / "DONE.json"):
        if record.is_file():
            return AlignedModel.from_dict(json.loads(record.read_text()))
    config = source / "adapter_config.json"
    if config.is_file():
        base = json.loads(config.read_text()).get("base_model_name_or_path")
        if not base:
            raise ExportError(f"{config} names no base_model_name_or_path; cannot tell which model to merge into")
        return AlignedModel(base=base, adapter_path=str(source), aligner="adapter")
    raise ExportError(
        f"{source} is not a lettingo run directory (aligned/aligned_model.json), an aligned/ folder, nor a "
        "PEFT adapter folder (adapter_config.json); pass the run directory of a finished align stage")


def export(source: str | Path, out_dir: str | Path, dtype: str = "auto", force: bool = False) -> Path:
    """Write the aligned model of ``source`` to ``out_dir`` as a whole model; returns ``out_dir``."""
    aligned = find_aligned(source)
    out_dir = Path(out_dir)
    if aligned.unchanged:
        raise ExportError(f"{source} was aligned with `{aligned.aligner}`: there are no new weights to export; "
                          f"serve the base model {aligned.base} itself")
    if out_dir.exists() and any(out_dir.iterdir()):
        if not force:
            raise ExportError(f"{out_dir} exists and is not empty; choose a new directory or pass --force")
        shutil.rmtree(out_dir)
    partial = out_dir.with_name(out_dir.name + ".partial")  # renamed into place when whole
    shutil.rmtree(partial, ignore_errors=True)
    if aligned.model_path:
        shutil.copytree(aligned.model_path, partial)
    else:
        _merge(aligned, partial, dtype)
    partial.rename(out_dir)
    return out_dir


def push_to_hub(model_dir: str | Path, repo_id: str, private: bool = False) -> str:
    """Upload an exported model directory to the Hugging Face Hub (``huggingface_hub``; the token
    comes from ``HF_TOKEN`` or ``hf auth login``, never from lettingo's config). Returns the repo's URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    api = HfApi()
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(folder_path=str(model_dir), repo_id=repo_id, repo_type="model",
                          commit_message="lettingo export")
    except (OfflineModeIsEnabled, HfHubHTTPError, OSError) as exc:
        raise ExportError(
            f"could not push {model_dir} to the Hub repo {repo_id!r}: {type(exc).__name__}: {exc}. The exported "
            f"model stays in {model_dir}; push it later with `hf upload {repo_id} {model_dir}` (log in with "
            "`hf auth login` or set HF_TOKEN; HF_HUB_OFFLINE=1 forbids any upload)") from None
    return str(url)


def _merge(aligned: AlignedModel, out_dir: Path, dtype: str) -> None:
    try:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ExportError(f"merging an adapter needs torch, transformers and peft ({exc}); "
                          "pip install lettingo-trl (or lettingo-transformers)") from None
    if not Path(aligned.adapter_path or "").is_dir():
        raise ExportError(f"the adapter {aligned.adapter_path} is missing; was the run directory moved? "
                          "Export from the adapter folder itself: lettingo export <adapter dir> <out>")
    base = resolve_model(aligned.base)
    torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype)
    merged = PeftModel.from_pretrained(model, aligned.adapter_path).merge_and_unload()
    merged.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(aligned.adapter_path).save_pretrained(out_dir)
    note = (f"\n\n## Export\n\nThe adapter `{aligned.adapter_path}` merged into `{aligned.base}` by "
            "`lettingo export`: a whole model, loadable without PEFT.\n")
    _merged_card(Path(aligned.adapter_path) / "README.md", note).save(out_dir / "README.md")


def _merged_card(adapter_card: Path, note: str):
    """The adapter's model card for the merged model: the same base model, now a transformers model."""
    from huggingface_hub import ModelCard

    card = ModelCard.load(adapter_card) if adapter_card.exists() else ModelCard("---\n---\n# lettingo profile writer")
    card.data.library_name = "transformers"
    card.text = card.text.rstrip() + note
    return card
