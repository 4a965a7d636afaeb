"""The ``lettingo`` command.

    lettingo run [OVERRIDES...]        run the pipeline (Hydra: overrides, -m sweeps, --cfg job, ...)
    lettingo resume RUN_DIR            finish an interrupted run with the config it was made with
    lettingo compare DIR               one table across a sweep's jobs, the paper's numbers beside ours
    lettingo plugins [--json]          installed plugins, their hooks and components
    lettingo plugins --components      each component's config group, option and implementing module
    lettingo models [prepare NAME]     packaged offline models; prepare converts one into the cache
    lettingo --no-plugins COMMAND ...  the same with built-ins only: no entry-point plugin loads
    lettingo --version                 the installed version

Heavy libraries are imported only by the subcommands that need them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from lettingo.errors import LettingoError

USAGE_ERRORS: tuple[type[BaseException], ...] = (LettingoError,)


def _fail(exc: BaseException) -> None:
    print(f"lettingo: error: {exc}", file=sys.stderr)
    sys.exit(2)


def _print_summary(results: dict, run_dir) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if "dry_run" in results:
        from lettingo.pipeline.dry_run import render

        print(render(results["dry_run"]))
        return
    if "shard" in results:
        stopped = results["stopped_before"]
        print(f"lettingo: {results['shard']}: did {', '.join(results['done']) or 'nothing left'} for its users"
              + (f"; '{stopped}' needs every user: when all shards are done, run again without shard.* "
                 f"and run_dir={run_dir} (it merges the shards), or `lettingo merge {run_dir}`" if stopped else ""))
        return
    methods = results.get("methods", {})
    if methods:
        from lettingo.metrics import HEADLINE

        metric_names = list(HEADLINE.get(results.get("task_type"), ()))
        table = Table(title=f"{results.get('recommender')} on held-out users (95% bootstrap CI)")
        table.add_column("method")
        for name in metric_names:
            table.add_column(name, justify="right")
        for method, row in methods.items():
            table.add_row(method, *[
                f"{row[m]['value']:.3f} [{row[m]['ci'][0]:.3f}, {row[m]['ci'][1]:.3f}]"
                if m in row and row[m].get("ci") else (f"{row[m]['value']:.3f}" if m in row else "")
                for m in metric_names])
        console.print(table)
    console.print(f"report: {os.path.join(str(run_dir), 'report.md')} · "
                  f"{os.path.join(str(run_dir), 'report.html')} (plots, profile browser)")


def _check_overrides(argv: list[str]) -> None:
    """Parse overrides up front, so a malformed one is named in the error (Hydra names only the token)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:  # Hydra's own flags and their values
            continue
        try:
            parser.parse_override(arg)
        except HydraException as exc:
            _fail(LettingoError(
                f"cannot read the override {arg!r}: {str(exc).splitlines()[0]}. Overrides look like "
                "key=value, key=[a,b], +new_key=value, group=option; quote values with spaces."))


def _hydra_run(argv: list[str]) -> None:
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from lettingo.api import CONF_DIR
    from lettingo.hydra_callbacks import FAILED_JOB_MARK, SweepFailures

    def task(cfg) -> None:
        from pathlib import Path

        from lettingo.pipeline import run_pipeline

        hydra_cfg = HydraConfig.get()
        run_dir = cfg.get("run_dir") or hydra_cfg.runtime.output_dir
        try:
            results = run_pipeline(cfg, run_dir)
        except USAGE_ERRORS as exc:
            if hydra_cfg.mode != RunMode.MULTIRUN:
                _fail(exc)
            job = f"job {hydra_cfg.job.num} ({' '.join(hydra_cfg.overrides.task)})"
            print(f"error in {job}: {exc}\n(the other jobs go on; `lettingo resume {run_dir}` finishes "
                  "this one)", file=sys.stderr)
            (Path(hydra_cfg.runtime.output_dir) / FAILED_JOB_MARK).write_text(f"{job}: {run_dir}")
            return
        _print_summary(results, run_dir)

    _check_overrides(argv)
    sys.argv = ["lettingo run", *argv]
    SweepFailures.found = []
    hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(task)()
    if SweepFailures.found:
        _fail(LettingoError(f"{len(SweepFailures.found)} job(s) of the sweep failed (their errors are above):\n  "
                            + "\n  ".join(SweepFailures.found)))


def _resume(run_dir: str, stages: list[str] | None) -> None:
    from lettingo import api

    if not os.path.exists(os.path.join(run_dir, "manifest.json")):
        _fail(LettingoError(f"{run_dir} has no manifest.json: not a lettingo run directory"))
    try:
        results = api.run(api.load_config(run_dir), run_dir, stages)
    except USAGE_ERRORS as exc:
        _fail(exc)
    _print_summary(results, run_dir)


def _merge(run_dir: str) -> None:
    from lettingo import api
    from lettingo.pipeline import merge_shards

    if not os.path.exists(os.path.join(run_dir, "manifest.json")):
        _fail(LettingoError(f"{run_dir} has no manifest.json: not a lettingo run directory"))
    try:
        merged = merge_shards(api.load_config(run_dir), run_dir)
    except USAGE_ERRORS as exc:
        _fail(exc)
    for stage, files in merged.items():
        print(f"{stage}: " + ", ".join(f"{name} ({rows} rows)" for name, rows in files.items()))
    if not merged:
        print("nothing to merge: no per-user stage has shards left unmerged")


def _compare(directory: str, out: str | None, fmt: str) -> None:
    from lettingo import compare

    try:
        df = compare.collect(directory)
        written = compare.write_comparison(df, out or directory, compare.FORMATS if fmt == "all" else [fmt])
    except (*USAGE_ERRORS, OSError) as exc:
        _fail(exc)
    print(compare.render_markdown(df))
    print("wrote: " + ", ".join(str(path) for path in written))


def _export(source: str, out: str, dtype: str, force: bool, repo_id: str | None = None,
            private: bool = False) -> None:
    from lettingo.export import export, push_to_hub

    try:
        written = export(source, out, dtype=dtype, force=force)
    except (*USAGE_ERRORS, OSError) as exc:
        _fail(exc)
    print(f"wrote a whole model to {written} (load it with AutoModelForCausalLM.from_pretrained or `vllm serve`)")
    if repo_id:
        try:
            print(f"pushed to {push_to_hub(written, repo_id, private)}")
        except USAGE_ERRORS as exc:
            _fail(exc)


def _plugins(as_json: bool, by_component: bool = False) -> None:
    from lettingo import plugins

    rows = plugins.describe()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    if by_component:  # from a config name to its code in one step
        table = Table(title="lettingo components")
        for col in ("group", "option", "implementation", "plugin"):
            table.add_column(col, no_wrap=col == "implementation")
        found = sorted((kind, name, where, row["name"]) for row in rows
                       for kind, names in row["implementations"].items() for name, where in names.items())
        for kind, name, where, plugin in found:
            table.add_row(kind, name, where, plugin)
        Console().print(table)
        return

    table = Table(title="lettingo plugins")
    for col in ("plugin", "distribution", "version", "components", "hooks"):
        table.add_column(col)
    for row in rows:
        comps = "\n".join(f"{k}: {', '.join(v)}" for k, v in row["components"].items())
        table.add_row(row["name"], row["distribution"] or "", str(row["version"] or ""), comps,
                      "\n".join(row["hooks"]))
    Console().print(table)


def _models(action: str | None, name: str | None) -> None:
    from lettingo import models

    if action == "prepare":
        if name not in models.PACKAGED_MODELS:
            _fail(LettingoError(f"unknown packaged model {name!r}; choose one of: "
                                f"{', '.join(models.PACKAGED_MODELS)}"))
        print(models.prepare_packaged_model(name))
        return
    for alias, spec in models.PACKAGED_MODELS.items():
        target = models.models_dir() / spec["directory"]
        state = f"prepared at {target}" if (target / "config.json").exists() else "not prepared yet"
        print(f"{alias}: {spec['about']} — {state}")
    print("Any Hugging Face model id or local directory also works as llm.model.")


def _version() -> str:
    from lettingo import __version__

    return __version__


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="lettingo", description="LLM-written user profiles, aligned with what helps the recommender.",
        epilog="`lettingo run --help` shows Hydra's options; `lettingo run experiment=quickstart` runs the demo.")
    parser.add_argument("--version", action="version", version=f"lettingo {_version()}")
    parser.add_argument(
        "--no-plugins", action="store_true",
        help="load no installed entry-point plugin, built-ins only (the same as LETTINGO_LOAD_PLUGINS=''); "
             "goes before the command, e.g. `lettingo --no-plugins plugins`")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the pipeline; the rest of the line goes to Hydra", add_help=False)
    resume = sub.add_parser("resume", help="finish an interrupted run with its recorded config")
    resume.add_argument("run_dir")
    resume.add_argument("--stages", nargs="*", help="only these stages (e.g. report)")
    merge = sub.add_parser("merge", help="merge the shard files of a sharded run's per-user stages")
    merge.add_argument("run_dir")
    compare_cmd = sub.add_parser("compare", help="one table across a sweep's jobs, the paper's numbers beside ours")
    compare_cmd.add_argument("dir", help="the sweep's directory (multirun/DATE/TIME) or a run directory")
    compare_cmd.add_argument("--out", help="where compare.md/.csv/.html go (default: DIR)")
    compare_cmd.add_argument("--format", choices=["md", "csv", "html", "all"], default="all")
    export_cmd = sub.add_parser("export", help="merge an aligned run's adapter into a whole model directory")
    export_cmd.add_argument("source", help="a run directory, its aligned/ folder, or an adapter folder")
    export_cmd.add_argument("out", help="the new model directory")
    export_cmd.add_argument("--dtype", default="auto", help="weights' dtype: auto, float32, bfloat16, float16")
    export_cmd.add_argument("--force", action="store_true", help="replace OUT if it exists")
    export_cmd.add_argument("--push-to-hub", metavar="REPO_ID", dest="push_to_hub",
                            help="then upload OUT to this Hugging Face Hub model repo (token: HF_TOKEN or `hf auth login`)")
    export_cmd.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    plugins_cmd = sub.add_parser("plugins", help="list installed plugins, their hooks and components")
    plugins_cmd.add_argument("--json", action="store_true")
    plugins_cmd.add_argument("--components", action="store_true",
                             help="one line per component: its config group and option, and the module:object "
                                  "that implements it")
    models_cmd = sub.add_parser("models", help="list packaged offline models, or prepare one")
    models_cmd.add_argument("action", nargs="?", choices=["list", "prepare"])
    models_cmd.add_argument("name", nargs="?")
    # Global flags come before the command; `run` hands everything after it to Hydra untouched.
    while argv and argv[0] == "--no-plugins":
        argv.pop(0)
        # Set before anything loads plugins; the environment also reaches child processes
        # (Hydra's joblib launcher), so they load none either.
        os.environ["LETTINGO_LOAD_PLUGINS"] = ""
    if argv and argv[0] == "run":
        return _hydra_run(argv[1:])
    args = parser.parse_args(argv)
    if args.command == "resume":
        _resume(args.run_dir, args.stages)
    elif args.command == "merge":
        _merge(args.run_dir)
    elif args.command == "compare":
        _compare(args.dir, args.out, args.format)
    elif args.command == "export":
        _export(args.source, args.out, args.dtype, args.force, args.push_to_hub, args.private)
    elif args.command == "plugins":
        _plugins(args.json, args.components)
    elif args.command == "models":
        _models(args.action, args.name)


if __name__ == "__main__":
    main()
