"""DPO (the paper's aligner): preference pairs -> a LoRA adapter or a full fine-tune (TRL ``DPOTrainer``).

With LoRA the reference policy is the base model with the adapter switched off, so no second model
is held; with full fine-tuning TRL keeps a frozen copy as the reference. ``precompute_ref_log_probs``
computes the reference's log-probabilities once before training instead of at every step.
"""

from __future__ import annotations

import logging
from typing import Any

from lettingo_trl.aligner import (  # noqa: F401  (names tests and the launcher import from here)
    DONE_FILE, LAUNCH_FILE, NO_PAIRS_MESSAGE, AlignerInputError, TRLAligner, _conversational_example,
    _latest_checkpoint,
)
from lettingo_trl.settings import DPOSettings

log = logging.getLogger(__name__)


class DPOAligner(TRLAligner):
    """Trains the profile writer to prefer profiles that made the recommender right."""

    name = "dpo"
    method = "DPO"
    Settings = DPOSettings
    config_class = "trl:DPOConfig"
    method_fields = {"beta": "aligner.beta", "loss_type": "aligner.loss_type", "loss_weights": "aligner.loss_weights",
                     "precompute_ref_log_probs": "aligner.precompute_ref_log_probs",
                     "truncation_mode": "lettingo (keep_start: a profile loses its end, never its prompt)"}

    def make_trainer(self, model, tokenizer, dataset, args: dict[str, Any], peft_config):
        from trl import DPOConfig, DPOTrainer

        config = DPOConfig(
            **args, beta=self.cfg.beta, loss_type=_loss_types(self.cfg.loss_type),
            precompute_ref_log_probs=bool(self.cfg.precompute_ref_log_probs), truncation_mode="keep_start",
            **({"loss_weights": list(self.cfg.loss_weights)} if self.cfg.loss_weights else {}),
        )
        return DPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                          peft_config=peft_config, callbacks=self.callbacks)

    def check_dataset(self, dataset, n_pairs: int) -> dict[str, int]:
        """Pairs longer than max_length lose the end of their profiles: count and say so."""
        max_length = self.cfg.max_length
        truncated = 0
        if max_length is not None:
            truncated = sum(
                len(p) + max(len(c), len(r)) > max_length
                for p, c, r in zip(dataset["prompt_ids"], dataset["chosen_ids"], dataset["rejected_ids"])
            )
        if truncated:
            log.warning("%d of %d preference pairs are longer than max_length=%d tokens and lose the end of "
                        "their profiles; raise aligner.max_length or shorten the profile prompt",
                        truncated, n_pairs, max_length)
        return {"truncated_pairs": truncated}


def _loss_types(value: Any) -> Any:
    """One TRL loss name, or a list of them (TRL combines several with ``loss_weights``)."""
    return value if isinstance(value, str) else list(value)
