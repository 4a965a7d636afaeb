"""Per-user stages split by user across processes or machines, and merged back.

``shard.count=n shard.index=i`` makes ``explore``, ``evaluate`` and ``test`` handle only the users
whose task id hashes to shard ``i`` (sha256 of the task id modulo ``n``: the same in every
process, whoever else is in the run), writing ``<file>.shard-i-of-n.jsonl`` beside the other
stage files in one shared run directory. A sharded job runs ``prepare`` (once, whichever job
comes first), then its share of every per-user stage it can reach, and stops before the first
stage that needs every user (``pair``, ``align``, ``report``). An unsharded run in the same
directory (or ``lettingo merge <run dir>``) merges the shard files once every shard is done, in
the order an unsharded run writes, and goes on.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from lettingo.errors import LettingoError
from lettingo.store import RunStore, read_jsonl, write_atomic

if TYPE_CHECKING:
    from lettingo.pipeline.stages import Stage
_SHARD_FILE = re.compile(r"^(?P<stem>.+)\.shard-(?P<index>\d+)-of-(?P<count>\d+)\.jsonl$")


class ShardError(LettingoError, ValueError):
    """Shards that cannot be run or merged as asked; the message says which and what to do."""


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    @classmethod
    def of(cls, cfg) -> "Shard":
        node = cfg.get("shard") or {}
        index, count = int(node.get("index", 0)), int(node.get("count", 1))
        if count < 1 or not 0 <= index < count:
            raise ShardError(f"shard.index must be in 0..shard.count-1 and shard.count >= 1, got index={index}, "
                             f"count={count}")
        return cls(index, count)

    @property
    def sharded(self) -> bool:
        return self.count > 1

    @property
    def label(self) -> str:
        return f"shard-{self.index}-of-{self.count}"

    def owns(self, task_id: str) -> bool:
        return shard_of(task_id, self.count) == self.index

    def file(self, name: str) -> str:
        """``profiles.jsonl`` -> ``profiles.shard-1-of-3.jsonl`` (unchanged when unsharded)."""
        if not self.sharded:
            return name
        return f"{name[: -len('.jsonl')]}.{self.label}.jsonl"

    def stage_key(self, stage: str) -> str:
        """The manifest entry of this shard's part of ``stage``."""
        return f"{stage}@{self.label}" if self.sharded else stage


def shard_of(task_id: str, count: int) -> int:
    return int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:8], "big") % count


def recorded_shards(store: RunStore, stage: str) -> dict[int, dict[int, str]]:
    """``{count: {index: status}}`` of the shard entries of ``stage`` in the manifest."""
    found: dict[int, dict[int, str]] = {}
    for key, entry in store.manifest().get("stages", {}).items():
        match = re.fullmatch(rf"{stage}@shard-(\d+)-of-(\d+)", key)
        if match:
            found.setdefault(int(match.group(2)), {})[int(match.group(1))] = entry.get("status", "")
    return found


def merge_stage(store: RunStore, stage: "Stage", task_order: list[str]) -> dict[str, int] | None:
    """Merge the shard files of a per-user ``stage`` into its stage files when every shard is done.

    Returns rows per file, or None when the stage has no shards. Rows come out in the order an
    unsharded run writes them: by group (generator and prompt, or "no profile"), in the order the
    groups first appear, then by task in ``task_order``, then by sample.
    """
    shards = recorded_shards(store, stage.name)
    if not shards:
        return None
    if len(shards) > 1:
        raise ShardError(f"{store.dir}: '{stage.name}' was run with different shard counts {sorted(shards)}; "
                         "use one shard.count per run directory")
    count, statuses = next(iter(shards.items()))
    missing = [i for i in range(count) if statuses.get(i) != "done"]
    if missing:
        raise ShardError(
            f"{store.dir}: '{stage.name}' is split into {count} shards and shard(s) {missing} are not done; run "
            f"`lettingo run ... shard.count={count} shard.index=<i> run_dir={store.dir}` for them first"
        )
    position = {task_id: k for k, task_id in enumerate(task_order)}
    merged = {}
    for name in stage.row_files:
        rows, groups = [], {}
        for index in range(count):
            for row in read_jsonl(store.path(Shard(index, count).file(name))):
                # profiles: task/generator/style/sample; judgements: the same, or task/none
                task_id, *group, last = (row.get("profile_id") or "/".join(
                    str(row[k]) for k in ("task_id", "generator", "prompt_style", "sample"))).split("/")
                sample = int(last) if last.isdigit() else 0
                if not last.isdigit():
                    group.append(last)
                rank = groups.setdefault(tuple(group), len(groups))
                rows.append(((rank, position.get(task_id, len(position)), sample), row))
        rows.sort(key=lambda item: item[0])
        write_atomic(store.path(name), "".join(json.dumps(row, ensure_ascii=False) + "\n" for _, row in rows))
        merged[name] = len(rows)
    return merged
