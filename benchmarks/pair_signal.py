"""Is there a signal for DPO to learn? Whether a judge's preference between a writer's samples repeats.

DPO learns from which of a user's sampled profiles the judge scored higher. With one target item per
user, that preference may be the luck of which sample happened to lie near that one item. This
script measures it on **validation** users (never the test users): the base writer samples
``--samples`` profiles per user from the profile window that ends before the user's last
``--targets`` interactions, and the judge scores every profile against each of those interactions as
the target (each with its own candidates). It prints, for 10H (no profile) and raw_history, the mean
NDCG@10 over all targets and on the last target alone (what a run with one target sees), and for
each writer (``--writers``: sampling settings
of the same model, each with the run's prompt or another prompt option, compared on the same users;
default: the ``explore`` settings):

- its mean over all targets, on the last target, and best-of-N on the last target;
- ``within_user_sd``: how much a user's samples differ on one target (the spread DPO pairs come from);
- ``single_target_r``: the correlation, across targets, of each sample's score relative to its user's
  mean (1: the same sample always wins; 0: which sample wins is luck), and ``split_half_r`` for the
  mean over half the targets against the other half;
- ``split_half_pair_agreement``: a best-vs-worst pair picked on the mean over the even-numbered
  targets, and how often its chosen side also wins on the odd-numbered ones (0.5: luck), the
  ceiling of held-out pair accuracy with labels from half the targets; and best-of-N picked on the
  mean over all targets (the oracle a run with ``protocol.targets_per_user`` reports);
- ``minus_first_writer``: its paired difference from the first writer (users' means, bootstrap 95%
  interval over users).

The targets are the protocol's own (``protocol.targets_per_user`` = ``--targets``: tasks sharing one
profile window before every target).

    .venv/bin/python benchmarks/pair_signal.py --users 64 -- experiment=quickstart protocol.train_users=200 \
        protocol.test_users=200 protocol.validation_users=1000 protocol.min_interactions=41 \
        protocol.candidate_sampling=popularity protocol.recent_window=0 protocol.profile_window=10 \
        recommender.profile_weight=1.0
    .venv/bin/python benchmarks/pair_signal.py --users 64 --targets 20 --writers 1.0:1.0,0.6:0.9 -- ...
    .venv/bin/python benchmarks/pair_signal.py --users 48 --targets 20 --writers 0.6:0.9:2,0.6:0.9:2@palr -- ...

Generation goes through the LLM-call cache, so a rerun with the same settings only judges.
Results: docs/experiments.md ("Is there a signal to learn?").
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from omegaconf import OmegaConf

from lettingo import api
from lettingo.components import Context
from lettingo.data.protocol import build_tasks
from lettingo.llm import SamplingParams
from lettingo.metrics import bootstrap_ci
from lettingo.pipeline.explore import task_seed
from lettingo.prompts.baselines import RawHistoryPrompt
from lettingo.run_data import RunData
from lettingo.targets import targets_of
from lettingo.types import Profile


def writers_from(spec: str | None, cfg, samples: int) -> list[dict]:
    """``T:P[:N][@PROMPT]`` entries (temperature, top_p, samples, prompt option), comma-separated;
    default: the explore settings and the run's prompt."""
    if not spec:
        return [{"temperature": float(cfg.explore.temperature), "top_p": float(cfg.explore.top_p), "n": samples,
                 "prompt": str(cfg.prompt.name)}]
    writers = []
    for entry in spec.split(","):
        entry, _, prompt = entry.partition("@")
        parts = entry.split(":")
        if len(parts) not in (2, 3):
            sys.exit(f"--writers: {entry!r} is not TEMPERATURE:TOP_P[:SAMPLES][@PROMPT]")
        temperature, top_p = float(parts[0]), float(parts[1])
        n = 1 if temperature <= 0 else int(parts[2]) if len(parts) == 3 else samples  # greedy: one sample
        writers.append({"temperature": temperature, "top_p": top_p, "n": n, "prompt": prompt or str(cfg.prompt.name)})
    return writers


def within_writer_signal(scores: np.ndarray) -> dict:
    """For one writer's (users, samples, targets) scores: does a sample's lead over its siblings repeat?"""
    n, s, k = scores.shape
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
    return {
        "within_user_sd": round(float(scores[:, :, 0].std(axis=1).mean()), 4),
        "single_target_r": round(float(single), 3),
        "split_half_r": round(float(np.corrcoef(*halves)[0, 1]), 3),
        "split_half_pair_agreement": round(float(((margin > 0) + 0.5 * (margin == 0))[decided].mean()), 3),
        f"best_of_{s}_on_mean": round(float(scores[np.arange(n), best_on_mean].mean()), 4),
    }


def paired_difference(a: np.ndarray, b: np.ndarray, resamples: int = 2000) -> dict:
    """Mean of a - b over users (each user's mean over samples and targets), with a user bootstrap 95% CI."""
    diff = a.mean(axis=(1, 2)) - b.mean(axis=(1, 2))
    low, high = bootstrap_ci(np.mean, diff, n_resamples=resamples)
    return {"mean": round(float(diff.mean()), 4), "ci95": [round(low, 4), round(high, 4)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=64, help="validation users (the first N)")
    parser.add_argument("--targets", type=int, default=4, help="targets per user (>= 2)")
    parser.add_argument("--samples", type=int, default=4, help="profiles per user and writer")
    parser.add_argument("--writers", default=None,
                        help="writers to compare, TEMPERATURE:TOP_P[:SAMPLES][@PROMPT] comma-separated "
                             "(e.g. 1.0:1.0,0.6:0.9,0.6:0.9@palr); default: explore.temperature / explore.top_p")
    parser.add_argument("overrides", nargs="*", help="config overrides, as for `lettingo run`")
    args = parser.parse_args()
    cfg = api.compose([*args.overrides, f"protocol.targets_per_user={args.targets}"])
    ctx = Context(None)  # the default call cache: reruns reuse the generations
    dataset = ctx.build("dataset", cfg.dataset)
    data = dataset.load()
    tasks, _ = build_tasks(data, cfg.protocol, cfg.dataset)
    groups = [g for g in targets_of({t.task_id: t for t in tasks}).values() if g[0].split == "validation"]
    groups = groups[: args.users]
    if not groups:
        sys.exit("no validation users: set protocol.validation_users (tune there, never on test users)")
    users = [group[0] for group in groups]  # primary tasks: one profile window before every target
    run_data = RunData.of(data.items({i.item_id for group in groups for t in group
                                      for i in t.profile_window + t.recent_window} |
                                     {c for group in groups for t in group for c in t.candidates}),
                          cfg.dataset, dataset=dataset)

    llm = ctx.llm(cfg.llm)
    ranker = ctx.build("recommender", cfg.recommender)
    n, k = len(users), args.targets

    def judged(make_profile) -> np.ndarray:
        """(users, targets) scores of one profile per user, judged on each of the user's targets."""
        return np.stack([[j.score for j in ranker.judge([g[t] for g in groups],
                                                         [make_profile(u, g[t]) for u, g in enumerate(groups)],
                                                         run_data)]
                         for t in range(k)], axis=1)

    none = judged(lambda u, task: None)
    raw = RawHistoryPrompt()
    raw_scores = judged(lambda u, task: Profile(task.task_id, "raw", "raw", 0, raw.profile_text(users[u], run_data), []))
    results = []
    for writer in writers_from(args.writers, cfg, args.samples):
        params = SamplingParams(temperature=writer["temperature"], top_p=writer["top_p"],
                                max_new_tokens=cfg.explore.max_new_tokens, n=writer["n"])
        prompt = ctx.build("prompt", cfg.prompt if writer["prompt"] == cfg.prompt.name
                           else OmegaConf.create({"name": writer["prompt"]}))
        texts = []
        for start in range(0, len(users), 32):  # the seeds explore gives the base writer: cache hits on reruns
            batch = users[start:start + 32]
            texts += [[g.text for g in gens] for gens in llm.generate(
                [prompt.messages(u, run_data) for u in batch], params,
                [task_seed(cfg.seed, u.task_id, "base") for u in batch])]
            print(f"{writer['prompt']} T={params.temperature} top_p={params.top_p}: profiles for {len(texts)}/{n} users", file=sys.stderr)
        scores = np.stack([judged(lambda u, task: Profile(task.task_id, "base", "base", i, texts[u][i], []))
                           for i in range(params.n)], axis=1)
        results.append((writer, texts, scores))

    first = results[0][2]
    report = {"users": n, "targets": k, "overrides": args.overrides,
              "all_targets": {"10H": round(none.mean(), 4), "raw_history": round(raw_scores.mean(), 4)},
              "last_target": {"10H": round(none[:, 0].mean(), 4), "raw_history": round(raw_scores[:, 0].mean(), 4)},
              "writers": []}
    for writer, texts, scores in results:
        s = scores.shape[1]
        row = {**writer, "words": round(float(np.mean([len(t.split()) for user in texts for t in user])), 1),
               "mean_all_targets": round(float(scores.mean()), 4),
               "last_target_mean": round(float(scores[:, :, 0].mean()), 4),
               f"last_target_best_of_{s}": round(float(scores[:, :, 0].max(axis=1).mean()), 4)}
        if s >= 2:
            row.update(within_writer_signal(scores))
        if scores is not first:
            row["minus_first_writer"] = paired_difference(scores, first)
        report["writers"].append(row)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
