"""``lettingo compare``: one table across the jobs of a Hydra sweep, the paper's numbers beside ours.

A sweep (``lettingo run -m ...``) writes one job directory per setting under
``multirun/DATE/TIME/<job number>``; with ``run_dir: null`` each job's run (``manifest.json``,
``results.json``) is in its job directory, next to Hydra's ``.hydra/overrides.yaml``. A job with
``run_dir=...`` set writes its run there; jobs that share one run directory (the shards of one run)
are one row group.

:func:`collect` reads every job into one :class:`pandas.DataFrame` (numbers: a column per metric
value, ``<metric>_lo`` / ``<metric>_hi`` for its 95% interval, ``n``, ``invalid_rate``, and the
paper's published numbers where a row matches one, see :mod:`lettingo.paper`); a job's *setting* is
the overrides that differ between the jobs. :func:`write_comparison` writes it as ``compare.md``,
``compare.csv`` (numbers, for machines) and ``compare.html`` (self-contained).
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import yaml

from lettingo.errors import LettingoError
from lettingo.metrics import HEADLINE, LOWER_IS_BETTER
from lettingo.paper import describe, published
from lettingo.reporting.naming import natural_key
from lettingo.reporting.results import heldout_pair_accuracy, metric_names, read_json, result_rows
from lettingo.pipeline.stages import STAGE_NAMES
from lettingo.store import write_atomic

PAPER_HEADER = "published in the paper (not ours)"
FORMATS = ("md", "csv", "html")
# The alignment check of a job (results.json ``pair_check``), shown on its aligned row: did what the
# writer learned carry over to held-out users' pairs (lettingo.preference_check)?
PAIR_ACCURACY = "held-out pair accuracy"
SETTING_VALUE_CHARS = 40  # longer override values are shown by their end ("…/models/tiny-llama")
_JOB_FILES = ("results.json", "manifest.json", ".hydra/overrides.yaml")
_UNSET = "(default)"


class NoJobsError(LettingoError, FileNotFoundError):
    """The directory given to ``lettingo compare`` holds no job of a sweep."""


@dataclass
class Job:
    name: str                      # the job directory, relative to the sweep directory
    dir: Path                      # the Hydra job directory (or the run directory itself)
    run: Path                      # where its run writes: dir, or its run_dir
    overrides: dict[str, str] | None  # from .hydra/overrides.yaml; None when there is none
    config: dict[str, Any] | None  # the run's resolved config (manifest.json), or Hydra's copy
    results: dict[str, Any] | None
    problem: str = ""              # why there are no results


# -- finding and reading jobs ---------------------------------------------------------------------

def _is_job(path: Path) -> bool:
    return any((path / name).is_file() for name in _JOB_FILES)


def find_job_dirs(root: Path) -> list[Path]:
    """``root`` itself when it is a run or job directory; else its sub-directories (two levels down at
    most) that hold ``results.json``, ``manifest.json`` or ``.hydra/overrides.yaml``."""
    if _is_job(root):
        return [root]
    found = []
    for child in sorted(root.iterdir()):
        if not child.is_dir() or child.name.startswith("."):
            continue
        if _is_job(child):
            found.append(child)
            continue
        found += [grandchild for grandchild in sorted(child.iterdir())
                  if grandchild.is_dir() and not grandchild.name.startswith(".") and _is_job(grandchild)]
    return sorted(found, key=lambda p: natural_key(p.relative_to(root).as_posix()))


def parse_overrides(lines: Iterable[Any]) -> dict[str, str]:
    """``["protocol.profile_window=50", "+x=1", "~y"]`` -> ``{"protocol.profile_window": "50", "x": "1",
    "y": "(deleted)"}``."""
    out = {}
    for line in lines:
        key, sep, value = str(line).partition("=")
        out[key.lstrip("+~").strip()] = value if sep else "(deleted)"
    return out


def _read_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, yaml.YAMLError):
        return None


def _run_location(job_dir: Path, hydra_config: dict | None) -> Path:
    """The job's run directory: ``run_dir`` from its Hydra config when set (relative paths are read
    from the current directory, where ``lettingo run`` was started), else the job directory."""
    run_dir = (hydra_config or {}).get("run_dir") if isinstance(hydra_config, dict) else None
    if isinstance(run_dir, str) and run_dir and "${" not in run_dir:
        return Path(run_dir).expanduser().absolute()
    return job_dir


def _stage_state(run: Path) -> str:
    """What a run without results has: which stages its manifest marks done, which it left running."""
    if not run.exists():
        return f"its run directory {run} does not exist"
    manifest, problem = read_json(run / "manifest.json")
    if manifest is None:
        names = sorted(p.name for p in run.iterdir() if not p.name.startswith(".") and p.name != ".hydra")
        where = f"holds: {', '.join(names[:8])}{' …' if len(names) > 8 else ''}" if names else "holds nothing else"
        return problem or f"no manifest.json: no stage started ({where})"
    stages = manifest.get("stages", {})
    done = [s for s in STAGE_NAMES if stages.get(s, {}).get("status") == "done"]
    unfinished = [f"{key} {entry.get('status', '?')}" for key, entry in stages.items()
                  if entry.get("status") != "done"]
    text = f"stages done: {', '.join(done) or 'none'}"
    if unfinished:
        text += f"; {', '.join(unfinished)} (interrupted or failed)"
    todo = [s for s in STAGE_NAMES if s not in done]
    return text + (f"; not reached: {', '.join(todo)}" if todo and not unfinished else "")


def read_job(root: Path, job_dir: Path) -> Job:
    hydra_config = _read_yaml(job_dir / ".hydra" / "config.yaml")
    overrides = _read_yaml(job_dir / ".hydra" / "overrides.yaml")
    run = _run_location(job_dir, hydra_config)
    manifest, _ = read_json(run / "manifest.json")
    config = (manifest or {}).get("config") or (hydra_config if isinstance(hydra_config, dict) else None)
    results, problem = read_json(run / "results.json")
    if results is not None and not results.get("methods"):
        results, problem = None, "results.json has no methods (a dry run, or a shard that stopped before report)"
    if results is None and not problem:
        problem = "no results.json; " + _stage_state(run)
    name = job_dir.relative_to(root).as_posix() if job_dir != root else root.name
    return Job(name=name, dir=job_dir, run=run,
               overrides=parse_overrides(overrides) if isinstance(overrides, list) else None,
               config=config, results=results, problem="" if results is not None else problem)


def _merge_shared_runs(jobs: list[Job]) -> tuple[list[Job], list[str]]:
    """Jobs writing into one run directory (the shards of a run) become one job; overrides on which
    they differ (``shard.index``) are dropped from it."""
    groups: dict[Path, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.run.resolve(), []).append(job)
    merged, notes = [], []
    for run, members in groups.items():
        first = members[0]
        if len(members) > 1:
            names = [m.name for m in members]
            notes.append(f"jobs {', '.join(names)} write into one run directory ({run}): shown as one job")
            overrides = None
            if all(m.overrides is not None for m in members):
                overrides = {k: v for k, v in first.overrides.items()
                             if all(m.overrides.get(k) == v for m in members)}
            first = Job(",".join(names), first.dir, first.run, overrides, first.config, first.results, first.problem)
        merged.append(first)
    return merged, notes


# -- settings -------------------------------------------------------------------------------------

def _lookup(config: dict | None, key: str):
    """A key's value in a config (``aligner`` -> the option's name, ``protocol.profile_window`` -> 50)."""
    node: Any = config
    for part in re.split(r"[./]", key):
        if not isinstance(node, dict) or part not in node:
            return _UNSET
        node = node[part]
    if isinstance(node, dict):
        return str(node.get("name", _UNSET))
    return _text(node)


def _text(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False).replace('"', "")
    return str(value)


def _flatten(config: dict | None, prefix: str = "") -> dict[str, str]:
    out = {}
    for key, value in (config or {}).items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = _text(value)
    return out


def job_settings(jobs: list[Job]) -> tuple[list[str], list[dict[str, str]], dict[str, str]]:
    """The keys whose values differ between jobs, each job's values of them, and what all jobs share.

    The keys are those of the jobs' overrides; a job without a given override shows the value its
    config has (or ``(default)``). When no job has Hydra's ``overrides.yaml``, the jobs' configs are
    compared key by key instead."""
    if any(job.overrides is not None for job in jobs):
        keys = list(dict.fromkeys(k for job in jobs for k in (job.overrides or {})))
        values = [{k: (job.overrides[k] if job.overrides is not None and k in job.overrides
                       else _lookup(job.config, k)) for k in keys} for job in jobs]
    else:
        flat = [_flatten(job.config) for job in jobs]
        keys = list(dict.fromkeys(k for f in flat for k in f))
        values = [{k: f.get(k, _UNSET) for k in keys} for f in flat]
    differing = [k for k in keys if len({v[k] for v in values}) > 1]
    common = {k: values[0][k] for k in keys if k not in differing and values and
              any(job.overrides and k in job.overrides for job in jobs)}
    return differing, [{k: v[k] for k in differing} for v in values], common


def _short(value: str) -> str:
    return value if len(value) <= SETTING_VALUE_CHARS else "…" + value[-(SETTING_VALUE_CHARS - 1):]


def setting_text(values: dict[str, str], jobs: int) -> str:
    if values:
        return ", ".join(f"{k}={_short(v)}" for k, v in values.items())
    return "(the only job)" if jobs == 1 else "(no override differs)"


# -- the table ------------------------------------------------------------------------------------

def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def collect(multirun_dir) -> pd.DataFrame:
    """Every job's results in one table: a row per job and method.

    Columns: ``job``, ``setting`` (the overrides that differ between jobs, compactly), one column per
    differing override key (full values), ``method``, ``task_type``, per metric ``<metric>``,
    ``<metric>_lo``, ``<metric>_hi`` (headline metrics first), ``n``, ``invalid_rate``, ``paper`` (the
    paper's published numbers matching the row, in words) and ``paper_<metric>`` /
    ``paper_ablation_<metric>`` (those numbers, as fractions). ``df.attrs`` holds ``source``,
    ``metrics``, ``setting_keys``, ``common`` (overrides every job shares), ``missing`` (jobs without
    results: ``job``, ``dir``, ``state``) and ``notes``."""
    root = Path(multirun_dir)
    if not root.is_dir():
        raise NoJobsError(f"{root} is not a directory; give the sweep's directory (multirun/DATE/TIME), "
                          "whose job directories hold results.json and .hydra/overrides.yaml")
    job_dirs = find_job_dirs(root)
    if not job_dirs:
        raise NoJobsError(
            f"{root} holds no job of a sweep: expected job directories (e.g. {root}/0, {root}/1) holding "
            "results.json, manifest.json or .hydra/overrides.yaml, up to two levels down. Give the "
            "directory `lettingo run -m` wrote (hydra.sweep.dir, by default multirun/DATE/TIME) or a run directory.")
    jobs, notes = _merge_shared_runs([read_job(root, d) for d in job_dirs])
    keys, values, common = job_settings(jobs)
    reserved = {"job", "setting", "method", "task_type", "n", "invalid_rate", "paper"}
    key_columns = {k: (k if k not in reserved else f"override:{k}") for k in keys}

    finished = [(job, vals) for job, vals in zip(jobs, values) if job.results is not None]
    task_types = list(dict.fromkeys(job.results.get("task_type") for job, _ in finished))
    present = metric_names([row for job, _ in finished for row in result_rows(job.results)])
    metrics = [m for m in dict.fromkeys([m for tt in task_types for m in HEADLINE.get(tt, ())] + present)
               if m in present]

    records = []
    for job, vals in finished:
        results, config = job.results, job.config or {}
        task_type = results.get("task_type")
        dataset = config.get("dataset") if isinstance(config.get("dataset"), dict) else {}
        aligner = config.get("aligner", {}).get("name") if isinstance(config.get("aligner"), dict) else None
        check = heldout_pair_accuracy(results)
        for row in result_rows(results):
            record: dict[str, Any] = {"job": job.name, "setting": setting_text(vals, len(jobs))}
            record.update({key_columns[k]: v for k, v in vals.items()})
            record.update(method=row.name, task_type=task_type)
            for m in metrics:
                cell = row.metric(m) or {}
                ci = cell.get("ci") or (None, None)
                record.update({m: _number(cell.get("value")), f"{m}_lo": _number(ci[0]), f"{m}_hi": _number(ci[1])})
            record["n"] = row.values.get("n")
            record["invalid_rate"] = _number(row.values.get("invalid_rate"))
            if check and row.method == "aligned":
                record.update({PAIR_ACCURACY: _number(check.get("value")), f"{PAIR_ACCURACY}_lo": _number(check["ci"][0]),
                               f"{PAIR_ACCURACY}_hi": _number(check["ci"][1])})
            key = row.method
            entries = (published(str(dataset.get("name")), task_type, key, aligner, dataset_config=dataset)
                       if key else [])
            record["paper"] = describe(entries)
            for e in entries:
                record[f"paper_{'' if e.table == 'headline' else e.table + '_'}{e.metric}"] = e.value
            records.append(record)

    if any(PAIR_ACCURACY in r for r in records):
        metrics.append(PAIR_ACCURACY)
    columns = ["job", "setting", *key_columns.values(), "method", "task_type",
               *(c for m in metrics for c in (m, f"{m}_lo", f"{m}_hi")), "n", "invalid_rate", "paper"]
    paper_columns = sorted({c for r in records for c in r if c.startswith("paper_")})
    df = pd.DataFrame.from_records(records, columns=columns + paper_columns)
    df["n"] = df["n"].astype("Int64")
    df.attrs.update(
        source=str(root), metrics=metrics, setting_keys=list(key_columns.values()), common=common,
        missing=[{"job": job.name, "dir": str(job.dir), "state": job.problem} for job in jobs if job.results is None],
        notes=notes)
    return df


# -- rendering ------------------------------------------------------------------------------------

def interval(value, low, high) -> str:
    """``0.530 [0.480, 0.580]``; the value alone without an interval; empty for no value."""
    if value is None or pd.isna(value):
        return ""
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return f"{value:.3f}"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _header(metric: str) -> str:
    return metric + (" (lower is better)" if metric in LOWER_IS_BETTER else "")


def display_table(df: pd.DataFrame) -> pd.DataFrame:
    """The table as people read it: strings, metrics with their intervals, a job's repeated ``job``
    and ``setting`` left blank after its first row."""
    metrics = df.attrs.get("metrics", [])
    rows = []
    previous = None
    for _, r in df.iterrows():
        first = r["job"] != previous
        previous = r["job"]
        row = {"job": r["job"] if first else "", "setting": r["setting"] if first else "", "method": r["method"]}
        row.update({_header(m): interval(r[m], r[f"{m}_lo"], r[f"{m}_hi"]) for m in metrics})
        row["n"] = "" if pd.isna(r["n"]) else str(int(r["n"]))
        row["invalid"] = "" if pd.isna(r["invalid_rate"]) else f"{r['invalid_rate']:.1%}"
        row[PAPER_HEADER] = r["paper"] or ""
        rows.append(row)
    columns = ["job", "setting", "method", *(_header(m) for m in metrics), "n", "invalid", PAPER_HEADER]
    return pd.DataFrame(rows, columns=columns, dtype=object)


def _explanations(df: pd.DataFrame) -> list[str]:
    out = ["Ours: each metric on the run's held-out users with its 95% bootstrap confidence interval "
           "[low, high]; `n`: users; `invalid`: share of recommender outputs that could not be parsed "
           "(counted as wrong). The setting is what the jobs' overrides differ in."]
    if PAIR_ACCURACY in df.attrs.get("metrics", []):
        out.append(f"**{PAIR_ACCURACY}** (aligned rows): the share of held-out training users' preference pairs, "
                   "never trained on, whose chosen profile the aligned writer prefers (DPO's implicit reward), "
                   "with its interval over users; above 0.5 means what it learned carries over to other users.")
    if "paper" in df and df["paper"].fillna("").astype(bool).any():
        out.append(
            f"**{PAPER_HEADER}**: the LettinGo paper's (KDD 2025) accuracy, in percent as published "
            "(53.00% is 0.530 on our scale), from second-hand notes on the paper (lettingo/paper.py): treat "
            "it as a reference point, not ours. The paper's setting: MovieLens-10M, Yelp and Amazon Books "
            "users with more than 70 interactions, LLaMA3-8B-Instruct as the like/neutral/dislike judge, "
            "10 profiles per user explored with several LLMs, 3,000 train and 2,000 test users. A number "
            "is shown wherever dataset, task, method and aligner match (`dataset=movielens` matches any "
            "MovieLens release, while the paper used ML-10M); model, sizes and windows may still differ "
            "from the paper's.")
    return out


def _md_cell(text: Any) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(df: pd.DataFrame) -> str:
    missing, common = df.attrs.get("missing", []), df.attrs.get("common", {})
    jobs = df["job"].nunique()
    lines = ["# lettingo compare", "",
             f"Sweep `{df.attrs.get('source', '')}`: {jobs} job{'s' if jobs != 1 else ''} with results"
             + (f", {len(missing)} without (listed below)" if missing else "") + "."]
    if common:
        lines += ["", "Every job: " + ", ".join(f"`{_md_cell(k)}={_md_cell(_short(v))}`" for k, v in common.items())]
    lines.append("")
    if len(df):
        table = display_table(df)
        lines += ["| " + " | ".join(_md_cell(c) for c in table.columns) + " |",
                  "|" + "|".join("---" if c in ("job", "setting", "method", PAPER_HEADER) else "---:"
                                 for c in table.columns) + "|"]
        lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
        lines += [""] + [line for text in _explanations(df) for line in (text, "")]
    else:
        lines += ["No job has results yet.", ""]
    if missing:
        lines += ["## Jobs without results", ""]
        lines += [f"- `{_md_cell(m['job'])}` ({_md_cell(m['dir'])}): {_md_cell(m['state'])}" for m in missing]
        lines.append("")
    if df.attrs.get("notes"):
        lines += ["## Notes", ""] + [f"- {_md_cell(n)}" for n in df.attrs["notes"]] + [""]
    return "\n".join(lines)


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; vertical-align: top; }
th { background: #f0f0f0; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th.paper, td.paper { background: #fff8e1; font-style: italic; color: #6d4c00; }
tr.first td { border-top: 2px solid #888; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def render_html(df: pd.DataFrame) -> str:
    e = html.escape
    missing, common = df.attrs.get("missing", []), df.attrs.get("common", {})
    source = df.attrs.get("source", "")
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>lettingo compare: {e(source)}</title>", f"<style>{CSS}</style></head><body>",
             "<h1>lettingo compare</h1>",
             f"<p>Sweep <code>{e(source)}</code>: {df['job'].nunique()} job(s) with results"
             + (f", {len(missing)} without (listed below)" if missing else "") + ".</p>"]
    if common:
        parts.append("<p>Every job: " + ", ".join(f"<code>{e(k)}={e(_short(v))}</code>" for k, v in common.items())
                     + "</p>")
    if len(df):
        table = display_table(df)
        numeric = {c for c in table.columns if c not in ("job", "setting", "method", PAPER_HEADER)}
        parts.append("<table><thead><tr>" + "".join(
            f'<th class="{"paper" if c == PAPER_HEADER else ""}">{e(c)}</th>' for c in table.columns)
            + "</tr></thead><tbody>")
        for row in table.to_dict("records"):
            cells = "".join(
                f'<td class="{"num" if c in numeric else "paper" if c == PAPER_HEADER else ""}">{e(str(v))}</td>'
                for c, v in row.items())
            parts.append(f'<tr class="{"first" if row["job"] else ""}">{cells}</tr>')
        parts.append("</tbody></table>")
        parts += [f"<p>{e(text.replace('**', '').replace('`', ''))}</p>" for text in _explanations(df)]
    else:
        parts.append("<p>No job has results yet.</p>")
    if missing:
        parts.append("<h2>Jobs without results</h2><ul>")
        parts += [f"<li><code>{e(m['job'])}</code> ({e(m['dir'])}): {e(m['state'])}</li>" for m in missing]
        parts.append("</ul>")
    if df.attrs.get("notes"):
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in df.attrs["notes"]) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_comparison(df: pd.DataFrame, out_dir, formats: Iterable[str] = FORMATS) -> list[Path]:
    """Write ``compare.md``, ``compare.csv`` (the numeric columns, for machines) and ``compare.html``
    (or the ``formats`` asked for) into ``out_dir``; returns the paths written."""
    out = Path(out_dir)
    written = []
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
        path = out / f"compare.{fmt}"
        text = {"md": render_markdown, "html": render_html,
                "csv": lambda d: d.to_csv(index=False)}[fmt](df)
        write_atomic(path, text if fmt != "md" else text + "\n")
        written.append(path)
    return written
