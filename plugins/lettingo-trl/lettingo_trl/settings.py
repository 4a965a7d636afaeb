"""The TRL aligners' options, one dataclass per method (imports nothing heavy: read when configs are
composed, before TRL or torch load)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


@dataclass
class LoraSettings:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: Any = "all-linear"  # PEFT's: all-linear, or a list of module names


@dataclass
class TrainerSettings:
    """What every TRL method takes: the writer is trained as a LoRA adapter (lettingo-trl)."""

    name: str = "?"
    learning_rate: float = 5.0e-5
    epochs: int = 1
    max_steps: Optional[int] = None   # stop after N optimizer steps (smoke runs, benchmarks); null: epochs
    batch_size: int = 2               # pairs (SFT: chosen profiles) per device per step
    gradient_accumulation_steps: int = 1
    max_length: int = 1024            # prompt + profile tokens; longer pairs are cut at the end (counted in metrics)
    gradient_checkpointing: bool = True  # recompute activations: SmolLM2 DPO on a CPU, 6.6 GB instead of 11.7 GB peak
    # null: full fine-tuning (every weight trains; the output is a whole model directory, not an adapter)
    lora: Optional[LoraSettings] = field(default_factory=LoraSettings)
    seed: int = 0
    logging_steps: int = 1
    save_steps: int = 50              # checkpoint every N optimizer steps; a killed training resumes from the last
    dtype: str = "float32"            # float32 | bfloat16 | float16 | auto
    # > 1: train in that many processes (GPUs via accelerate, CPUs via torchrun/gloo); per-device
    # batch_size, so the effective batch grows with it
    num_processes: int = 1
    accelerate_config: Optional[str] = None  # an accelerate config file (e.g. DeepSpeed ZeRO-2) for the processes
    report_to: Any = "none"           # TRL loggers: none, tensorboard, trackio, wandb, mlflow, ... or a list of them
    # any other field of the method's TRL config (e.g. {warmup_steps: 10, lr_scheduler_type: cosine});
    # an unknown field, or one set by a key above, is refused by name
    training_args: Dict[str, Any] = field(default_factory=dict)


@dataclass
class DPOSettings(TrainerSettings):
    """DPO on (prompt, chosen profile, rejected profile) pairs."""

    name: str = "dpo"
    beta: float = 0.1                 # how far the policy may move from the base model (higher: less)
    # any TRL DPO loss: sigmoid (DPO), ipo, hinge, robust, exo_pair, bco_pair, sppo_hard, nca_pair, aot,
    # apo_zero, ... or a list of them
    loss_type: Any = "sigmoid"
    loss_weights: Optional[List[float]] = None  # with a list of losses: their weights (e.g. [0.8, 0.2])
    precompute_ref_log_probs: bool = False      # true: reference log-probs once before training, not every step


@dataclass
class SFTSettings(TrainerSettings):
    """SFT on the chosen profiles only (the paper's ablation: imitation without the rejected side)."""

    name: str = "sft"


@dataclass
class ORPOSettings(TrainerSettings):
    """ORPO (TRL): SFT on chosen plus an odds-ratio penalty on rejected; no reference model."""

    name: str = "orpo"
    beta: float = 0.1                 # lambda: weight of the odds-ratio term


@dataclass
class SimPOSettings(TrainerSettings):
    """SimPO through TRL's CPOTrainer: length-normalised margins, no reference model."""

    name: str = "simpo"
    beta: float = 2.0                 # reward scale
    simpo_gamma: float = 0.5          # target reward margin
    cpo_alpha: float = 0.0            # > 0 adds an SFT term on chosen (CPO-SimPO)


SETTINGS = {"dpo": DPOSettings, "sft": SFTSettings, "orpo": ORPOSettings, "simpo": SimPOSettings}
