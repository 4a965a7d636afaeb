"""Is there a signal for DPO to learn? Whether a judge's preference between a writer's samples repeats.

DPO learns from which of a user's sampled profiles the judge scored higher. With one target item per
user, that preference may be the luck of which sample happened to lie near that one item. This
script measures it on **validation** users (never the test users): the base writer samples
``--samples`` profiles per user from the profile window that ends before the user's last
``--targets`` interactions, and the judge scores every profile against each of those interactions as
the target (each with its own candidates). It prints:

- mean NDCG@10 over all targets of 10H (no profile), raw_history and the base profiles, and on the
  last target alone (what a run's evaluate stage sees), with best-of-N;
- ``within_user_sd``: how much a user's samples differ on one target (the spread DPO pairs come from);
- ``single_target_r``: the correlation, across targets, of each sample's score relative to its user's
  mean (1: the same sample always wins; 0: which sample wins is luck), and ``split_half_r`` for the
  mean over half the targets against the other half;
- ``split_half_pair_agreement``: a best-vs-worst pair picked on the mean over the even-numbered
  targets, and how often its chosen side also wins on the odd-numbered ones (0.5: luck), the
  ceiling of held-out pair accuracy with labels from half the targets; and best-of-N picked on the
  mean over all targets (the oracle a run with ``protocol.targets_per_user`` reports).

The targets are the protocol's own (``protocol.targets_per_user`` = ``--targets``: tasks sharing one
profile window before every target).

    .venv/bin/python benchmarks/pair_signal.py --users 64 -- experiment=quickstart protocol.train_users=200 \
        protocol.test_users=200 protocol.validation_users=1000 protocol.min_interactions=41 \
        protocol.candidate_sampling=popularity protocol.recent_window=0 protocol.profile_window=10 \
        recommender.profile_weight=1.0

Generation goes through the LLM-call cache, so a rerun with the same settings only judges.
Results: docs/experiments.md ("Is there a signal to learn?").
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from lettingo import api
from lettingo.components import Context
from lettingo.data.protocol import build_tasks
from lettingo.pipeline.explore import sampling_params, task_seed
from lettingo.prompts.baselines import RawHistoryPrompt
from lettingo.targets import targets_of
from lettingo.types import Profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=64, help="validation users (the first N)")
    parser.add_argument("--targets", type=int, default=4, help="targets per user (>= 2)")
    parser.add_argument("--samples", type=int, default=4, help="profiles per user")
    parser.add_argument("overrides", nargs="*", help="config overrides, as for `lettingo run`")
    args = parser.parse_args()
    cfg = api.compose([*args.overrides, f"protocol.targets_per_user={args.targets}"])
    ctx = Context(cfg, None)
    data = ctx.build("dataset", cfg.dataset).load()
    tasks, _ = build_tasks(data, cfg.protocol, cfg.dataset)
    groups = [g for g in targets_of({t.task_id: t for t in tasks}).values() if g[0].split == "validation"]
    groups = groups[: args.users]
    if not groups:
        sys.exit("no validation users: set protocol.validation_users (tune there, never on test users)")
    users = [group[0] for group in groups]  # primary tasks: one profile window before every target
    ctx.items = data.items({i.item_id for group in groups for t in group
                            for i in t.profile_window + t.recent_window} |
                           {c for group in groups for t in group for c in t.candidates})

    prompt, llm = ctx.build("prompt", cfg.prompt), ctx.llm(cfg.llm)
    params = sampling_params(cfg.explore, args.samples)
    texts = []
    for start in range(0, len(users), 32):
        batch = range(start, min(start + 32, len(users)))
        texts += [[g.text for g in gens] for gens in llm.generate(
            [prompt.messages(users[u], ctx.items) for u in batch], params,
            [task_seed(cfg.seed, users[u].task_id, "base") for u in batch])]
        print(f"profiles written for {len(texts)}/{len(users)} users", file=sys.stderr)

    ranker = ctx.build("recommender", cfg.recommender)
    raw = RawHistoryPrompt()
    n, k, s = len(users), args.targets, args.samples
    none, raw_scores, scores = np.zeros((n, k)), np.zeros((n, k)), np.zeros((n, s, k))
    for t in range(k):
        judged = [group[t] for group in groups]
        none[:, t] = [j.score for j in ranker.judge(judged, [None] * n)]
        raw_scores[:, t] = [j.score for j in ranker.judge(judged, [
            Profile(task.task_id, "raw", "raw", 0, raw.profile_text(users[u], ctx.items), [])
            for u, task in enumerate(judged)])]
        for i in range(s):
            scores[:, i, t] = [j.score for j in ranker.judge(judged, [
                Profile(task.task_id, "base", "base", i, texts[u][i], []) for u, task in enumerate(judged)])]

    deviation = scores - scores.mean(axis=1, keepdims=True)  # each sample against its user's mean
    pairs = [(a, b) for a in range(k) for b in range(a + 1, k)]
    single = np.mean([np.corrcoef(deviation[:, :, a].ravel(), deviation[:, :, b].ravel())[0, 1] for a, b in pairs])
    halves = deviation[:, :, 0::2].mean(axis=2).ravel(), deviation[:, :, 1::2].mean(axis=2).ravel()
    # a best-vs-worst pair picked on the even targets' mean: does it hold on the odd targets?
    even, odd = scores[:, :, 0::2].mean(axis=2), scores[:, :, 1::2].mean(axis=2)
    chosen, rejected = even.argmax(axis=1), even.argmin(axis=1)
    margin = odd[np.arange(n), chosen] - odd[np.arange(n), rejected]
    decided = chosen != rejected
    best_on_mean = scores.mean(axis=2).argmax(axis=1)
    print(json.dumps({
        "users": n, "targets": k, "samples": s, "overrides": args.overrides,
        "all_targets": {"10H": round(none.mean(), 4), "raw_history": round(raw_scores.mean(), 4),
                        "base_mean": round(scores.mean(), 4)},
        "last_target": {"10H": round(none[:, 0].mean(), 4), "raw_history": round(raw_scores[:, 0].mean(), 4),
                        "base_mean": round(scores[:, :, 0].mean(), 4),
                        f"base_best_of_{s}": round(scores[:, :, 0].max(axis=1).mean(), 4)},
        "within_user_sd": round(float(scores[:, :, 0].std(axis=1).mean()), 4),
        "single_target_r": round(float(single), 3),
        "split_half_r": round(float(np.corrcoef(*halves)[0, 1]), 3),
        "split_half_pair_agreement": round(float(((margin > 0) + 0.5 * (margin == 0))[decided].mean()), 3),
        f"base_best_of_{s}_on_mean": round(float(scores[np.arange(n), best_on_mean].mean()), 4),
    }))


if __name__ == "__main__":
    main()
