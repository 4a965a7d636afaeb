"""The LettinGo pipeline: prepare → explore → evaluate → pair → align → test → report.

The orchestrator loops over the stage table (``lettingo.pipeline.stages``): each stage's inputs are
its config sections plus the previous stage's fingerprint, so a change upstream is seen downstream.
Sharding is a policy applied to the table: a sharded job runs the shared stages, its part of each
per-user stage, and stops before the first stage that needs every user.
"""

from __future__ import annotations

import errno
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lettingo import ledger, plugins
from lettingo.cache import CallCache, digest
from lettingo.components import Context
from lettingo.errors import DiskFullError
from lettingo.pipeline.preflight import check_plan
from lettingo.pipeline.shards import Shard, merge_stage
from lettingo.pipeline.stages import STAGES, Stage, outputs_from, stage
from lettingo.run_data import load_tasks
from lettingo.secrets import scrub_urls
from lettingo.store import RunStore


def stage_fingerprints(cfg: DictConfig) -> dict[str, tuple[str, dict[str, Any]]]:
    resolved = scrub_urls(OmegaConf.to_container(cfg, resolve=True))  # recorded in the manifest
    out, upstream = {}, ""
    for each in STAGES:
        inputs = {key: resolved.get(key) for key in each.inputs}
        fingerprint = digest({"inputs": inputs, "upstream": upstream})
        out[each.name] = (fingerprint, inputs)
        upstream = fingerprint
    return out


def check_components(cfg: DictConfig, registry: plugins.PluginRegistry) -> None:
    """Fail before any work when a configured component is not registered (a typo, a missing plugin)."""
    for kind in plugins.KINDS:
        if kind in cfg:
            registry.factory(kind, cfg[kind].name)
    if "llm" in cfg.get("recommender", {}):
        registry.factory("llm", cfg.recommender.llm.name)


def run_pipeline(cfg: DictConfig, run_dir: str | Path, stages: list[str] | None = None,
                 registry: plugins.PluginRegistry | None = None) -> dict[str, Any]:
    """Run (or resume) the stages in ``run_dir``; returns the results dict of the report stage
    (a sharded job: ``{"shard": ...}`` saying what it did and where it stopped). Components come
    from ``registry`` (default: the process's)."""
    registry = registry or plugins.default_registry()
    check_components(cfg, registry)
    store = RunStore(run_dir)
    shard = Shard.of(cfg)
    store.lock(f".lock.{shard.label}" if shard.sharded else ".lock")
    try:
        # A whole run skips stages already done with these inputs (their summaries stay as
        # recorded); stages named explicitly run again, finding their finished units in place.
        selected = [stage(name) for name in stages] if stages else list(STAGES)
        return _run_locked(cfg, store, selected, registry, skip_done=stages is None)
    finally:
        store.unlock()


def merge_shards(cfg: DictConfig, run_dir: str | Path) -> dict[str, dict[str, int]]:
    """Merge every per-user stage whose shards are all done (``lettingo merge``); rows per file."""
    store = RunStore(run_dir)
    store.lock()
    try:
        fingerprints, merged = stage_fingerprints(cfg), {}
        for each in (s for s in STAGES if s.per_user):
            if store.stage_done(each.name):
                continue
            rows = merge_stage(store, each, list(load_tasks(store)))
            if rows is not None:
                store.mark_stage(each.name, *fingerprints[each.name], "done", {"merged_from_shards": rows})
                merged[each.name] = rows
        return merged
    finally:
        store.unlock()


def _run_locked(cfg: DictConfig, store: RunStore, stages: list[Stage], registry: plugins.PluginRegistry,
                skip_done: bool = False) -> dict[str, Any]:
    shard = Shard.of(cfg)
    cfg_container = scrub_urls(OmegaConf.to_container(cfg, resolve=True))
    cfg_container.pop("shard", None)  # the run's config: one for all its shards (resume runs unsharded)
    cache = CallCache(cfg.cache.path) if cfg.cache.enabled else None
    ctx = Context(store.dir, cache, registry)
    fingerprints = stage_fingerprints(cfg)
    restart = cfg.get("resume", "refuse") == "restart"
    results: dict[str, Any] = {}
    dry_run = bool(cfg.get("dry_run", False))
    if dry_run:  # data only: the estimate needs the users, and no stage past the first runs
        stages = [s for s in stages if s is STAGES[0]] or [STAGES[0]]
    shard_done: list[str] = []
    name = "start"
    planned = False
    try:
        manifest = store.manifest()
        store.update_manifest(
            config=cfg_container,
            config_hash=digest(cfg_container),
            versions=plugins.installed_versions(),
            seeds={"seed": cfg.seed, "protocol": cfg.protocol.seed},
            created=manifest.get("created", time.strftime("%Y-%m-%dT%H:%M:%S")),
        )
        for each in stages:
            name = each.name
            fingerprint, inputs = fingerprints[name]
            redo = outputs_from(name)
            store.check_stage(name, fingerprint, inputs, restart, redo)
            if each.per_user and not shard.sharded and not store.stage_done(name):
                merged = merge_stage(store, each, list(load_tasks(store)))
                if merged is not None:  # every shard did its users: their files become the stage's
                    store.mark_stage(name, fingerprint, inputs, "done", {"merged_from_shards": merged})
                    continue
            key = name
            if shard.sharded and not each.shared:
                if store.stage_done(name):  # merged already: nothing left for a shard
                    continue
                if not each.per_user:  # needs every user: the unsharded run goes on from here
                    return {"shard": shard.label, "done": shard_done, "stopped_before": name}
                key = shard.stage_key(name)
                store.check_stage(key, fingerprint, inputs, restart, redo)
            if skip_done and not each.always_reruns and store.stage_done(key):  # same inputs: check_stage passed
                continue
            if not planned and each.calls_llms:  # the first paid stage: is the whole plan possible?
                check_plan(ctx, cfg, store)
                planned = True
            with store.waiting_lock(f".{name}.lock") if shard.sharded and each.shared else nullcontext():
                if shard.sharded and each.shared and store.stage_done(name):
                    continue  # another shard did it while this one waited
                results = _run_stage(ctx, cfg, store, each, key, fingerprint, inputs) or results
            if each.per_user:
                shard_done.append(name)
        if dry_run:
            from lettingo.pipeline.dry_run import estimate

            check_plan(ctx, cfg, store)
            return {"dry_run": estimate(ctx, cfg, store)}
    except OSError as exc:  # anywhere: a stage's rows, the manifest, the ledger, a checkpoint
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise DiskFullError(
            f"the disk holding {store.dir} is full (or over quota) during the '{name}' stage: {exc}. Every "
            f"unit written before is kept (a line cut short is dropped on resume); free some space and run "
            f"`lettingo resume {store.dir}`"
        ) from None
    finally:
        ctx.release_llms()
        if cache is not None:
            cache.close()
    if shard.sharded:
        return {"shard": shard.label, "done": shard_done, "stopped_before": None}
    if STAGES[-1] in stages and not dry_run:  # the last stage ran: the run is finished
        registry.broadcast("lettingo_run_finished", run_dir=store.dir, metrics=results)
    return results


def _run_stage(ctx: Context, cfg: DictConfig, store: RunStore, each: Stage, key: str, fingerprint: str,
               inputs: dict[str, Any]) -> dict[str, Any] | None:
    """Run one stage (or one shard's part of it), recording it in the manifest; the results a stage
    hands back (the report stage's ``results``) are returned, not recorded."""
    ctx.plugins.broadcast("lettingo_stage_started", stage=each.name, run_dir=store.dir)
    store.mark_stage(key, fingerprint, inputs, "running")
    started, rows_before = time.time(), len(ctx.ledger.rows)
    ctx.ledger.stage = each.name
    summary = each.run(ctx, cfg, store) or {}
    summary["seconds"] = round(time.time() - started, 2)
    usage = ledger.summarize(ctx.ledger.rows[rows_before:], by=("model",))
    if usage:
        summary["llm_usage"] = usage
    results = summary.pop("results", None)
    store.mark_stage(key, fingerprint, inputs, "done", summary)
    ctx.plugins.broadcast("lettingo_stage_finished", stage=each.name, run_dir=store.dir, summary=summary)
    return results
