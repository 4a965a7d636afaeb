"""Stage 4: judged profiles become (prompt, chosen, rejected) preference pairs."""

from __future__ import annotations

import json
import statistics

from lettingo.pipeline.prepare import load_tasks
from lettingo.store import read_jsonl, write_atomic, write_json
from lettingo.types import Judgement, Profile


def run(ctx, store) -> dict:
    tasks = load_tasks(store, "train")
    profiles = [Profile.from_dict(r) for r in read_jsonl(store.path("profiles.jsonl"))]
    judgements = [Judgement.from_dict(r) for r in read_jsonl(store.path("judgements.jsonl"))]
    pairs = ctx.build("pair_selector", ctx.cfg.pair_selector).select(tasks, profiles, judgements)
    write_atomic(store.path("pairs.jsonl"), "".join(json.dumps(p.to_dict(), ensure_ascii=False) + "\n"
                                                    for p in pairs))
    summary = {
        "pairs": len(pairs),
        "users_with_pairs": len({p.task_id for p in pairs}),
        "train_users": len(tasks),
        "mean_margin": statistics.fmean(p.margin for p in pairs) if pairs else None,
        # DPO can learn "longer is better" by accident: show how much longer chosen texts are.
        "mean_length_difference_chars": statistics.fmean(len(p.chosen) - len(p.rejected) for p in pairs)
        if pairs else None,
    }
    write_json(store.path("pairs_summary.json"), summary)
    return summary
