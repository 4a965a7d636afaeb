"""Stage 3: the frozen recommender judges each profile on its user's held-out interaction(s)."""

from __future__ import annotations

from lettingo.pipeline.failures import FailureBudget
from lettingo.pipeline.shards import Shard
from lettingo.progress import progress
from lettingo.reporting.naming import profile_method
from lettingo.run_data import RunData, load_run_data, load_tasks
from lettingo.store import JsonlAppender, read_jsonl
from lettingo.targets import on_task, targets_of
from lettingo.types import Judgement, Profile, UserTask


def judge_all(ctx, cfg, data: RunData, tasks: dict[str, UserTask], profiles: list[Profile | tuple[str, None]],
              out: JsonlAppender, description: str, failures: FailureBudget) -> int:
    """Judge every (task, profile) not yet in ``out``; ``("task_id", None)`` means no profile (10H).
    A judgement whose LLM request failed is not written (a rerun judges it again). Each judgement
    records its method (none, base, aligned or a baseline prompt's name), so the report need not
    parse profile ids. With several targets per user (``protocol.targets_per_user``) each profile
    is judged on every target of its user (``lettingo.targets``)."""
    recommender = ctx.build("recommender", cfg.recommender)
    main_style = str(cfg.prompt.name)
    targets = targets_of(tasks)
    position = {task_id: k for k, task_id in enumerate(tasks)}
    units, methods, total = [], {}, 0
    for p in profiles:
        task_id, written = (p.task_id, p) if isinstance(p, Profile) else p
        method = profile_method(written.generator, written.prompt_style, main_style) if written else "none"
        for task in targets[task_id]:
            total += 1
            profile = on_task(written, task) if written else None
            key = profile.profile_id if profile else f"{task.task_id}/none"
            if key not in out:
                units.append((task, profile))
                methods[key] = method
    if len(targets) < len(tasks):  # several targets: in the order a merge of shards writes them
        group = {}
        units.sort(key=lambda u: (group.setdefault((u[1].generator, u[1].prompt_style) if u[1] else None, len(group)),
                                  position[u[0].task_id], u[1].sample if u[1] else 0))
    batch_size = max(1, int(cfg.evaluate.batch_size))
    with progress(description, total=total, done=total - len(units)) as advance:
        for start in range(0, len(units), batch_size):
            batch = units[start:start + batch_size]
            judgements = recommender.judge([t for t, _ in batch], [p for _, p in batch], data)
            advance(len(batch))
            for j in judgements:
                j.method = methods.get(j.profile_id, j.method)
                if j.error:
                    failures.record(f"judgement {j.profile_id}", j.error)
            out.append(j.to_dict() for j in judgements if not j.error)
    return len(units)


def judgement_key(row: dict) -> str:
    return row["profile_id"]


def run(ctx, cfg, store) -> dict:
    data = load_run_data(ctx, cfg, store)
    shard = Shard.of(cfg)
    tasks = load_tasks(store, "train")
    # this shard's profiles: from explore's merged file, or from its own shard of explore
    source = store.path("profiles.jsonl") if store.stage_done("explore") else store.path(shard.file("profiles.jsonl"))
    profiles = [Profile.from_dict(r) for r in read_jsonl(source) if shard.owns(r["task_id"])]
    failures = FailureBudget.for_stage(cfg, "evaluate", len(profiles))
    with JsonlAppender(store.path(shard.file("judgements.jsonl")), judgement_key) as out:
        judge_all(ctx, cfg, data, tasks, profiles, out, "evaluate: judging profiles", failures)
        rows = [Judgement.from_dict(r) for r in out.rows]
    return {"judgements": len(rows), "correct_rate": sum(j.correct for j in rows) / max(1, len(rows)),
            "invalid": sum(not j.valid for j in rows), **failures.summary()}
