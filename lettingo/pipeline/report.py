"""Stage 7: metrics with confidence intervals against baselines, in results.json and report.md."""

from __future__ import annotations

import functools
import json
from collections import Counter, defaultdict

from omegaconf import OmegaConf

from lettingo import ledger, metrics
from lettingo import profile_stats as stats
from lettingo.pipeline.prepare import evaluated_split, load_items, load_tasks
from lettingo.store import read_jsonl, write_atomic, write_json
from lettingo.types import Judgement, Profile

METHOD_NAMES = {"none": "10H (no profile)", "base": "base profiles", "aligned": "LettinGo (aligned)",
                "raw_history": "raw_history (the profile window as text)"}


def method_name(method: str) -> str:
    return METHOD_NAMES.get(method, f"{method} profiles (base model)")


def method_of(profile_id: str, main_style: str) -> str:
    """none | base | aligned, or the baseline prompt's name for ``test.baseline_prompts`` profiles."""
    parts = profile_id.split("/")
    if parts[-1] == "none":
        return "none"
    generator, style = parts[-3], parts[-2]
    return generator if style == main_style else style


TRUTH = {"sentiment": lambda t: t.label, "rating": lambda t: t.target.rating, "ranking": lambda t: t.target.item_id}
COMPARISONS = (("aligned", "base"), ("aligned", "none"), ("base", "none"))


ORACLE_MARK = "(oracle ceiling, not a method)"


def oracle_name(method: str, n: int) -> str:
    return f"{method_name(method)}: best of {n} {ORACLE_MARK}"


def is_oracle(row_name: str) -> bool:
    return row_name.endswith(ORACLE_MARK)


def user_samples(judgements: list[Judgement]) -> dict[str, list[Judgement]]:
    """Each user's judgements of one method, in sample order (profile ids end in the sample index)."""
    out: dict[str, list[Judgement]] = defaultdict(list)
    for j in sorted(judgements, key=lambda j: (j.task_id, _sample_index(j.profile_id))):
        out[j.task_id].append(j)
    return dict(out)


def _sample_index(profile_id: str) -> int:
    last = profile_id.rsplit("/", 1)[-1]
    return int(last) if last.isdigit() else 0


def compute_results(ctx, store) -> dict:
    """Every metric with its interval for each method and baseline, and paired tests between methods.

    A method with N profiles per user is scored as the mean over its N samples, with intervals
    that resample users (clustered); with N > 1 the base and aligned methods also get a best-of-N
    row, an oracle ceiling that shows how much picking the right sample could help."""
    tasks = load_tasks(store)
    recommender = ctx.build("recommender", ctx.cfg.recommender)  # building loads no model
    task_type = recommender.task_type
    seed = int(ctx.cfg.seed)
    n_boot = int(ctx.cfg.report.bootstrap_resamples)
    scale = tuple(OmegaConf.select(ctx.cfg, "dataset.rating_scale", default=None) or (1.0, 5.0))
    truth = TRUTH[task_type]
    by_method: dict[str, list[Judgement]] = defaultdict(list)
    for row in read_jsonl(store.path("test_judgements.jsonl")):
        j = Judgement.from_dict(row)
        by_method[method_of(j.profile_id, ctx.cfg.prompt.name)].append(j)
    samples = {method: user_samples(js) for method, js in by_method.items()}
    rows, oracles = {}, {}
    order = ["none", *sorted(set(by_method) - {"none", "base", "aligned"}), "base", "aligned"]
    for method in order:
        if by_method.get(method):
            users = sorted(samples[method])
            per_user = [samples[method][u] for u in users]
            truths = [truth(tasks[u]) for u in users]
            rows[method_name(method)] = metrics.summarize_samples(
                task_type, truths, per_user, seed=seed, n_resamples=n_boot, rating_scale=scale)
            width = max(len(s) for s in per_user)
            if method in ("base", "aligned") and width > 1:
                oracles[oracle_name(method, width)] = metrics.summarize(
                    task_type, truths, metrics.best_of_samples(per_user), seed=seed, n_resamples=n_boot,
                    rating_scale=scale)
    rows.update(oracles)
    split = evaluated_split(ctx.cfg)
    test = sorted((t for t in tasks.values() if t.split == split), key=lambda t: t.task_id)
    train = [t for t in tasks.values() if t.split == "train"]
    # Popularity from the windows only: every window rating precedes its user's target.
    popularity = Counter(i.item_id for t in tasks.values() for i in t.profile_window + t.recent_window)
    for name, row in metrics.baselines(
            task_type, [truth(t) for t in test], [truth(t) for t in train], seed=seed, n_resamples=n_boot,
            num_candidates=int(ctx.cfg.protocol.num_candidates), candidates=[t.candidates for t in test],
            popularity=popularity, rating_scale=scale).items():
        rows[f"{name} (baseline)"] = row
    # A recommender may summarise its own judgements (llm_ranker: position bias), per method.
    summarize_own = getattr(recommender, "judgement_summary", None)
    diagnostics = {method_name(m): summarize_own(js) for m, js in by_method.items()} if summarize_own else {}
    return {"task_type": task_type, "recommender": ctx.cfg.recommender.name, "split": split, "methods": rows,
            "paired_tests": paired_tests(task_type, tasks, samples, seed, n_boot, scale),
            "recommender_diagnostics": diagnostics}


def paired_tests(task_type, tasks, samples, seed, n_boot, scale) -> list[dict]:
    """Method A against method B on the users both were judged on, each method's mean over its
    samples of a user (users resampled with all their samples)."""
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
                n_resamples=n_boot, seed=seed, rating_scale=scale)
            out.append({"a": method_name(a), "b": method_name(b), "metric": metric, **test})
    return out


def profile_statistics(ctx, store) -> dict:
    """Profile statistics of the test methods and of each explore generator (with sample diversity)."""
    tasks, items = load_tasks(store), load_items(ctx, store)
    main_style = ctx.cfg.prompt.name
    test_groups, explore_groups = defaultdict(list), defaultdict(list)
    for row in read_jsonl(store.path("test_profiles.jsonl")):
        p = Profile.from_dict(row)
        test_groups[method_name(method_of(p.profile_id, main_style))].append(p)
    for row in read_jsonl(store.path("profiles.jsonl")):
        p = Profile.from_dict(row)
        explore_groups[p.generator].append(p)
    model = ctx.cfg.report.get("embedding_model")
    embed = _embedder(str(model)) if model else None
    return {"test": stats.profile_statistics(test_groups, tasks, items),
            "explore": stats.profile_statistics(explore_groups, tasks, items, embed)}


@functools.lru_cache(maxsize=2)
def _embedder(model: str):
    from lettingo.recommenders.embedding_ranker import EmbeddingRanker

    return EmbeddingRanker(ctx=None, model=model).embed


def profiles_section(profile_stats: dict) -> list[str]:
    lines = ["## Profiles", "",
             "Length in the generator's tokens; distinct-1/2: distinct n-grams over all n-grams; title "
             "overlap: share of the profile window's item titles a profile mentions; sample diversity: "
             "mean pairwise cosine distance between one user's explored profiles (sentence embeddings).", "",
             "| profiles | n | tokens (mean) | distinct-1 | distinct-2 | title overlap | sample diversity |",
             "|---|---|---|---|---|---|---|"]
    for where, groups in (("test", profile_stats["test"]), ("explore", profile_stats["explore"])):
        for name, row in groups.items():
            cells = [row["tokens_mean"], row["distinct_1"], row["distinct_2"], row["title_overlap"],
                     row.get("sample_diversity", float("nan"))]
            lines.append(f"| {where}: {name} | {row['profiles']} | " + " | ".join(
                "" if c != c else f"{c:.3f}" if i else f"{c:.1f}" for i, c in enumerate(cells)) + " |")
    return lines + [""]


def paired_section(tests: list[dict], n_boot: int) -> list[str]:
    if not tests:
        return []
    lines = ["## Is one method better than another?", "",
             "Paired bootstrap over the same test users (each method's mean over a user's sampled profiles; "
             "users are resampled with all their samples): the difference A − B with its 95% interval and a "
             "two-sided p-value. Base and aligned profiles of a user share sampling seeds.", "",
             "| A | B | metric | A − B | 95% CI | p | better |", "|---|---|---|---|---|---|---|"]
    for t in tests:
        p = f"< {1 / n_boot:.3g}" if t["p_value"] == 0 else f"{t['p_value']:.3g}"
        sign = -1 if t["metric"] in metrics.LOWER_IS_BETTER else 1
        better = "A" if t["p_value"] < 0.05 and sign * t["difference"] > 0 else (
            "B" if t["p_value"] < 0.05 and sign * t["difference"] < 0 else "no evidence")
        lines.append(f"| {t['a']} | {t['b']} | {t['metric']} | {t['difference']:+.3f} | "
                     f"[{t['ci'][0]:+.3f}, {t['ci'][1]:+.3f}] | {p} | {better} |")
    return lines + [""]


def diagnostics_section(diagnostics: dict) -> list[str]:
    if not diagnostics:
        return []
    return ["## Recommender diagnostics", "", "What the recommender reports about its own judgements "
            "(for `llm_ranker`: `share_first` is how often a ranking pass put the first presented "
            "candidate on top, against `expected_first` = 1 / candidates for an unbiased ranker).", "",
            "```json", json.dumps(diagnostics, indent=2), "```", ""]


def confusion_section(results: dict) -> list[str]:
    lines = []
    for method, row in results["methods"].items():
        matrix = row.get("confusion")
        if not matrix or "(baseline)" in method:
            continue
        if not lines:
            lines = ["## Confusion matrices (rows: truth, columns: prediction)", ""]
        lines += [f"**{method}**", "", "| truth | " + " | ".join(matrix["columns"]) + " |",
                  "|---" * (len(matrix["columns"]) + 1) + "|"]
        lines += [f"| {truth} | " + " | ".join(str(c) for c in counts) + " |"
                  for truth, counts in zip(matrix["rows"], matrix["counts"])] + [""]
    return lines


def _fmt(metric: dict) -> str:
    value, ci = metric["value"], metric.get("ci")
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"


def results_table(results: dict) -> str:
    rows = results["methods"]
    # every metric any row has (a baseline may lack one), in the order they first appear
    names = list(dict.fromkeys(k for row in rows.values() for k in row
                               if isinstance(row[k], dict) and "value" in row[k]))
    lines = ["| method | " + " | ".join(names) + " | n | invalid |",
             "|---" * (len(names) + 3) + "|"]
    for method, row in rows.items():
        cells = [_fmt(row[m]) if m in row else "" for m in names]
        n = row.get("n", "")
        invalid = f"{row['invalid_rate']:.1%}" if "invalid_rate" in row else ""
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {n} | {invalid} |")
    return "\n".join(lines)


def training_section(store) -> list[str]:
    log_path = store.path("aligned") / "training_log.jsonl"
    aligned_path = store.path("aligned") / "aligned_model.json"
    lines = ["## Alignment", ""]
    if aligned_path.exists():
        aligned = json.loads(aligned_path.read_text())
        lines += [f"Aligner `{aligned['aligner']}` on base `{aligned['base']}`; adapter `{aligned['adapter_path']}`.", ""]
        lines += [f"- {k}: {v}" for k, v in aligned.get("metrics", {}).items() if k not in ("pair_check", "rounds")]
        lines.append("")
        lines += pair_check_section(aligned.get("metrics", {}).get("pair_check"))
    rounds = read_json_list(store.path("aligned") / "rounds.json")
    if rounds:
        lines += ["### Rounds (iterative alignment)", "",
                  "Each round's pairs come from profiles written by the previous round's model (round 1: the "
                  "explore stage); explore accuracy is how often the recommender was right with them.", "",
                  "| round | explored by | explore accuracy | mean score | pairs | chosen − rejected chars | "
                  "train loss | reward margin | reward accuracy | held-out reward accuracy | steps |", "|---" * 11 + "|"]
        for r in rounds:
            heldout = ((r.get("pair_check") or {}).get("heldout") or {}).get("reward_accuracy")
            lines.append(f"| {r['round']} | {r['explored_by']} | {_num(r.get('explore_accuracy'))} | "
                         f"{_num(r.get('explore_mean_score'))} | {r.get('pairs')} | "
                         f"{_num(r.get('mean_length_difference_chars'), 1)} | {_num(r.get('train_loss'))} | "
                         f"{_num(r.get('reward_margin'))} | {_num(r.get('reward_accuracy'))} | "
                         f"{_fmt(heldout) if heldout else ''} | {r.get('steps', '')} |"
                         + (f" stopped: {r['stopped']}" if r.get("stopped") else ""))
        lines.append("")
    steps = [r for r in read_jsonl(log_path) if "loss" in r]
    if steps:
        lines += ["| round | step | loss | reward margin | reward accuracy |", "|---|---|---|---|---|"]
        for r in steps:
            lines.append(f"| {r.get('round', 1)} | {r.get('step')} | {_num(r.get('loss'))} | "
                         f"{_num(r.get('rewards/margins'))} | {_num(r.get('rewards/accuracies'))} |")
        lines.append("")
    return lines


def pair_check_section(check: dict | None) -> list[str]:
    """Did the policy learn, and does it carry over? Implicit-reward accuracy on training pairs
    and on held-out users' pairs (never trained on), before and after."""
    if not check:
        return []
    lines = ["### Did alignment learn? (held-out pairs)", "", f"**{check['verdict']}**", "",
             "Reward accuracy: share of pairs whose chosen profile gets the higher implicit reward "
             "(the trained policy against the model training started from; before training every reward "
             "is 0, a tie counted half). Likelihood preference: share of pairs in which a model gives the "
             "chosen profile the higher log-probability. Intervals resample users.", "",
             "| pairs | n pairs | users | reward accuracy | reward margin | likelihood preference before | "
             "likelihood preference after |", "|---|---|---|---|---|---|---|"]
    for split, label in (("train", "training (sample)"), ("heldout", "held-out users")):
        row = check.get(split) or {}
        if not row.get("pairs"):
            lines.append(f"| {label} | 0 | 0 | | | | |")
            continue
        cells = [_fmt(row[k]) for k in ("reward_accuracy", "reward_margin", "likelihood_preference_before",
                                        "likelihood_preference_after")]
        lines.append(f"| {label} | {row['pairs']} | {row['users']} | " + " | ".join(cells) + " |")
    return lines + [""]


def read_json_list(path) -> list:
    return json.loads(path.read_text()) if path.exists() else []


def _num(value, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def examples_section(ctx, store, count: int) -> list[str]:
    tasks = load_tasks(store, evaluated_split(ctx.cfg))
    items = load_items(ctx, store)
    judged = {r["profile_id"]: r for r in read_jsonl(store.path("test_judgements.jsonl"))}
    profiles: dict[str, dict[str, Profile]] = defaultdict(dict)
    for row in read_jsonl(store.path("test_profiles.jsonl")):
        p = Profile.from_dict(row)
        if p.sample == 0 and p.prompt_style == ctx.cfg.prompt.name:  # not the baseline prompts' profiles
            profiles[p.task_id][p.generator] = p
    lines = ["## Example users", ""]
    for task_id in [t for t in tasks if {"base", "aligned"} <= set(profiles[t])][:count]:
        task = tasks[task_id]
        titles = [items[i.item_id].title if i.item_id in items else i.item_id for i in task.profile_window]
        target = items.get(task.target.item_id)
        lines += [f"### {task_id}", "",
                  f"Profile window ({len(titles)} items): {', '.join(titles[:12])}{' …' if len(titles) > 12 else ''}",
                  f"Target: {target.title if target else task.target.item_id} (label: {task.label})", ""]
        for gen in ("base", "aligned"):
            p = profiles[task_id][gen]
            j = judged.get(p.profile_id, {})
            verdict = f"score {j['score']:.3f}, {'correct' if j['correct'] else 'wrong'}" if j else "not judged"
            text = p.text.strip().replace("\n", " ") or "(empty)"
            lines += [f"**{METHOD_NAMES[gen]}** ({verdict}):", "", f"> {text}", ""]
    return lines


def usage_section(usage: list[dict]) -> list[str]:
    """LLM usage and cost by stage and model, over every attempt of this run (ledger.jsonl)."""
    lines = ["## LLM usage and cost", ""]
    if not usage:
        return lines + ["No LLM calls.", ""]
    lines += ["| stage | model | requests | cache hits | failed | prompt tokens | completion tokens | "
              "LLM seconds | cost (USD) |", "|---" * 9 + "|"]
    for row in usage:
        lines.append(
            f"| {row['stage']} | {row['model']} | {row['requests']} | {row['cache_hits']} | {row['failures']} | "
            f"{int(row['prompt_tokens'])} | {int(row['completion_tokens'])} | {row['latency_s']:.1f} | "
            f"{row['cost_usd']:.4f} |"
        )
    total = sum(row["cost_usd"] for row in usage)
    return lines + ["", f"Total cost: ${total:.4f} (LiteLLM's price map; local models cost 0). "
                        "Cache hits were answered without a call and cost nothing.", ""]


def data_section(summary: dict) -> list[str]:
    """The data summary as people read it: what was loaded, who was kept and why, the labels."""
    users, load = summary["users"], summary.get("load") or {}
    bad = (load.get("bad_records") or {})
    lines = ["## Data", ""]
    if load:
        lines.append(f"{load.get('interactions', '?')} ratings of {load.get('items', '?')} items from "
                     + ", ".join(f"`{path}`" for path in (load.get("sources") or {}).values()) + ".  ")
    skipped_records = bad.get("skipped", 0)
    lines.append(f"Bad records skipped: {skipped_records}"
                 + (" (" + ", ".join(f"{k}: {v}" for k, v in bad.get("by_kind", {}).items()) + ")" if skipped_records
                    else "") + f"; duplicate ratings dropped: {summary.get('duplicates_dropped', 0)}.  ")
    reasons = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in users["skipped_reasons"].items())
    lines.append(f"Users: {users['total']} in the data, {users['eligible']} eligible, {users['kept']} kept; "
                 f"{users['skipped']} skipped ({reasons}).")
    if summary.get("shortfall"):
        lines.append(f"  \n**Note:** {summary['shortfall']}.")
    settings = summary.get("settings", {})
    lines += ["", f"Windows: profile {settings.get('profile_window')} (train groups "
              f"{settings.get('train_profile_windows')}), recent {settings.get('recent_window')}; "
              f"users need at least {settings.get('min_interactions')} interactions.", "",
              "| split | users | like | neutral | dislike |", "|---|---|---|---|---|"]
    for split, row in summary["splits"].items():
        labels = row["labels"]
        lines.append(f"| {split} | {row['users']} | " + " | ".join(str(labels.get(k, 0)) for k in
                                                                   ("like", "neutral", "dislike")) + " |")
    lines += ["", "| history length | min | median | max |", "|---|---|---|---|"]
    for which, stats in summary["history_length"].items():
        lines.append(f"| {which} users | {stats['min']} | {stats['median']} | {stats['max']} |")
    return lines + ["", "The whole summary is in `data_summary.json`; the users of each split in `splits.json`.", ""]


def run(ctx, store) -> dict:
    results = compute_results(ctx, store)
    manifest = store.manifest()
    stages = manifest.get("stages", {})
    results["stages"] = {name: s.get("summary", {}) for name, s in stages.items()}
    results["usage"] = ledger.summarize(ledger.read_ledger(store.dir), by=("stage", "model"))
    results["profile_stats"] = profile_statistics(ctx, store)
    aligned_path = store.path("aligned") / "aligned_model.json"
    if aligned_path.exists():  # did alignment learn, and does it carry over to held-out users' pairs
        results["pair_check"] = json.loads(aligned_path.read_text()).get("metrics", {}).get("pair_check")
    write_json(store.path("results.json"), results)
    cfg = ctx.cfg
    data_summary = json.loads(store.path("data_summary.json").read_text())
    pairs_summary = json.loads(store.path("pairs_summary.json").read_text())
    lines = [
        "# lettingo report", "",
        f"Run directory: `{store.dir}`  ",
        f"Config hash: `{manifest.get('config_hash', '')[:12]}`", "",
        f"dataset `{cfg.dataset.name}` · generator `{cfg.llm.name}:{cfg.llm.model}` · prompt `{cfg.prompt.name}` · "
        f"recommender `{cfg.recommender.name}` · pairs `{cfg.pair_selector.name}` · aligner `{cfg.aligner.name}`", "",
        f"## Results on held-out users ({results['split']} split)", "",
        results_table(results), "",
        "Intervals are 95% bootstrap confidence intervals over users (a user's sampled profiles are "
        "resampled together); `n` counts users. With several profiles per user a method's row is the mean "
        "over its samples, and a best-of-N row picks each user's best-judged sample: an oracle that "
        "knows the held-out answer, a ceiling for what choosing among samples could give, not a method. "
        "`invalid` is the share of recommender outputs that could not be parsed (counted as wrong). "
        "MAE and RMSE: lower is better.", "",
        *paired_section(results["paired_tests"], int(cfg.report.bootstrap_resamples)),
        *confusion_section(results),
        *diagnostics_section(results["recommender_diagnostics"]),
        *profiles_section(results["profile_stats"]),
        *data_section(data_summary),
        "## Preference pairs", "",
        "```json", json.dumps(pairs_summary, indent=2), "```", "",
        *training_section(store),
        *examples_section(ctx, store, int(cfg.report.examples)),
        "## Stages", "",
        "| stage | seconds |", "|---|---|",
        *(f"| {name} | {s.get('seconds', '')} |" for name, s in results["stages"].items()), "",
        *usage_section(results["usage"]),
    ]
    write_atomic(store.path("report.md"), "\n".join(lines) + "\n")
    from lettingo.pipeline.report_html import write_html_report  # here: report_html imports this module

    write_html_report(ctx, store, results)
    return {"results": results}
