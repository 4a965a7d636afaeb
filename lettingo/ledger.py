"""The usage and cost ledger: every batch of LLM calls, by stage, generator and model.

Each :class:`CachedLLM` call appends one row to ``ledger.jsonl`` in the run directory (fsynced,
so a killed run keeps what it paid for); the manifest and the report sum the rows by stage and by
model. Cache hits are their own column: a rerun answered from the cache shows requests 0, hits N,
cost 0. Rows hold counts and a model label only, never a prompt or a key.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from lettingo.llm import Generation, failed

LEDGER_FILE = "ledger.jsonl"
COUNTS = ("requests", "cache_hits", "failures", "prompt_tokens", "completion_tokens", "latency_s", "cost_usd")


def model_label(identity: dict[str, Any]) -> str:
    """``backend:model``, with ``+adapter`` when answering through one."""
    label = f"{identity.get('backend', '?')}:{identity.get('model', '?')}"
    return label + ("+adapter" if identity.get("adapter") else "")


class Ledger:
    def __init__(self, run_dir: str | Path | None = None):
        self.path = Path(run_dir) / LEDGER_FILE if run_dir else None
        if self.path is not None and self.path.exists():
            from lettingo.store import read_jsonl

            read_jsonl(self.path)  # cuts off a row a kill left half-written, so appends stay valid
        self.stage: str | None = None
        self.generator: str | None = None
        self.rows: list[dict[str, Any]] = []
        self.stats = {"calls": 0, "cache_hits": 0}  # prompts answered by a backend vs from the cache
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def labelled(self, generator: str) -> Iterator[None]:
        """Rows recorded in the block carry this generator name (explore with several LLMs)."""
        previous, self.generator = self.generator, generator
        try:
            yield
        finally:
            self.generator = previous

    def record_generate(self, identity: dict[str, Any], fresh: list[list[Generation]], cache_hits: int) -> None:
        # A prompt's n samples share one prompt: count its tokens once, as providers bill them.
        usage = {
            "requests": len(fresh),
            "cache_hits": cache_hits,
            "failures": sum(any(failed(g) for g in gens) for gens in fresh),
            "prompt_tokens": sum(gens[0].usage.get("prompt_tokens", 0) for gens in fresh if gens),
            "completion_tokens": sum(g.usage.get("completion_tokens", 0) for gens in fresh for g in gens),
            "latency_s": sum(g.usage.get("latency_s", 0.0) for gens in fresh for g in gens),
            "cost_usd": sum(g.usage.get("cost_usd", 0.0) for gens in fresh for g in gens),
        }
        self._record("generate", identity, usage)

    def record_scores(self, identity: dict[str, Any], fresh: list[dict[str, float]], cache_hits: int,
                      usage: dict[str, float] | None) -> None:
        counts = {
            "requests": len(fresh),
            "cache_hits": cache_hits,
            "failures": sum(any(math.isnan(v) for v in scores.values()) for scores in fresh),
            **(usage or {}),
        }
        self._record("label_logprobs", identity, counts)

    def _record(self, kind: str, identity: dict[str, Any], counts: dict[str, Any]) -> None:
        row = {"stage": self.stage, "generator": self.generator, "model": model_label(identity), "kind": kind,
               **{key: counts.get(key, 0) for key in COUNTS}, "time": round(time.time(), 3)}
        with self._lock:
            self.stats["calls"] += row["requests"]
            self.stats["cache_hits"] += row["cache_hits"]
            self.rows.append(row)
            if self.path is not None:
                with open(self.path, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())


def summarize(rows: list[dict[str, Any]], by: tuple[str, ...] = ("stage", "model")) -> list[dict[str, Any]]:
    """Rows summed by ``by`` (a pandas group-by), in first-seen order."""
    if not rows:
        return []
    import pandas as pd

    frame = pd.DataFrame(rows)
    for key in by:
        frame[key] = frame[key].fillna("-")
    table = frame.groupby(list(by), sort=False)[list(COUNTS)].sum().reset_index()
    table["latency_s"] = table["latency_s"].round(2)
    table["cost_usd"] = table["cost_usd"].round(6)
    return table.to_dict("records")


def read_ledger(run_dir: str | Path) -> list[dict[str, Any]]:
    from lettingo.store import read_jsonl

    path = Path(run_dir) / LEDGER_FILE
    return read_jsonl(path) if path.exists() else []
