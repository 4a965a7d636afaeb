"""What every TRL aligner shares: resumable training of the profile writer into an output directory.

The output directory is the unit of resumption. ``checkpoints/`` holds TRL checkpoints while
training runs (a killed training resumes from the latest); ``DONE.json`` is written last, so its
presence means the weights, the training log and the model card are complete and a rerun is free.

A method (DPO, SFT, ORPO, SimPO) is a subclass naming its settings (lettingo_trl/settings.py), how a
pair becomes a training example, and which TRL trainer with which config trains on them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lettingo.cache import digest
from lettingo.errors import LettingoError
from lettingo.models import hub_id
from lettingo.settings import validated, where
from lettingo.types import AlignedModel, PreferencePair
from lettingo_trl.settings import TrainerSettings

log = logging.getLogger(__name__)

# TRL config fields lettingo sets from its own keys (or must own, for resume): not for training_args
MANAGED_FIELDS: dict[str, str] = {
    "output_dir": "the run directory (aligned/checkpoints)", "learning_rate": "aligner.learning_rate",
    "num_train_epochs": "aligner.epochs", "max_steps": "aligner.max_steps",
    "per_device_train_batch_size": "aligner.batch_size",
    "gradient_accumulation_steps": "aligner.gradient_accumulation_steps",
    "gradient_checkpointing": "aligner.gradient_checkpointing", "max_length": "aligner.max_length",
    "logging_steps": "aligner.logging_steps", "save_steps": "aligner.save_steps",
    "save_strategy": "resume (lettingo checkpoints by steps)", "save_total_limit": "resume (one checkpoint kept)",
    "seed": "aligner.seed", "data_seed": "aligner.seed", "report_to": "aligner.report_to",
    "use_cpu": "the device (CPU when no GPU answers)", "bf16": "aligner.dtype", "fp16": "aligner.dtype",
}

NO_PAIRS_MESSAGE = (
    "no preference pairs to train on: every user's profiles were judged alike; "
    "use pair_selector=best_vs_worst or more profiles per user"
)

DONE_FILE = "DONE.json"
LAUNCH_FILE = "launch.json"  # pairs and settings handed to the training processes
INPUTS_FILE = "inputs.json"
LOG_FILE = "training_log.jsonl"


class AlignerInputError(LettingoError, ValueError):
    """The pairs or settings leave nothing to train on; the message says what to change."""


class TRLAligner:
    """Trains the profile writer on preference pairs with one TRL trainer (a subclass's method)."""

    name = "trl"
    trains = True
    method = "TRL"  # the method's name in the model card
    Settings: type[TrainerSettings] = TrainerSettings
    config_class = "trl:TrainingArguments"  # module:class of the method's TRL config (training_args' fields)
    method_fields: dict[str, str] = {}  # TRL fields the method sets itself -> the lettingo key that sets them

    def __init__(self, cfg: DictConfig | dict | None = None, ctx: Any = None, callbacks: list | None = None):
        """``callbacks``: extra ``transformers.TrainerCallback`` objects (progress bars, loggers)."""
        cfg = OmegaConf.create(cfg or {}) if not isinstance(cfg, DictConfig) else cfg
        self.cfg = validated("aligner", cfg, self.Settings)  # built by hand too: checked and completed here
        self.ctx = ctx
        self.callbacks = list(callbacks or [])
        self._check_training_args()

    def _check_training_args(self) -> None:
        """Refuse, before any work, a ``training_args`` key that is no field of the method's TRL
        config, or one lettingo sets from its own keys (naming the key to use instead)."""
        extra = _training_args(self.cfg)
        if not extra:
            return
        import dataclasses
        import importlib

        module, _, cls_name = self.config_class.partition(":")
        config_cls = getattr(importlib.import_module(module), cls_name)
        where_set = f"aligner.training_args ({where(self.Settings)})"
        unknown = sorted(set(extra) - {f.name for f in dataclasses.fields(config_cls)})
        if unknown:
            raise AlignerInputError(f"{where_set}: {unknown} are not fields of {cls_name}; see TRL's {cls_name} "
                                    "documentation for the fields it takes")
        managed = {**MANAGED_FIELDS, **self.method_fields}
        taken = sorted(k for k in extra if k in managed)
        if taken:
            raise AlignerInputError(f"{where_set}: " + "; ".join(f"{k} is set by {managed[k]}" for k in taken))

    # -- what a method defines ------------------------------------------------------------------

    def examples(self, pairs: list[PreferencePair], special: set[str]) -> list[dict[str, Any]]:
        """The training dataset's rows (TRL's conversational preference format by default)."""
        return [_conversational_example(pair, special) for pair in pairs]

    def make_trainer(self, model, tokenizer, dataset, args: dict[str, Any], peft_config):
        """The TRL trainer; ``args`` are the settings every method shares, as config keywords."""
        raise NotImplementedError

    def check_dataset(self, dataset, n_pairs: int) -> dict[str, int]:
        """Counts about the tokenized examples for the metrics (e.g. truncated pairs)."""
        return {}

    # -- the shared machinery --------------------------------------------------------------------

    @property
    def full_finetuning(self) -> bool:
        return self.cfg.lora is None

    def train(self, pairs: list[PreferencePair], base_model: str, output_dir: Path,
              init_adapter: str | None = None) -> AlignedModel:
        """Train ``base_model`` on ``pairs``; ``init_adapter`` continues from a LoRA adapter (the
        previous round of iterative alignment) instead of starting a fresh one."""
        output_dir = Path(output_dir)
        done = output_dir / DONE_FILE
        fingerprint = self._fingerprint(pairs, base_model, init_adapter)
        if done.exists():
            return self._recorded(output_dir, fingerprint)
        if not pairs:
            raise AlignerInputError(NO_PAIRS_MESSAGE)
        if init_adapter and self.full_finetuning:
            raise AlignerInputError("init_adapter continues a LoRA adapter, but aligner.lora is null (full "
                                    "fine-tuning); pass the previous round's model as the base model instead")

        output_dir.mkdir(parents=True, exist_ok=True)
        checkpoints = output_dir / "checkpoints"
        if not _in_launched_process():
            self._drop_stale_checkpoints(output_dir, checkpoints, fingerprint)
            _write_json_atomic(output_dir / INPUTS_FILE, {"fingerprint": fingerprint, "base": base_model})
            if int(self.cfg.num_processes) > 1:  # training only, in processes of its own
                self._launch(pairs, base_model, output_dir, init_adapter)
                return self._recorded(output_dir, fingerprint)

        started = time.monotonic()
        trainer, tokenizer = self._trainer(pairs, base_model, checkpoints, init_adapter)
        counts = self._check_kept(trainer.train_dataset, len(pairs))
        counts.update(self.check_dataset(trainer.train_dataset, len(pairs)))
        last = _latest_checkpoint(checkpoints)
        if last:
            log.info("resuming %s training from %s", self.method, last)
        result = trainer.train(resume_from_checkpoint=last)
        if not trainer.accelerator.is_main_process:  # one process writes the weights and the records
            return AlignedModel(base=base_model, adapter_path=None, aligner=self.name)

        # a whole model's directory is named by its inputs: backends and the LLM-call cache know a
        # model by its path, so a retrained model must not reuse the old one's (adapters are digested)
        weights_dir = output_dir / (f"model-{fingerprint[:12]}" if self.full_finetuning else "adapter")
        trainer.save_model(str(weights_dir))
        tokenizer.save_pretrained(weights_dir)
        steps = [row for row in trainer.state.log_history if "loss" in row]
        _write_jsonl(output_dir / LOG_FILE, steps)
        metrics = {
            # the mean over all logged steps, so a resumed training reports the whole run
            "train_loss": sum(r["loss"] for r in steps) / len(steps) if steps else result.training_loss,
            **_last_rewards(steps),
            "pairs": len(pairs),
            **counts,
            "steps": trainer.state.global_step,
            "processes": trainer.accelerator.num_processes,
            "epochs": self.cfg.epochs,
            "train_seconds": round(time.monotonic() - started, 2),
        }
        aligned = AlignedModel(
            base=base_model, aligner=self.name, metrics=metrics,
            adapter_path=None if self.full_finetuning else str(weights_dir),
            model_path=str(weights_dir) if self.full_finetuning else None,
        )
        hub = hub_id(base_model)
        if hub and not self.full_finetuning:  # the adapter loads on any machine: it names the Hub model
            _set_json_key(weights_dir / "adapter_config.json", "base_model_name_or_path", hub)
        self._model_card(aligned, init_adapter, hub, weights_dir).save(weights_dir / "README.md")
        _write_json_atomic(done, aligned.to_dict())
        shutil.rmtree(checkpoints, ignore_errors=True)
        return aligned

    def score_pairs(self, pairs: list[PreferencePair], aligned: AlignedModel, start_model: str,
                    init_adapter: str | None = None) -> list[dict[str, Any]]:
        """Per pair: log-probs of chosen and rejected under the trained policy and under the model
        the training started from (its reference), and DPO's implicit reward
        ``beta * [(policy - reference)(chosen) - (policy - reference)(rejected)]`` (beta 1 for a
        method without one). Core asks for this on held-out pairs (``align.heldout_users``)."""
        from transformers import AutoTokenizer

        from lettingo_trl.pair_scores import load_policy, score_pairs

        if not pairs or aligned.unchanged:
            return []
        tokenizer = AutoTokenizer.from_pretrained(start_model)
        special = set(tokenizer.all_special_tokens) | {t.content for t in tokenizer.added_tokens_decoder.values()}
        dtype = str(self.cfg.dtype)
        policy = load_policy(aligned.base, aligned.adapter_path, aligned.model_path, dtype)
        reference = load_policy(start_model, init_adapter, None, dtype)
        rows = score_pairs(pairs, policy, reference, tokenizer, special, self.cfg.max_length)
        beta = float(self.cfg.get("beta", 1.0) or 1.0)
        for row in rows:
            row["reward"] = beta * ((row["policy_chosen"] - row["reference_chosen"])
                                    - (row["policy_rejected"] - row["reference_rejected"]))
        return rows

    def _launch(self, pairs: list[PreferencePair], base_model: str, output_dir: Path,
                init_adapter: str | None) -> None:
        """Train in ``num_processes`` processes: ``accelerate launch`` on GPUs (or with
        ``accelerate_config``, e.g. DeepSpeed ZeRO), ``torchrun`` with gloo on CPUs. The processes
        read the pairs and settings from ``output_dir`` and rank 0 writes the weights there."""
        import subprocess
        import sys

        import torch

        _write_json_atomic(output_dir / LAUNCH_FILE, {
            "aligner": self.name, "base": base_model, "init_adapter": init_adapter,
            "settings": OmegaConf.to_container(self.cfg, resolve=True),
            "pairs": [pair.to_dict() for pair in pairs]})
        n = str(int(self.cfg.num_processes))
        script = ["-m", "lettingo_trl.launch", str(output_dir)]
        if self.cfg.accelerate_config:
            command = ["-m", "accelerate.commands.launch", "--config_file", str(self.cfg.accelerate_config),
                       "--num_processes", n, *script]
        elif torch.cuda.is_available():
            command = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", n,
                       "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *script]
        else:
            command = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", n, *script]
        log.info("training in %s processes: %s", n, " ".join(command))
        finished = subprocess.run([sys.executable, *command], capture_output=True, text=True)
        if finished.returncode != 0 or not (output_dir / DONE_FILE).exists():
            raise LettingoError(
                f"{self.method} training in {n} processes failed (exit {finished.returncode}); checkpoints in "
                f"{output_dir / 'checkpoints'} are kept, so a rerun resumes. Its last output:\n"
                + "\n".join((finished.stderr or finished.stdout).strip().splitlines()[-15:])
            )

    def _trainer(self, pairs: list[PreferencePair], base_model: str, checkpoints: Path,
                 init_adapter: str | None = None):
        import torch
        from datasets import Dataset
        from peft import LoraConfig, PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        cfg = self.cfg
        on_cpu = not torch.cuda.is_available()
        dtype = cfg.dtype if cfg.dtype == "auto" else getattr(torch, cfg.dtype)
        tokenizer = AutoTokenizer.from_pretrained(base_model)
        model = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype)
        special = set(tokenizer.all_special_tokens) | {t.content for t in tokenizer.added_tokens_decoder.values()}
        dataset = Dataset.from_list(self.examples(pairs, special))
        peft_config = None
        if init_adapter:  # continue the previous round's adapter (trainable), not a fresh one
            model = PeftModel.from_pretrained(model, init_adapter, is_trainable=True)
        elif not self.full_finetuning:
            peft_config = LoraConfig(
                task_type="CAUSAL_LM", r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                target_modules=_target_modules(cfg.lora.target_modules),
            )
        args = dict(
            output_dir=str(checkpoints),
            learning_rate=cfg.learning_rate,
            num_train_epochs=cfg.epochs,
            max_steps=int(cfg.max_steps) if cfg.max_steps else -1,
            per_device_train_batch_size=cfg.batch_size,
            gradient_accumulation_steps=cfg.gradient_accumulation_steps,
            gradient_checkpointing=cfg.gradient_checkpointing,
            max_length=cfg.max_length,
            logging_steps=cfg.logging_steps,
            save_strategy="steps",
            save_steps=cfg.save_steps,
            save_total_limit=1,
            seed=cfg.seed,
            data_seed=cfg.seed,
            report_to=_report_to(cfg.report_to),
            use_cpu=on_cpu,
            bf16=cfg.dtype == "bfloat16" and not on_cpu,
            fp16=cfg.dtype == "float16" and not on_cpu,
            **_training_args(cfg),  # checked when the aligner was built
        )
        # transformers reads TensorBoard's folder from the environment when the trainer is made; by
        # default it lies in checkpoints/, which is removed once training is done: keep it beside them
        logs = {"TENSORBOARD_LOGGING_DIR": str(checkpoints.parent / "tensorboard")}
        with _environ(logs if "tensorboard" in args["report_to"] and "TENSORBOARD_LOGGING_DIR" not in os.environ else {}):
            return self.make_trainer(model, tokenizer, dataset, args, peft_config), tokenizer

    def _check_kept(self, dataset, n_pairs: int) -> dict[str, int]:
        """Pairs kept: TRL drops those whose prompt alone fills max_length."""
        kept = len(dataset)
        if kept == 0:
            raise AlignerInputError(
                f"every one of the {n_pairs} preference pairs has a prompt of max_length={self.cfg.max_length} "
                "tokens or more, so no profile token is left to learn from; raise aligner.max_length or "
                "shorten the profile prompt (fewer history interactions)"
            )
        if kept < n_pairs:
            log.warning("dropped %d of %d preference pairs whose prompt alone fills max_length=%d tokens",
                        n_pairs - kept, n_pairs, self.cfg.max_length)
        return {"dropped_pairs": n_pairs - kept}

    def _fingerprint(self, pairs: list[PreferencePair], base_model: str, init_adapter: str | None) -> str:
        """What determines the weights: the pairs, the base model (and adapter) and the settings."""
        settings = OmegaConf.to_container(self.cfg, resolve=True)
        start = None
        if init_adapter:
            weights = Path(init_adapter) / "adapter_model.safetensors"
            start = digest({"path": str(init_adapter),
                            "weights": weights.read_bytes().hex() if weights.exists() else None})
        return digest({"pairs": [p.to_dict() for p in pairs], "base": base_model, "settings": settings,
                       "aligner": self.name, **({"init_adapter": start} if start else {})})

    def _recorded(self, output_dir: Path, fingerprint: str) -> AlignedModel:
        inputs = _read_json(output_dir / INPUTS_FILE) or {}
        if inputs.get("fingerprint") not in (None, fingerprint):
            log.warning(
                "%s was trained on other pairs or settings than these; returning it as recorded. "
                "Delete %s to train again.", output_dir, output_dir / DONE_FILE,
            )
        shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)  # left if killed after DONE
        return AlignedModel.from_dict(json.loads((output_dir / DONE_FILE).read_text()))

    def _drop_stale_checkpoints(self, output_dir: Path, checkpoints: Path, fingerprint: str) -> None:
        """Resuming from checkpoints of other pairs or settings would silently mix two trainings."""
        inputs = _read_json(output_dir / INPUTS_FILE)
        if checkpoints.exists() and (inputs or {}).get("fingerprint") != fingerprint:
            log.warning("%s holds checkpoints of another training; starting afresh", checkpoints)
            shutil.rmtree(checkpoints)

    def _model_card(self, aligned: AlignedModel, init_adapter: str | None, hub: str | None, weights_dir: Path):
        """A Hugging Face model card (``huggingface_hub.ModelCard``): ``base_model`` is the Hub id of
        the model trained from (the local path where its origin is unknown)."""
        from huggingface_hub import ModelCard, ModelCardData

        m, cfg = aligned.metrics, self.cfg
        kind = "full fine-tune" if self.full_finetuning else "LoRA adapter"
        settings = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items()
                    if k not in ("name", "lora", "num_processes", "accelerate_config", "logging_steps", "save_steps")}
        if cfg.lora is not None:
            settings["LoRA r / alpha / dropout / targets"] = (
                f"{cfg.lora.r} / {cfg.lora.alpha} / {cfg.lora.dropout} / {cfg.lora.target_modules}")
        rows = "\n".join(f"| {k} | {v} |" for k, v in settings.items())
        data = _data_description(weights_dir)
        shown = ("train_loss", "reward_margin", "reward_accuracy", "steps", "pairs", "dropped_pairs",
                 "truncated_pairs", "train_seconds")
        results = "\n".join(f"| {k} | {_fmt(m[k])} |" for k in shown if k in m)
        load = ("`AutoModelForCausalLM.from_pretrained(this_dir)`" if self.full_finetuning else
                "`peft.PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), this_dir)`, "
                "or merge it into a whole model with `lettingo export`")
        base = hub or aligned.base
        where = "" if hub else " (a local directory: its Hugging Face id is not known)"
        card_data = ModelCardData(
            base_model=base, library_name="transformers" if self.full_finetuning else "peft",
            pipeline_tag="text-generation",
            tags=["lettingo", self.name, "full-finetune" if self.full_finetuning else "lora", "user-profiles"],
        )
        body = f"""# lettingo profile writer ({self.method} {kind})

A {kind} of `{base}` that writes free-text user profiles for recommendation, trained by
lettingo (the LettinGo method, KDD 2025) with {self.method} on {m['pairs']} preference pairs: profiles
that helped a frozen recommender (chosen) against profiles that helped it less (rejected).
{f"Training continued from the adapter `{init_adapter}` (iterative alignment)." if init_adapter else ""}

## Base model

`{base}`{where}; trained from the weights at `{aligned.base}`.

## Data

{data}

## Training settings

| setting | value |
|---|---|
{rows}

## Training metrics

| metric | value |
|---|---|
{results}

Test-set metrics of the profiles it writes are in the run's `report.md` / `results.json`.

Load it with {load}.
"""
        return ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}")


def _data_description(weights_dir: Path) -> str:
    """The dataset, recommender and pair selector of the run the weights were trained in: the
    config in the manifest of the run directory that holds them (``<run>/aligned/...``), when any."""
    manifest = next((d / "manifest.json" for d in Path(weights_dir).resolve().parents
                     if (d / "manifest.json").is_file()), None)
    config = json.loads(manifest.read_text()).get("config") if manifest is not None else None
    if not config:
        return "Preference pairs handed to the aligner directly (no lettingo run recorded)."
    cfg = OmegaConf.create(config)
    dataset = OmegaConf.select(cfg, "dataset.name", default="?")
    source = OmegaConf.select(cfg, "dataset.path", default=None) or OmegaConf.select(cfg, "dataset.release", default=None)
    return (f"Dataset `{dataset}`{f' ({source})' if source else ''}, "
            f"{OmegaConf.select(cfg, 'protocol.train_users', default='?')} training users, profiles judged by "
            f"the `{OmegaConf.select(cfg, 'recommender.name', default='?')}` recommender, pairs chosen by "
            f"`{OmegaConf.select(cfg, 'pair_selector.name', default='?')}`.")


def _last_rewards(steps: list[dict]) -> dict[str, Any]:
    """The preference methods' implicit-reward metrics at the last logged step (absent for SFT)."""
    last = steps[-1] if steps else {}
    out = {}
    if "rewards/margins" in last:
        out["reward_margin"] = last["rewards/margins"]
    if "rewards/accuracies" in last:
        out["reward_accuracy"] = last["rewards/accuracies"]
    return out


def _in_launched_process() -> bool:
    """Inside one of the processes that ``_launch`` started (torchrun / accelerate set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _conversational_example(pair: PreferencePair, special: set[str] = frozenset()) -> dict[str, Any]:
    """TRL's conversational preference format: the chat template is applied by the trainer."""
    return {
        "prompt": conversational_prompt(pair, special),
        "chosen": [{"role": "assistant", "content": _as_text(pair.chosen, special)}],
        "rejected": [{"role": "assistant", "content": _as_text(pair.rejected, special)}],
    }


def conversational_prompt(pair: PreferencePair, special: set[str]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": _as_text(m["content"], special)} for m in pair.prompt_messages]


def _as_text(content: str, special: set[str]) -> str:
    """Data that spells a special token (``<|im_start|>`` in a review) must stay text: TRL tokenizes
    the templated string, which would read it as a control token, so a zero-width space breaks the
    spelling (generation tokenizes such text with split_special_tokens instead)."""
    for token in special:
        if len(token) > 1 and token in content:
            content = content.replace(token, token[0] + "\u200b" + token[1:])
    return content


def _latest_checkpoint(checkpoints: Path) -> str | None:
    """The newest whole checkpoint. The Trainer writes ``trainer_state.json`` last, so a checkpoint
    without it was cut short (a kill, a full disk) and is passed over."""
    if not checkpoints.is_dir():
        return None
    whole = [p for p in checkpoints.glob("checkpoint-*")
             if p.name.rsplit("-", 1)[-1].isdigit() and (p / "trainer_state.json").is_file()]
    return str(max(whole, key=lambda p: int(p.name.rsplit("-", 1)[-1]))) if whole else None


def _target_modules(value: Any) -> str | list[str]:
    return value if isinstance(value, str) else list(value)


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    os.replace(tmp, path)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _report_to(value: Any) -> list[str]:
    """``none`` (or null, or an empty list): no logger; a name or a list of names otherwise."""
    if value is None or value == "none":
        return []
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]


def _training_args(cfg: DictConfig) -> dict[str, Any]:
    node = cfg.get("training_args")
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node or {})


@contextlib.contextmanager
def _environ(values: dict[str, str]):
    """Environment variables set for the block only."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _set_json_key(path: Path, key: str, value: Any) -> None:
    record = json.loads(path.read_text())
    record[key] = value
    _write_json_atomic(path, record)
