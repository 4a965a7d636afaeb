"""Stage 1: load the dataset and build train/test user tasks under the protocol's guards."""

from __future__ import annotations

import json

from lettingo.data.protocol import build_tasks
from lettingo.store import read_jsonl, write_atomic, write_json
from lettingo.types import Item, UserTask


def run(ctx, store) -> dict:
    if not store.path("tasks.jsonl").exists():
        data = ctx.build("dataset", ctx.cfg.dataset).load()
        tasks, summary = build_tasks(data, ctx.cfg.protocol, ctx.cfg.dataset)
        used = set()
        for task in tasks:
            used.update(i.item_id for i in task.profile_window + task.recent_window)
            used.add(task.target.item_id)
            used.update(task.candidates)
        # Later stages (and resumed runs) read the items they need from here, not the raw dataset.
        items = data.items(used)
        write_atomic(store.path("items.jsonl"), "".join(
            json.dumps(items[i].to_dict(), ensure_ascii=False) + "\n" for i in sorted(items)))
        write_json(store.path("data_summary.json"), summary)
        write_json(store.path("splits.json"), {  # who is in which split, for audits and other tools
            split: sorted(t.user_id for t in tasks if t.split == split) for split in ("train", "test")})
        write_atomic(store.path("tasks.jsonl"), "".join(
            json.dumps(t.to_dict(), ensure_ascii=False) + "\n" for t in tasks))
    tasks = load_tasks(store)
    load_items(ctx, store)
    return {"train_tasks": sum(t.split == "train" for t in tasks.values()),
            "test_tasks": sum(t.split == "test" for t in tasks.values())}


def load_tasks(store, split: str | None = None) -> dict[str, UserTask]:
    tasks = (UserTask.from_dict(row) for row in read_jsonl(store.path("tasks.jsonl")))
    return {t.task_id: t for t in tasks if split is None or t.split == split}


def load_items(ctx, store) -> dict[str, Item]:
    if not ctx.items:
        ctx.items = {row["item_id"]: Item.from_dict(row) for row in read_jsonl(store.path("items.jsonl"))}
    return ctx.items
