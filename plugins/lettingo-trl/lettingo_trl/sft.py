"""SFT on the chosen profiles (the paper's ablation): imitate what helped, without the rejected side.

Each distinct (prompt, chosen profile) becomes one prompt-completion example; the loss is on the
profile's tokens only. A pair's rejected profile is not used.
"""

from __future__ import annotations

import json
from typing import Any

from lettingo.types import PreferencePair
from lettingo_trl.aligner import TRLAligner, _as_text, conversational_prompt
from lettingo_trl.settings import SFTSettings


class SFTAligner(TRLAligner):
    name = "sft"
    method = "SFT"
    Settings = SFTSettings
    config_class = "trl:SFTConfig"
    method_fields = {"completion_only_loss": "lettingo (the loss is on the profile only)"}

    def examples(self, pairs: list[PreferencePair], special: set[str]) -> list[dict[str, Any]]:
        rows, seen = [], set()
        for pair in pairs:  # correct_vs_incorrect repeats a chosen profile once per rejected one
            key = (json.dumps(pair.prompt_messages, sort_keys=True), pair.chosen.strip())
            if key in seen:
                continue
            seen.add(key)
            rows.append({"prompt": conversational_prompt(pair, special),
                         "completion": [{"role": "assistant", "content": _as_text(pair.chosen, special)}]})
        return rows

    def make_trainer(self, model, tokenizer, dataset, args: dict[str, Any], peft_config):
        from trl import SFTConfig, SFTTrainer

        config = SFTConfig(**args, completion_only_loss=True)
        return SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                          peft_config=peft_config, callbacks=self.callbacks)
