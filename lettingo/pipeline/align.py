"""Stage 5: the aligner trains the generator on the preference pairs (DPO by default)."""

from __future__ import annotations

import json

from lettingo.errors import NoPairsError
from lettingo.models import resolve_model
from lettingo.store import read_jsonl, write_json
from lettingo.types import AlignedModel, PreferencePair


def run(ctx, store) -> dict:
    pairs = [PreferencePair.from_dict(r) for r in read_jsonl(store.path("pairs.jsonl"))]
    if not pairs:
        raise NoPairsError(
            f"{store.path('pairs.jsonl')} holds no preference pairs: every user's profiles were judged "
            "alike. Use pair_selector=best_vs_worst, more profiles per user (explore.num_profiles), "
            "or more train users (protocol.train_users).")
    ctx.release_llms()  # free generation engines before training
    aligner = ctx.build("aligner", ctx.cfg.aligner)
    aligned = aligner.train(pairs, resolve_model(ctx.cfg.llm.model), store.path("aligned"))
    write_json(store.path("aligned") / "aligned_model.json", aligned.to_dict())
    return {"aligner": aligned.aligner, "metrics": aligned.metrics}


def load_aligned(store) -> AlignedModel:
    return AlignedModel.from_dict(json.loads((store.path("aligned") / "aligned_model.json").read_text()))
