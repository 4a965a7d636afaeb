"""The ``none`` aligner: no training. The "aligned" generator is the base generator, which makes a
run the paper's no-alignment ablation row (exploration and pairs are still recorded)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from lettingo.types import AlignedModel, PreferencePair


@dataclass
class NoAlignmentSettings:
    """No alignment: the base generator writes the test profiles (the paper's "no DPO" ablation row)."""

    ignores_other_keys: ClassVar[bool] = True  # a sweep over aligner=none,sft,dpo sets training keys for all

    name: str = "none"


class NoAlignment:
    name = "none"
    Settings = NoAlignmentSettings
    trains = False  # the pipeline asks this, not the name: no held-out pairs, one round, no pairs needed

    def __init__(self, cfg: Any = None, ctx: Any = None):
        self.cfg, self.ctx = cfg, ctx

    def train(self, pairs: list[PreferencePair], base_model: str, output_dir: Path,
              init_adapter: str | None = None) -> AlignedModel:
        return AlignedModel(base=base_model, adapter_path=init_adapter, aligner=self.name,
                            metrics={"pairs": len(pairs), "steps": 0})
