"""Preference methods without a reference model, from TRL: ORPO and SimPO (CPO's ``simpo`` loss).

Both train on the same (prompt, chosen, rejected) pairs as DPO but need no reference
log-probabilities, so each step runs one model forward instead of two.
"""

from __future__ import annotations

from typing import Any

from lettingo_trl.aligner import TRLAligner
from lettingo_trl.settings import ORPOSettings, SimPOSettings


class ORPOAligner(TRLAligner):
    """Odds-ratio preference optimisation: SFT on chosen plus a log-odds penalty on rejected."""

    name = "orpo"
    method = "ORPO"
    Settings = ORPOSettings
    config_class = "trl.experimental.orpo:ORPOConfig"
    method_fields = {"beta": "aligner.beta"}

    def make_trainer(self, model, tokenizer, dataset, args: dict[str, Any], peft_config):
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        config = ORPOConfig(**args, beta=self.cfg.beta)
        return ORPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                           peft_config=peft_config, callbacks=self.callbacks)


class SimPOAligner(TRLAligner):
    """SimPO: length-normalised log-likelihood margins with a target margin gamma (TRL's CPOTrainer)."""

    name = "simpo"
    method = "SimPO"
    Settings = SimPOSettings
    config_class = "trl.experimental.cpo:CPOConfig"
    method_fields = {"beta": "aligner.beta", "simpo_gamma": "aligner.simpo_gamma", "cpo_alpha": "aligner.cpo_alpha",
                     "loss_type": "lettingo (simpo)"}

    def make_trainer(self, model, tokenizer, dataset, args: dict[str, Any], peft_config):
        from trl.experimental.cpo import CPOConfig, CPOTrainer

        config = CPOConfig(**args, loss_type="simpo", beta=self.cfg.beta, simpo_gamma=self.cfg.simpo_gamma,
                           cpo_alpha=self.cfg.cpo_alpha)
        return CPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                          peft_config=peft_config, callbacks=self.callbacks)
