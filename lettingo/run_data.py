"""What a run directory holds about its data, read back: the tasks, the items, the evaluated split.

The prepare stage writes ``tasks.jsonl`` and ``items.jsonl``; every later stage and the report read
them through here (so reading a run needs nothing from the pipeline package).
"""

from __future__ import annotations

from omegaconf import OmegaConf

from lettingo.store import read_jsonl
from lettingo.types import Item, UserTask


def evaluated_split(cfg) -> str:
    """The held-out users the test stage evaluates: ``test`` (default) or ``validation`` (to tune on
    while the test users stay untouched)."""
    split = str(OmegaConf.select(cfg, "test.split", default="test") or "test")
    if split not in ("test", "validation"):
        raise ValueError(f"test.split must be test or validation, got {split!r}")
    return split


def load_tasks(store, split: str | None = None) -> dict[str, UserTask]:
    tasks = (UserTask.from_dict(row) for row in read_jsonl(store.path("tasks.jsonl")))
    return {t.task_id: t for t in tasks if split is None or t.split == split}


def load_items(ctx, store) -> dict[str, Item]:
    """The run's items, kept on the context (``ctx.items``) once read."""
    if not ctx.items:
        ctx.items = {row["item_id"]: Item.from_dict(row) for row in read_jsonl(store.path("items.jsonl"))}
    return ctx.items
