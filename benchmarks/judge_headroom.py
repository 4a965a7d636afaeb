"""Does this judge leave a profile anything to add? Measured on validation users, with no LLM.

Before tuning a writer, check that the recommender can use what a profile could say. This script
builds the protocol's tasks for the given config overrides, takes the **validation** users (never
the test users) and judges each with: no profile (10H), the profile window pasted as text
(raw_history), and only the liked items of the profile window (an upper-bound sketch of a terse,
useful profile). Popularity is ranked beside them. If raw_history and liked items are not clearly
above 10H, no profile writer can help under that judge, however well it is aligned.

    .venv/bin/python benchmarks/judge_headroom.py protocol.train_users=200 protocol.test_users=200 \
        protocol.validation_users=1000 protocol.min_interactions=41 \
        protocol.candidate_sampling=popularity protocol.recent_window=0 protocol.profile_window=10 \
        recommender.profile_weight=1.0

Prints one JSON line per profile kind: mean NDCG@10 (the judgement score), and the paired
difference to 10H with a 95% bootstrap interval over users. Results: docs/experiments.md.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from lettingo import api
from lettingo.components import Context
from lettingo.data.protocol import build_tasks
from lettingo.metrics import ndcg_at_k
from lettingo.prompts.baselines import RawHistoryPrompt
from lettingo.run_data import RunData
from lettingo.types import Profile


def paired_interval(diff: np.ndarray, n_resamples: int = 1000, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    means = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(n_resamples)]
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def main(overrides: list[str]) -> None:
    cfg = api.compose(overrides)
    ctx = Context(None, cache=None)
    dataset = ctx.build("dataset", cfg.dataset)
    data = dataset.load()
    tasks, _ = build_tasks(data, cfg.protocol, cfg.dataset)
    users = [t for t in tasks if t.split == "validation"]
    if not users:
        sys.exit("no validation users: set protocol.validation_users (tune there, never on test users)")
    used = {i.item_id for t in users for i in t.profile_window + t.recent_window} | {
        c for t in users for c in t.candidates}
    run_data = RunData.of(data.items(used), cfg.dataset, dataset=dataset)
    raw = RawHistoryPrompt()
    texts = {
        "raw_history": [raw.profile_text(t, run_data) for t in users],
        "liked_items": ["Liked items: " + "; ".join(run_data.items[i.item_id].describe()
                                                    for i in t.profile_window if i.rating >= run_data.like_min)
                        for t in users],
    }
    ranker = ctx.build("recommender", cfg.recommender)
    none = np.array([j.score for j in ranker.judge(users, [None] * len(users), run_data)])
    counts = data.interactions()["item_id"].astype(str).value_counts()
    popularity = np.array([ndcg_at_k(sorted(t.candidates, key=lambda c: -counts.get(c, 0)).index(
        t.target.item_id), 10) for t in users])  # ndcg_at_k takes the 0-based rank
    rows = [("10H (no profile)", none), ("popularity", popularity)]
    for kind, kind_texts in texts.items():
        profiles = [Profile(t.task_id, kind, kind, 0, text, []) for t, text in zip(users, kind_texts)]
        rows.append((kind, np.array([j.score for j in ranker.judge(users, profiles, run_data)])))
    for name, scores in rows:
        print(json.dumps({"row": name, "users": len(users), "ndcg@10": round(float(scores.mean()), 4),
                          "minus_10H": round(float((scores - none).mean()), 4),
                          "ci": paired_interval(scores - none), "overrides": overrides}))


if __name__ == "__main__":
    main(sys.argv[1:])
