"""Stage 4: judged profiles become (prompt, chosen, rejected) preference pairs."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from lettingo.run_data import load_tasks
from lettingo.store import read_jsonl, write_atomic, write_json
from lettingo.targets import mean_over_targets, primary_tasks
from lettingo.types import Judgement, PreferencePair, Profile


def write_pairs(path: Path, pairs: list[PreferencePair]) -> None:
    write_atomic(path, "".join(json.dumps(p.to_dict(), ensure_ascii=False) + "\n" for p in pairs))


def pairs_summary(pairs: list[PreferencePair]) -> dict:
    """Counts, margins and lengths of a pair set. DPO can learn "longer is better" by accident, so
    the length difference chosen − rejected is shown, and how often the chosen side is the longer."""
    diffs = [len(p.chosen) - len(p.rejected) for p in pairs]
    return {
        "pairs": len(pairs),
        "users_with_pairs": len({p.task_id for p in pairs}),
        "mean_margin": statistics.fmean(p.margin for p in pairs) if pairs else None,
        "mean_length_difference_chars": statistics.fmean(diffs) if pairs else None,
        "median_length_difference_chars": statistics.median(diffs) if pairs else None,
        "chosen_longer_share": sum(d > 0 for d in diffs) / len(diffs) if pairs else None,
        "chosen_shorter_share": sum(d < 0 for d in diffs) / len(diffs) if pairs else None,
    }


def run(ctx, cfg, store) -> dict:
    tasks = load_tasks(store, "train")
    profiles = [Profile.from_dict(r) for r in read_jsonl(store.path("profiles.jsonl"))]
    judgements = [Judgement.from_dict(r) for r in read_jsonl(store.path("judgements.jsonl"))]
    selector = ctx.build("pair_selector", cfg.pair_selector)
    # several targets per user: each profile is paired on its mean judgement over them
    pairs = selector.select(primary_tasks(tasks), profiles, mean_over_targets(tasks, judgements))
    write_pairs(store.path("pairs.jsonl"), pairs)
    summary = {**pairs_summary(pairs), "train_users": len(primary_tasks(tasks)),
               "pairs_by_generator": _by_generator(pairs, profiles)}
    summary.update(getattr(selector, "last_summary", None) or {})  # e.g. what length balancing dropped
    write_json(store.path("pairs_summary.json"), summary)
    return summary


def _by_generator(pairs: list[PreferencePair], profiles: list[Profile]) -> dict[str, int]:
    """chosen generator → rejected generator counts: pairs across models are the paper's design."""
    generator = {p.profile_id: p.generator for p in profiles}
    counts: dict[str, int] = {}
    for pair in pairs:
        key = f"{generator.get(pair.chosen_id, '?')} > {generator.get(pair.rejected_id, '?')}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
