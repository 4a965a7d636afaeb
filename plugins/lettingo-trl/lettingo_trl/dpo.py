"""DPO alignment of the profile writer: preference pairs -> a LoRA adapter (TRL ``DPOTrainer``).

The output directory is the unit of resumption. ``checkpoints/`` holds TRL checkpoints while
training runs (a killed training resumes from the latest); ``DONE.json`` is written last, so its
presence means the adapter, the training log and the model card are complete and a rerun is free.
"""

from __future__ import annotations

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
from lettingo.types import AlignedModel, PreferencePair

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "beta": 0.1,
    "loss_type": "sigmoid",
    "learning_rate": 5.0e-5,
    "epochs": 1,
    "batch_size": 2,
    "gradient_accumulation_steps": 1,
    "max_length": 1024,
    "gradient_checkpointing": False,
    "lora": {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": "all-linear"},
    "seed": 0,
    "logging_steps": 1,
    "save_steps": 50,
    "dtype": "float32",
    "num_processes": 1,
    "accelerate_config": None,
}

NO_PAIRS_MESSAGE = (
    "no preference pairs to train on: every user's profiles were judged alike; "
    "use pair_selector=best_vs_worst or more profiles per user"
)



class AlignerInputError(LettingoError, ValueError):
    """The pairs or settings leave nothing to train on; the message says what to change."""


DONE_FILE = "DONE.json"
LAUNCH_FILE = "launch.json"  # pairs and settings handed to the training processes
INPUTS_FILE = "inputs.json"
LOG_FILE = "training_log.jsonl"


class DPOAligner:
    """Trains the profile writer to prefer profiles that made the recommender right."""

    name = "dpo"

    def __init__(self, cfg: DictConfig | dict | None = None, ctx: Any = None, callbacks: list | None = None):
        """``callbacks``: extra ``transformers.TrainerCallback`` objects (progress bars, loggers)."""
        cfg = OmegaConf.create(cfg or {}) if not isinstance(cfg, DictConfig) else cfg
        self.cfg = OmegaConf.merge(OmegaConf.create(DEFAULTS), cfg)
        self.ctx = ctx
        self.callbacks = list(callbacks or [])

    def train(self, pairs: list[PreferencePair], base_model: str, output_dir: Path) -> AlignedModel:
        output_dir = Path(output_dir)
        done = output_dir / DONE_FILE
        fingerprint = self._fingerprint(pairs, base_model)
        if done.exists():
            return self._recorded(output_dir, fingerprint)
        if not pairs:
            raise AlignerInputError(NO_PAIRS_MESSAGE)

        output_dir.mkdir(parents=True, exist_ok=True)
        checkpoints = output_dir / "checkpoints"
        if not _in_launched_process():
            self._drop_stale_checkpoints(output_dir, checkpoints, fingerprint)
            _write_json_atomic(output_dir / INPUTS_FILE, {"fingerprint": fingerprint, "base": base_model})
            if int(self.cfg.num_processes) > 1:  # training only, in processes of its own
                self._launch(pairs, base_model, output_dir)
                return self._recorded(output_dir, fingerprint)

        started = time.monotonic()
        trainer, tokenizer = self._trainer(pairs, base_model, checkpoints)
        kept, truncated = self._check_lengths(trainer.train_dataset, len(pairs))
        last = _latest_checkpoint(checkpoints)
        if last:
            log.info("resuming DPO training from %s", last)
        result = trainer.train(resume_from_checkpoint=last)
        if not trainer.accelerator.is_main_process:  # one process writes the adapter and the records
            return AlignedModel(base=base_model, adapter_path=None, aligner=self.name)

        adapter_dir = output_dir / "adapter"
        trainer.model.save_pretrained(adapter_dir)
        tokenizer.save_pretrained(adapter_dir)
        steps = [row for row in trainer.state.log_history if "loss" in row]
        _write_jsonl(output_dir / LOG_FILE, steps)
        last_step = steps[-1] if steps else {}
        metrics = {
            # the mean over all logged steps, so a resumed training reports the whole run
            "train_loss": sum(r["loss"] for r in steps) / len(steps) if steps else result.training_loss,
            "reward_margin": last_step.get("rewards/margins"),
            "reward_accuracy": last_step.get("rewards/accuracies"),
            "pairs": len(pairs),
            "dropped_pairs": len(pairs) - kept,
            "truncated_pairs": truncated,
            "steps": trainer.state.global_step,
            "processes": trainer.accelerator.num_processes,
            "epochs": self.cfg.epochs,
            "train_seconds": round(time.monotonic() - started, 2),
        }
        aligned = AlignedModel(base=base_model, adapter_path=str(adapter_dir), aligner=self.name, metrics=metrics)
        (adapter_dir / "README.md").write_text(_model_card(aligned, self.cfg))
        _write_json_atomic(done, aligned.to_dict())
        shutil.rmtree(checkpoints, ignore_errors=True)
        return aligned

    def _launch(self, pairs: list[PreferencePair], base_model: str, output_dir: Path) -> None:
        """Train in ``num_processes`` processes: ``accelerate launch`` on GPUs (or with
        ``accelerate_config``, e.g. DeepSpeed ZeRO), ``torchrun`` with gloo on CPUs. The processes
        read the pairs and settings from ``output_dir`` and rank 0 writes the adapter there."""
        import subprocess
        import sys

        import torch

        _write_json_atomic(output_dir / LAUNCH_FILE, {
            "base": base_model, "settings": OmegaConf.to_container(self.cfg, resolve=True),
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
                f"DPO training in {n} processes failed (exit {finished.returncode}); checkpoints in "
                f"{output_dir / 'checkpoints'} are kept, so a rerun resumes. Its last output:\n"
                + "\n".join((finished.stderr or finished.stdout).strip().splitlines()[-15:])
            )

    def _trainer(self, pairs: list[PreferencePair], base_model: str, checkpoints: Path):
        import torch
        from datasets import Dataset
        from peft import LoraConfig
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from trl import DPOConfig, DPOTrainer

        cfg = self.cfg
        on_cpu = not torch.cuda.is_available()
        dtype = cfg.dtype if cfg.dtype == "auto" else getattr(torch, cfg.dtype)
        tokenizer = AutoTokenizer.from_pretrained(base_model)
        model = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype)
        special = set(tokenizer.all_special_tokens) | {t.content for t in tokenizer.added_tokens_decoder.values()}
        dataset = Dataset.from_list([_conversational_example(pair, special) for pair in pairs])
        lora = LoraConfig(
            task_type="CAUSAL_LM",
            r=cfg.lora.r,
            lora_alpha=cfg.lora.alpha,
            lora_dropout=cfg.lora.dropout,
            target_modules=_target_modules(cfg.lora.target_modules),
        )
        args = DPOConfig(
            output_dir=str(checkpoints),
            beta=cfg.beta,
            loss_type=cfg.loss_type,
            learning_rate=cfg.learning_rate,
            num_train_epochs=cfg.epochs,
            per_device_train_batch_size=cfg.batch_size,
            gradient_accumulation_steps=cfg.gradient_accumulation_steps,
            gradient_checkpointing=cfg.gradient_checkpointing,
            max_length=cfg.max_length,
            truncation_mode="keep_start",
            logging_steps=cfg.logging_steps,
            save_strategy="steps",
            save_steps=cfg.save_steps,
            save_total_limit=1,
            seed=cfg.seed,
            data_seed=cfg.seed,
            report_to=[],
            use_cpu=on_cpu,
            bf16=cfg.dtype == "bfloat16" and not on_cpu,
            fp16=cfg.dtype == "float16" and not on_cpu,
        )
        trainer = DPOTrainer(
            model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=lora,
            callbacks=self.callbacks,
        )
        return trainer, tokenizer

    def _check_lengths(self, dataset, n_pairs: int) -> tuple[int, int]:
        """Pairs kept (TRL drops those whose prompt alone fills max_length) and pairs cut short."""
        max_length = self.cfg.max_length
        kept = len(dataset)
        if kept == 0:
            raise AlignerInputError(
                f"every one of the {n_pairs} preference pairs has a prompt of max_length={max_length} tokens "
                "or more, so no profile token is left to learn from; raise aligner.max_length or shorten "
                "the profile prompt (fewer history interactions)"
            )
        if kept < n_pairs:
            log.warning("dropped %d of %d preference pairs whose prompt alone fills max_length=%d tokens",
                        n_pairs - kept, n_pairs, max_length)
        truncated = _count_truncated(dataset, max_length)
        if truncated:
            log.warning("%d of %d preference pairs are longer than max_length=%d tokens and lose the end of "
                        "their profiles; raise aligner.max_length or shorten the profile prompt",
                        truncated, n_pairs, max_length)
        return kept, truncated

    def _fingerprint(self, pairs: list[PreferencePair], base_model: str) -> str:
        """What determines the adapter: the pairs, the base model and the training settings."""
        settings = OmegaConf.to_container(self.cfg, resolve=True)
        return digest({"pairs": [p.to_dict() for p in pairs], "base": base_model, "settings": settings})

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


def _in_launched_process() -> bool:
    """Inside one of the processes that ``_launch`` started (torchrun / accelerate set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _conversational_example(pair: PreferencePair, special: set[str] = frozenset()) -> dict[str, Any]:
    """TRL's conversational preference format: the chat template is applied by the trainer."""
    return {
        "prompt": [{"role": m["role"], "content": _as_text(m["content"], special)} for m in pair.prompt_messages],
        "chosen": [{"role": "assistant", "content": _as_text(pair.chosen, special)}],
        "rejected": [{"role": "assistant", "content": _as_text(pair.rejected, special)}],
    }


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


def _count_truncated(dataset, max_length: int | None) -> int:
    if max_length is None:
        return 0
    longest = [
        len(p) + max(len(c), len(r))
        for p, c, r in zip(dataset["prompt_ids"], dataset["chosen_ids"], dataset["rejected_ids"])
    ]
    return sum(n > max_length for n in longest)


def _model_card(aligned: AlignedModel, cfg: DictConfig) -> str:
    m = aligned.metrics
    return f"""---
base_model: {aligned.base}
library_name: peft
tags: [lettingo, dpo, lora, user-profiles]
---
# lettingo profile writer (DPO LoRA adapter)

A LoRA adapter for `{aligned.base}` that writes free-text user profiles for recommendation,
trained by lettingo (the LettinGo method, KDD 2025) with DPO on {m['pairs']} preference pairs: profiles
that made a frozen recommender right (chosen) against profiles that made it wrong (rejected).

| setting | value |
|---|---|
| beta | {cfg.beta} |
| loss_type | {cfg.loss_type} |
| learning_rate | {cfg.learning_rate} |
| epochs | {cfg.epochs} |
| batch_size x accumulation | {cfg.batch_size} x {cfg.gradient_accumulation_steps} |
| LoRA r / alpha / dropout | {cfg.lora.r} / {cfg.lora.alpha} / {cfg.lora.dropout} |
| max_length | {cfg.max_length} |

Final metrics: train loss {_fmt(m['train_loss'])}, reward margin {_fmt(m['reward_margin'])},
reward accuracy {_fmt(m['reward_accuracy'])}, {m['steps']} optimizer steps,
{m['truncated_pairs']} pairs truncated and {m['dropped_pairs']} dropped at max_length.

Load it with `peft.PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), this_dir)`.
"""


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
