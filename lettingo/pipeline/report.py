"""Stage 7: metrics with confidence intervals against baselines, in results.json and report.md."""

from __future__ import annotations

import json
from collections import defaultdict

from lettingo import ledger, metrics
from lettingo.pipeline.prepare import load_items, load_tasks
from lettingo.store import read_jsonl, write_atomic, write_json
from lettingo.types import Judgement, Profile

METHOD_NAMES = {"none": "10H (no profile)", "base": "base profiles", "aligned": "LettinGo (aligned)"}


def method_of(profile_id: str) -> str:
    parts = profile_id.split("/")
    return "none" if parts[-1] == "none" else parts[1]


def compute_results(ctx, store) -> dict:
    tasks = load_tasks(store)
    task_type = ctx.build("recommender", ctx.cfg.recommender).task_type  # builds load no model
    seed = int(ctx.cfg.seed)
    n_boot = int(ctx.cfg.report.bootstrap_resamples)
    by_method: dict[str, list[Judgement]] = defaultdict(list)
    for row in read_jsonl(store.path("test_judgements.jsonl")):
        j = Judgement.from_dict(row)
        by_method[method_of(j.profile_id)].append(j)
    rows = {}
    for method in ["none", "base", "aligned"]:
        if by_method.get(method):
            js = by_method[method]
            rows[METHOD_NAMES[method]] = metrics.summarize(
                task_type, [tasks[j.task_id].label for j in js], js, seed=seed, n_resamples=n_boot)
    test_labels = [t.label for t in tasks.values() if t.split == "test"]
    train_labels = [t.label for t in tasks.values() if t.split == "train"]
    num_candidates = int(ctx.cfg.protocol.num_candidates)
    for name, row in metrics.baselines(task_type, test_labels, train_labels, num_candidates, seed=seed).items():
        rows[f"{name} (baseline)"] = row
    return {"task_type": task_type, "recommender": ctx.cfg.recommender.name, "methods": rows}


def _fmt(metric: dict) -> str:
    value, ci = metric["value"], metric.get("ci")
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"


def results_table(results: dict) -> str:
    rows = results["methods"]
    names = [k for k in next(iter(rows.values())) if isinstance(next(iter(rows.values()))[k], dict)]
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
        lines += [f"- {k}: {v}" for k, v in aligned.get("metrics", {}).items()] + [""]
    steps = [r for r in read_jsonl(log_path) if "loss" in r]
    if steps:
        lines += ["| step | loss | reward margin | reward accuracy |", "|---|---|---|---|"]
        for r in steps:
            lines.append(f"| {r.get('step')} | {r.get('loss', float('nan')):.4f} | "
                         f"{r.get('rewards/margins', float('nan')):.4f} | {r.get('rewards/accuracies', float('nan')):.3f} |")
        lines.append("")
    return lines


def examples_section(ctx, store, count: int) -> list[str]:
    tasks = load_tasks(store, "test")
    items = load_items(ctx, store)
    judged = {r["profile_id"]: r for r in read_jsonl(store.path("test_judgements.jsonl"))}
    profiles: dict[str, dict[str, Profile]] = defaultdict(dict)
    for row in read_jsonl(store.path("test_profiles.jsonl")):
        p = Profile.from_dict(row)
        if p.sample == 0:
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
        "## Results on held-out users", "",
        results_table(results), "",
        "Intervals are 95% bootstrap confidence intervals over users. "
        "`invalid` is the share of recommender outputs that could not be parsed (counted as wrong).", "",
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
    return {"results": results}
