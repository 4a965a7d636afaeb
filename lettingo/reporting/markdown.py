"""report.md: the run's report as Markdown, rendered from a :class:`~lettingo.reporting.model.RunReport`."""

from __future__ import annotations

import json

from lettingo.preference_check import writers_text
from lettingo.reporting.model import PairedTest, RunReport, Training, targets_note
from lettingo.reporting.naming import METHOD_NAMES
from lettingo.reporting.results import ResultRow, heldout_pair_accuracy, metric_names, p_text

RESULTS_NOTE = (
    "Intervals are 95% bootstrap confidence intervals over users (a user's sampled profiles are "
    "resampled together); `n` counts users. With several profiles per user a method's row is the mean "
    "over its samples, and a best-of-N row picks each user's best-judged sample: an oracle that "
    "knows the held-out answer, a ceiling for what choosing among samples could give, not a method. "
    "`invalid` is the share of recommender outputs that could not be parsed (counted as wrong). "
    "MAE and RMSE: lower is better.")


def render_markdown(report: RunReport) -> str:
    results, config = report.results, report.config
    lines = [
        "# lettingo report", "",
        f"Run directory: `{report.run_dir}`  ",
        f"Config hash: `{report.config_hash}`", "",
        f"dataset `{config['dataset']}` · generator `{config['generator']}` · prompt `{config['prompt']}` · "
        f"recommender `{config['recommender']}` · pairs `{config['pair selector']}` · aligner `{config['aligner']}`", "",
        f"## Results on held-out users ({results['split']} split)", "",
        results_table(report.rows), "",
        " ".join(filter(None, [RESULTS_NOTE, targets_note(results)])), "",
        *paired_section(report.paired, report.n_boot),
        *confusion_section(report.rows),
        *diagnostics_section(results["recommender_diagnostics"]),
        *profiles_section(results["profile_stats"]),
        *data_section(report.data_summary),
        "## Preference pairs", "",
        "```json", json.dumps(report.pairs_summary, indent=2), "```", "",
        *training_section(report.training),
        *examples_section(report),
        "## Stages", "",
        "| stage | seconds |", "|---|---|",
        *(f"| {name} | {s.get('seconds', '')} |" for name, s in results["stages"].items()), "",
        *usage_section(results["usage"]),
    ]
    return "\n".join(lines) + "\n"


def _fmt(metric: dict) -> str:
    value, ci = metric["value"], metric.get("ci")
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"


def _num(value, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def results_table(rows: list[ResultRow]) -> str:
    names = metric_names(rows)
    lines = ["| method | " + " | ".join(names) + " | n | invalid |",
             "|---" * (len(names) + 3) + "|"]
    for row in rows:
        cells = [_fmt(row.values[m]) if m in row.values else "" for m in names]
        invalid = f"{row.values['invalid_rate']:.1%}" if "invalid_rate" in row.values else ""
        lines.append(f"| {row.name} | " + " | ".join(cells) + f" | {row.values.get('n', '')} | {invalid} |")
    return "\n".join(lines)


def paired_section(tests: list[PairedTest], n_boot: int) -> list[str]:
    if not tests:
        return []
    lines = ["## Is one method better than another?", "",
             "Paired bootstrap over the same test users (each method's mean over a user's sampled profiles; "
             "users are resampled with all their samples): the difference A − B with its 95% interval and a "
             "two-sided p-value. Base and aligned profiles of a user share sampling seeds.", "",
             "| A | B | metric | A − B | 95% CI | p | better |", "|---|---|---|---|---|---|---|"]
    for t in tests:
        lines.append(f"| {t.a} | {t.b} | {t.metric} | {t.difference:+.3f} | "
                     f"[{t.ci[0]:+.3f}, {t.ci[1]:+.3f}] | {p_text(t.p_value, n_boot)} | {t.better} |")
    return lines + [""]


def confusion_section(rows: list[ResultRow]) -> list[str]:
    lines = []
    for row in rows:
        matrix = row.values.get("confusion")
        if not matrix or row.kind == "baseline":
            continue
        if not lines:
            lines = ["## Confusion matrices (rows: truth, columns: prediction)", ""]
        lines += [f"**{row.name}**", "", "| truth | " + " | ".join(matrix["columns"]) + " |",
                  "|---" * (len(matrix["columns"]) + 1) + "|"]
        lines += [f"| {truth} | " + " | ".join(str(c) for c in counts) + " |"
                  for truth, counts in zip(matrix["rows"], matrix["counts"])] + [""]
    return lines


def diagnostics_section(diagnostics: dict) -> list[str]:
    if not diagnostics:
        return []
    return ["## Recommender diagnostics", "", "What the recommender reports about its own judgements "
            "(for `llm_ranker`: `share_first` is how often a ranking pass put the first presented "
            "candidate on top, against `expected_first` = 1 / candidates for an unbiased ranker).", "",
            "```json", json.dumps(diagnostics, indent=2), "```", ""]


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


def training_section(training: Training) -> list[str]:
    lines = ["## Alignment", ""]
    aligned = training.aligned
    if aligned is not None:
        lines += [f"Aligner `{aligned['aligner']}` on base `{aligned['base']}`; adapter `{aligned['adapter_path']}`.", ""]
        lines += [f"- {k}: {v}" for k, v in aligned.get("metrics", {}).items() if k not in ("pair_check", "rounds")]
        lines.append("")
        lines += pair_check_section(training.pair_check)
    if training.rounds:
        lines += ["### Rounds (iterative alignment)", "",
                  "Each round's pairs come from profiles written by the previous round's model (round 1: the "
                  "explore stage); explore accuracy is how often the recommender was right with them.", "",
                  "| round | explored by | explore accuracy | mean score | pairs | chosen − rejected chars | "
                  "train loss | reward margin | reward accuracy | held-out reward accuracy | steps |", "|---" * 11 + "|"]
        for r in training.rounds:
            heldout = heldout_pair_accuracy(r)
            lines.append(f"| {r.get('round', '')} | {r.get('explored_by', '')} | {_num(r.get('explore_accuracy'))} | "
                         f"{_num(r.get('explore_mean_score'))} | {r.get('pairs')} | "
                         f"{_num(r.get('mean_length_difference_chars'), 1)} | {_num(r.get('train_loss'))} | "
                         f"{_num(r.get('reward_margin'))} | {_num(r.get('reward_accuracy'))} | "
                         f"{_fmt(heldout) if heldout else ''} | {r.get('steps', '')} |"
                         + (f" stopped: {r['stopped']}" if r.get("stopped") else ""))
        lines.append("")
    if training.steps:
        lines += ["| round | step | loss | reward margin | reward accuracy |", "|---|---|---|---|---|"]
        for r in training.steps:
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
    writers = [writers_text(entry) for entry in check.get("heldout_between_writers") or []]
    if writers:  # several explore generators: a writer's style can be learned while accuracy stays ~0.5
        lines += ["", *[f"- {text}" for text in writers]]
    return lines + [""]


def examples_section(report: RunReport) -> list[str]:
    lines = ["## Example users", ""]
    for ex in report.examples:
        titles = ex.window_titles
        lines += [f"### {ex.task_id}", "",
                  f"Profile window ({len(titles)} items): {', '.join(titles[:12])}{' …' if len(titles) > 12 else ''}",
                  f"Target: {ex.target_title} (label: {ex.label})", ""]
        for gen, text, j in ex.profiles:
            verdict = f"score {j['score']:.3f}, {'correct' if j['correct'] else 'wrong'}" if j else "not judged"
            text = text.strip().replace("\n", " ") or "(empty)"
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
