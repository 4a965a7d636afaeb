"""Stage 1: load the dataset and build train/test (/validation) user tasks under the protocol's guards."""

from __future__ import annotations

import json

from lettingo.data.protocol import SPLITS, build_tasks
from lettingo.run_data import load_tasks
from lettingo.store import write_atomic, write_json


def run(ctx, cfg, store) -> dict:
    if not store.path("tasks.jsonl").exists():
        data = ctx.build("dataset", cfg.dataset).load()
        tasks, summary = build_tasks(data, cfg.protocol, cfg.dataset)
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
            split: sorted(t.user_id for t in tasks if t.split == split) for split in SPLITS
            if any(t.split == split for t in tasks)})
        write_atomic(store.path("tasks.jsonl"), "".join(
            json.dumps(t.to_dict(), ensure_ascii=False) + "\n" for t in tasks))
    tasks = load_tasks(store)
    counts = {f"{split}_tasks": sum(t.split == split for t in tasks.values()) for split in SPLITS}
    if not counts["validation_tasks"]:
        del counts["validation_tasks"]
    return counts
