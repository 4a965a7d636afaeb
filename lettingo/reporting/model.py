"""The run-report model: everything report.md, report.html and results.json show, from one read of a
run directory.

:func:`build_report` reads each run file once (tasks, items, profiles, judgements, pairs, the
training log, ``aligned/aligned_model.json`` with its pair check, ``aligned/rounds.json``, the
ledger, the data and pair summaries) and computes the numbers once: per-method metrics with
intervals (mean over a user's N samples, and best-of-N oracle rows), the baselines, the paired tests
and their verdicts, profile statistics, usage. The renderers only format a :class:`RunReport`.
"""

from __future__ import annotations

import functools
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from lettingo import ledger, metrics
from lettingo import profile_stats as stats
from lettingo.reporting.naming import (baseline_name, method_name, method_of, natural_key, oracle_name,
                                       profile_method)
from lettingo.reporting.results import ResultRow, best_values, better, finite, read_json, result_rows
from lettingo.run_data import evaluated_split, load_items, load_tasks, rating_scale
from lettingo.store import read_jsonl
from lettingo.targets import earliest_target_tasks, targets_of
from lettingo.types import Item, Judgement, Profile, UserTask

TRUTH = {"sentiment": lambda t: t.label, "rating": lambda t: t.target.rating, "ranking": lambda t: t.target.item_id}
COMPARISONS = (("aligned", "base"), ("aligned", "none"), ("base", "none"))
MAX_BROWSER_USERS = 300  # test users embedded in the profile browser
MAX_PAIRS = 200  # preference pairs embedded in the pair browser
MAX_HISTORY = 100  # most recent items of a profile window shown per user
MAX_TEXT = 4000  # characters of a profile text embedded (longer ones are cut, and say so)
MAX_REVIEW = 300  # characters of a review shown under a history item


@dataclass
class PairedTest:
    a: str
    b: str
    metric: str
    difference: float
    ci: list
    p_value: float
    better: str  # "A", "B" or "no evidence"


@dataclass
class Training:
    aligner: str                   # the configured aligner's name
    aligned: dict | None           # aligned/aligned_model.json
    pair_check: dict | None        # its metrics' pair check (held-out pairs), if any
    rounds: list[dict]             # aligned/rounds.json (iterative alignment)
    steps: list[dict]              # the training log's rows with a loss


@dataclass
class Example:
    """A test user with base and aligned profiles (the run's prompt, sample 0)."""

    task_id: str
    window_titles: list[str]
    target_title: str
    label: str
    profiles: list[tuple[str, str, dict | None]]  # (method, text, judgement row or None)


@dataclass
class RunReport:
    results: dict                  # results.json, exactly
    run_dir: str
    config_hash: str
    created: str
    config: dict[str, str]         # dataset, generator, prompt, recommender, pair selector, aligner
    n_boot: int
    paired: list[PairedTest]
    data_summary: dict
    pairs_summary: dict
    training: Training
    examples: list[Example]
    lengths: list[tuple[str, dict[str, list[int]]]]  # (panel title, words per profile by group)
    browser: dict                  # the profile browser's data (users, main_style, task_type)
    browser_total: int             # users of the evaluated split (the browser keeps MAX_BROWSER_USERS)
    pair_browser: dict             # the pair browser's data (users)
    pair_counts: tuple[int, int, int] = (0, 0, 0)  # pairs shown, pairs, training users with pairs
    rows: list[ResultRow] = field(default_factory=list)
    best: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        self.rows = result_rows(self.results)
        self.best = best_values(self.rows)


@dataclass
class RunFiles:
    """The run directory's files, each read once."""

    tasks: dict[str, UserTask]
    items: dict[str, Item]
    test_profiles: list[Profile]
    test_judgements: list[Judgement]
    explore_profiles: list[Profile]
    explore_judgements: dict[str, dict]
    pairs: list[dict]
    aligned: dict | None
    rounds: list[dict]
    steps: list[dict]

    @classmethod
    def read(cls, store) -> "RunFiles":
        aligned_dir = store.path("aligned")
        aligned, _ = read_json(aligned_dir / "aligned_model.json")
        rounds, _ = read_json(aligned_dir / "rounds.json")
        rounds_ok = isinstance(rounds, list) and all(isinstance(r, dict) for r in rounds)
        return cls(
            tasks=load_tasks(store), items=load_items(store),
            test_profiles=[Profile.from_dict(r) for r in read_jsonl(store.path("test_profiles.jsonl"))],
            test_judgements=[Judgement.from_dict(r) for r in read_jsonl(store.path("test_judgements.jsonl"))],
            explore_profiles=[Profile.from_dict(r) for r in read_jsonl(store.path("profiles.jsonl"))],
            explore_judgements={r["profile_id"]: r for r in read_jsonl(store.path("judgements.jsonl"))
                                if "profile_id" in r},
            pairs=read_jsonl(store.path("pairs.jsonl")),
            aligned=aligned if isinstance(aligned, dict) else None,
            rounds=rounds if rounds_ok else [],
            steps=[r for r in read_jsonl(aligned_dir / "training_log.jsonl") if isinstance(r, dict) and "loss" in r])


def build_report(ctx, cfg, store) -> RunReport:
    main_style = str(cfg.prompt.name)
    files = RunFiles.read(store)
    by_method: dict[str, list[Judgement]] = defaultdict(list)
    for j in files.test_judgements:  # old run directories' judgements lack their method
        by_method[j.method or method_of(j.profile_id, main_style)].append(j)
    results = compute_results(ctx, cfg, files.tasks, by_method)
    manifest = store.manifest()
    results["stages"] = {name: s.get("summary", {}) for name, s in manifest.get("stages", {}).items()}
    results["usage"] = ledger.summarize(ledger.read_ledger(store.dir), by=("stage", "model"))
    results["profile_stats"] = profile_statistics(cfg, files, main_style)
    pair_check = ((files.aligned or {}).get("metrics") or {}).get("pair_check")
    if files.aligned is not None:  # did alignment learn, and does it carry over to held-out users' pairs
        results["pair_check"] = pair_check
    n_boot = int(cfg.report.bootstrap_resamples)
    judged = {j.profile_id: j.to_dict() for j in files.test_judgements}
    browser, browser_total = browser_data(files, judged, main_style, results["task_type"])
    pair_browser, pair_counts = pair_browser_data(files)
    return RunReport(
        results=results, run_dir=str(store.dir), config_hash=str(manifest.get("config_hash", ""))[:12],
        created=str(manifest.get("created", "?")),
        config={"dataset": str(cfg.dataset.name), "generator": f"{cfg.llm.name}:{cfg.llm.model}",
                "prompt": main_style, "recommender": str(cfg.recommender.name),
                "pair selector": str(cfg.pair_selector.name), "aligner": str(cfg.aligner.name)},
        n_boot=n_boot,
        paired=[PairedTest(t["a"], t["b"], t["metric"], t["difference"], t["ci"], t["p_value"], better(t))
                for t in results["paired_tests"]],
        data_summary=json.loads(store.path("data_summary.json").read_text()),
        pairs_summary=json.loads(store.path("pairs_summary.json").read_text()),
        training=Training(str(cfg.aligner.name), files.aligned, pair_check, files.rounds, files.steps),
        examples=examples(files, judged, main_style, evaluated_split(cfg), int(cfg.report.examples)),
        lengths=profile_lengths(files, main_style),
        browser=browser, browser_total=browser_total, pair_browser=pair_browser, pair_counts=pair_counts)


# -- results.json ------------------------------------------------------------------------------------

def user_samples(judgements: list[Judgement]) -> dict[str, list[Judgement]]:
    """Each user's judgements of one method, in sample order (profile ids end in the sample index)."""
    out: dict[str, list[Judgement]] = defaultdict(list)
    for j in sorted(judgements, key=lambda j: (j.task_id, _sample_index(j.profile_id))):
        out[j.task_id].append(j)
    return dict(out)


def _sample_index(profile_id: str) -> int:
    last = profile_id.rsplit("/", 1)[-1]
    return int(last) if last.isdigit() else 0


def compute_results(ctx, cfg, tasks: dict[str, UserTask], by_method: dict[str, list[Judgement]]) -> dict:
    """Every metric with its interval for each method and baseline, and paired tests between methods.

    A method with N profiles per user is scored as the mean over its N samples, with intervals
    that resample users (clustered); with N > 1 the base and aligned methods also get a best-of-N
    row, an oracle ceiling that shows how much picking the right sample could help."""
    recommender = ctx.build("recommender", cfg.recommender)  # building loads no model
    task_type = recommender.task_type
    seed = int(cfg.seed)
    n_boot = int(cfg.report.bootstrap_resamples)
    scale = rating_scale(cfg.dataset)
    truth = TRUTH[task_type]
    samples = {method: user_samples(js) for method, js in by_method.items()}
    # several targets per user (protocol.targets_per_user): a row per target, users resampled whole
    several = any(t.profile_task for t in tasks.values())

    def clusters(task_ids):
        return [tasks[t].user_id for t in task_ids] if several else None

    rows, oracles = {}, {}
    order = ["none", *sorted(set(by_method) - {"none", "base", "aligned"}), "base", "aligned"]
    for method in order:
        if by_method.get(method):
            users = sorted(samples[method])
            per_user = [samples[method][u] for u in users]
            truths = [truth(tasks[u]) for u in users]
            rows[method_name(method)] = metrics.summarize_samples(
                task_type, truths, per_user, seed=seed, n_resamples=n_boot, rating_scale=scale,
                clusters=clusters(users))
            width = max(len(s) for s in per_user)
            if method in ("base", "aligned") and width > 1:
                best = metrics.best_of_samples(per_user, clusters(users))
                if several:  # one pick per user, scored on each of its targets
                    oracles[oracle_name(method, width)] = metrics.summarize_samples(
                        task_type, truths, [[j] for j in best], seed=seed, n_resamples=n_boot, rating_scale=scale,
                        clusters=clusters(users))
                else:
                    oracles[oracle_name(method, width)] = metrics.summarize(
                        task_type, truths, best, seed=seed, n_resamples=n_boot, rating_scale=scale)
    rows.update(oracles)
    split = evaluated_split(cfg)
    test = sorted((t for t in tasks.values() if t.split == split), key=lambda t: t.task_id)
    train = [t for t in tasks.values() if t.split == "train"]
    # Popularity from the windows only: every window rating precedes its user's targets (the
    # earliest target's windows: with several targets, later ones' windows hold earlier targets).
    popularity = Counter(i.item_id for t in earliest_target_tasks(tasks) for i in t.profile_window + t.recent_window)
    for name, row in metrics.baselines(
            task_type, [truth(t) for t in test], [truth(t) for t in train], seed=seed, n_resamples=n_boot,
            num_candidates=int(cfg.protocol.num_candidates), candidates=[t.candidates for t in test],
            popularity=popularity, rating_scale=scale, clusters=clusters([t.task_id for t in test])).items():
        rows[baseline_name(name)] = row
    # A recommender may summarise its own judgements (llm_ranker: position bias), per method.
    summarize_own = getattr(recommender, "judgement_summary", None)
    diagnostics = {method_name(m): summarize_own(js) for m, js in by_method.items()} if summarize_own else {}
    out = {"task_type": task_type, "recommender": cfg.recommender.name, "split": split, "methods": rows,
           "paired_tests": paired_tests(task_type, tasks, samples, seed, n_boot, scale, several),
           "recommender_diagnostics": diagnostics}
    if several:
        out["targets_per_user"] = max(len(group) for group in targets_of(tasks).values())
    return out


def targets_note(results: dict) -> str:
    """What a row means when each user was judged on several targets ("" with one)."""
    m = results.get("targets_per_user", 1)
    return (f"Each user was judged on {m} targets (their last {m} interactions, one profile for all: "
            "protocol.targets_per_user); a row is the mean over every user's targets, n still counts "
            "users, and intervals and paired tests resample users with all their targets.") if m > 1 else ""


def paired_tests(task_type, tasks, samples, seed, n_boot, scale, several=False) -> list[dict]:
    """Method A against method B on the users both were judged on, each method's mean over its
    samples of a user (users resampled with all their samples, and all their targets)."""
    out = []
    baselines = sorted(set(samples) - {"none", "base", "aligned"})
    for a, b in [*COMPARISONS, *(("aligned", style) for style in baselines)]:
        if a not in samples or b not in samples:
            continue
        users = sorted(set(samples[a]) & set(samples[b]))
        truths = [TRUTH[task_type](tasks[u]) for u in users]
        fns = metrics.metric_functions(task_type, truths)
        for metric in metrics.HEADLINE[task_type]:
            test = metrics.paired_samples_test(
                task_type, fns[metric], truths, [samples[a][u] for u in users], [samples[b][u] for u in users],
                n_resamples=n_boot, seed=seed, rating_scale=scale,
                clusters=[tasks[u].user_id for u in users] if several else None)
            out.append({"a": method_name(a), "b": method_name(b), "metric": metric, **test})
    return out


def profile_statistics(cfg, files: RunFiles, main_style: str) -> dict:
    """Profile statistics of the test methods and of each explore generator (with sample diversity)."""
    test_groups, explore_groups = defaultdict(list), defaultdict(list)
    for p in files.test_profiles:
        test_groups[method_name(profile_method(p.generator, p.prompt_style, main_style))].append(p)
    for p in files.explore_profiles:
        explore_groups[p.generator].append(p)
    model = cfg.report.get("embedding_model")
    embed = _embedder(str(model)) if model else None
    return {"test": stats.profile_statistics(test_groups, files.tasks, files.items),
            "explore": stats.profile_statistics(explore_groups, files.tasks, files.items, embed)}


@functools.lru_cache(maxsize=2)
def _embedder(model: str):
    from lettingo.recommenders.embedding_ranker import EmbeddingRanker

    return EmbeddingRanker(model=model).embed


# -- what the pages show besides the numbers ----------------------------------------------------------

def examples(files: RunFiles, judged: dict[str, dict], main_style: str, split: str, count: int) -> list[Example]:
    profiles: dict[str, dict[str, Profile]] = defaultdict(dict)
    for p in files.test_profiles:
        if p.sample == 0 and p.prompt_style == main_style:  # not the baseline prompts' profiles
            profiles[p.task_id][p.generator] = p
    out = []
    evaluated = [t for t in files.tasks.values() if t.split == split]  # in tasks.jsonl's order
    for task in [t for t in evaluated if {"base", "aligned"} <= set(profiles.get(t.task_id, {}))][:count]:
        target = files.items.get(task.target.item_id)
        out.append(Example(
            task.task_id, [_title(files.items, i.item_id) for i in task.profile_window],
            target.title if target else task.target.item_id, task.label,
            [(gen, profiles[task.task_id][gen].text, judged.get(profiles[task.task_id][gen].profile_id))
             for gen in ("base", "aligned")]))
    return out


def _title(items: dict[str, Item], item_id: str) -> str:
    return items[item_id].title if item_id in items else item_id


def profile_lengths(files: RunFiles, main_style: str) -> list[tuple[str, dict[str, list[int]]]]:
    """Words per profile: test profiles by method (base and aligned last), explored ones by generator."""
    test: dict[str, list[int]] = defaultdict(list)
    for p in files.test_profiles:
        test[profile_method(p.generator, p.prompt_style, main_style)].append(_words(p.text))
    explore: dict[str, list[int]] = defaultdict(list)
    for p in files.explore_profiles:
        explore[p.generator].append(_words(p.text))
    last = ("base", "aligned")
    panels = [("test profiles, by method", {method_name(m): v for m, v in sorted(
                  test.items(), key=lambda kv: last.index(kv[0]) if kv[0] in last else -1)}),
              ("explored profiles (train users), by generator", dict(sorted(explore.items())))]
    return [(title, groups) for title, groups in panels if groups]


def _words(text: str) -> int:
    return len(str(text or "").split())


def cut(text: Any, limit: int) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[:limit] + f" … [cut: {len(text) - limit} more characters]"


def _item(items: dict, interaction) -> dict:
    item = items.get(interaction.item_id)
    out = {"title": item.title if item else f"item {interaction.item_id}", "rating": finite(interaction.rating)}
    if interaction.text:
        out["review"] = cut(interaction.text, MAX_REVIEW)
    return out


def verdict(judgement: dict | None, target_id: str | None) -> dict | None:
    """A judgement as the browsers show it: score, correct, valid, and what was predicted."""
    if not judgement:
        return None
    out = {"score": finite(judgement.get("score")), "correct": bool(judgement.get("correct")),
           "valid": bool(judgement.get("valid", True))}
    prediction = judgement.get("prediction")
    if isinstance(prediction, list):
        if target_id is not None:
            out["prediction"] = (f"target ranked {prediction.index(target_id) + 1} of {len(prediction)}"
                                 if target_id in prediction else f"target not among the {len(prediction)} ranked")
    elif prediction is not None:
        out["prediction"] = "prediction: " + cut(prediction, 200)
    return out


def browser_data(files: RunFiles, judged: dict[str, dict], main_style: str, task_type: str) -> tuple[dict, int]:
    """The profile browser's users (the first MAX_BROWSER_USERS of the evaluated split) and their count."""
    by_task: dict[str, list[Profile]] = defaultdict(list)
    for p in files.test_profiles:
        by_task[p.task_id].append(p)
    test = sorted((t for t in files.tasks.values() if t.task_id in by_task), key=lambda t: natural_key(t.task_id))
    users = []
    for task in test[:MAX_BROWSER_USERS]:
        target_id = task.target.item_id
        main, others = {}, []
        for p in sorted(by_task[task.task_id], key=lambda p: (p.prompt_style, p.generator, p.sample)):
            card = {"method": method_name(profile_method(p.generator, p.prompt_style, main_style)),
                    "id": p.profile_id, "model": p.model, "text": cut(p.text, MAX_TEXT),
                    "verdict": verdict(judged.get(p.profile_id), target_id)}
            if p.prompt_style == main_style and p.sample == 0 and p.generator in ("base", "aligned"):
                main[p.generator] = card
            else:
                others.append(card)
        users.append({
            "id": task.task_id, "user": task.user_id, "label": task.label,
            "history": [_item(files.items, i) for i in task.profile_window[-MAX_HISTORY:]],
            "history_total": len(task.profile_window),
            "recent": [_item(files.items, i) for i in task.recent_window],
            "target": _item(files.items, task.target),
            "no_profile": verdict(judged.get(f"{task.task_id}/none"), target_id),
            "base": main.get("base"), "aligned": main.get("aligned"), "others": others,
        })
    return {"users": users, "main_style": main_style, "task_type": task_type}, len(test)


def pair_browser_data(files: RunFiles) -> tuple[dict, tuple[int, int, int]]:
    """Preference pairs per training user (MAX_PAIRS at most), and (shown, pairs, users)."""
    by_user: dict[str, list[dict]] = defaultdict(list)
    for pair in files.pairs:
        by_user[str(pair.get("user_id", ""))].append(pair)
    users, kept = [], 0
    for user_id in sorted(by_user, key=natural_key):
        if kept >= MAX_PAIRS:
            break
        rows = []
        for pair in by_user[user_id][: MAX_PAIRS - kept]:
            task = files.tasks.get(pair.get("task_id", ""))
            target_id = task.target.item_id if task else None
            rows.append({"task": pair.get("task_id", ""), "margin": finite(pair.get("margin")),
                         **{side: {"id": pair.get(f"{side}_id", ""), "text": cut(pair.get(side), MAX_TEXT),
                                   "verdict": verdict(files.explore_judgements.get(pair.get(f"{side}_id", "")),
                                                      target_id)}
                            for side in ("chosen", "rejected")}})
        kept += len(rows)
        users.append({"id": user_id, "pairs": rows, "total": len(by_user[user_id])})
    return {"users": users}, (kept, len(files.pairs), len(by_user))
