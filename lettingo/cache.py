"""A persistent LLM-call cache (SQLite) shared by all runs.

Keys are digests of what determines an output: backend, model, adapter digest, messages, sampling
parameters, seed and sample index. Never an API key or anything else in the environment: the
backend's ``identity()`` is the only thing taken from it, and it carries no secrets.
Failures (``usage["error"]``, NaN label scores) are never stored, so a rerun asks again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from lettingo.ledger import Ledger
from lettingo.llm import LLM, Generation, Messages, SamplingParams, failed


def default_cache_path() -> Path:
    root = os.environ.get("LETTINGO_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lettingo"
    )
    return Path(root) / "llm-calls.sqlite"


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class CallCache:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._db.commit()

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, value in self._db.execute(
                    f"SELECT key, value FROM calls WHERE key IN ({marks})", chunk
                ):
                    found[key] = json.loads(value)
        return found

    def put_many(self, items: dict[str, Any]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO calls (key, value) VALUES (?, ?)",
                [(k, json.dumps(v, ensure_ascii=False)) for k, v in items.items()],
            )
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachedLLM:
    """Wraps any backend: answers from the cache what it can, asks the backend for the rest."""

    def __init__(self, backend: LLM, cache: CallCache | None, ledger: Ledger | None = None):
        self.backend = backend
        self.cache = cache
        # usage of every call, shared by every wrapper of a run (ledger.jsonl when it has a run dir)
        self.ledger = ledger if ledger is not None else Ledger()

    @property
    def stats(self) -> dict[str, int]:
        """Prompts answered by a backend (``calls``) and from the cache (``cache_hits``)."""
        return self.ledger.stats

    def identity(self) -> dict[str, Any]:
        return self.backend.identity()

    def _key(self, kind: str, payload: dict[str, Any]) -> str:
        return digest({"kind": kind, "engine": self.backend.identity(), **payload})

    def generate(
        self, prompts: list[Messages], params: SamplingParams, seeds: list[int]
    ) -> list[list[Generation]]:
        # One key per (prompt, sample index); a prompt is a hit only when all n samples are there.
        keys = [
            [self._key("generate", {"messages": m, "params": params.to_dict(), "seed": s, "sample": i})
             for i in range(params.n)]
            for m, s in zip(prompts, seeds)
        ]
        hits = self.cache.get_many([k for ks in keys for k in ks]) if self.cache else {}
        results: list[list[Generation] | None] = [None] * len(prompts)
        missing = []
        for idx, ks in enumerate(keys):
            if all(k in hits for k in ks):
                results[idx] = [
                    Generation(hits[k]["text"], {**hits[k]["usage"], "cached": True}) for k in ks
                ]
            else:
                missing.append(idx)
        fresh: list[list[Generation]] = []
        if missing:
            fresh = self.backend.generate([prompts[i] for i in missing], params, [seeds[i] for i in missing])
            to_store = {}
            for idx, gens in zip(missing, fresh):
                results[idx] = gens
                if any(failed(g) for g in gens):
                    continue  # a failed request is asked again next time
                for k, g in zip(keys[idx], gens):
                    to_store[k] = {"text": g.text, "usage": g.usage}
            if self.cache:
                self.cache.put_many(to_store)
        self.ledger.record_generate(self.identity(), fresh, cache_hits=len(prompts) - len(missing))
        return results  # type: ignore[return-value]

    def label_logprobs(self, prompts: list[Messages], labels: list[str]) -> list[dict[str, float]]:
        keys = [self._key("label_logprobs", {"messages": m, "labels": list(labels)}) for m in prompts]
        hits = self.cache.get_many(keys) if self.cache else {}
        missing = [i for i, k in enumerate(keys) if k not in hits]
        results: list[dict[str, float] | None] = [hits.get(k) for k in keys]
        fresh: list[dict[str, float]] = []
        if missing:
            fresh = self.backend.label_logprobs([prompts[i] for i in missing], labels)
            for i, value in zip(missing, fresh):
                results[i] = value
            if self.cache:
                answered = [i for i in missing if not any(math.isnan(v) for v in results[i].values())]
                self.cache.put_many({keys[i]: results[i] for i in answered})
        usage = self.backend.take_usage() if hasattr(self.backend, "take_usage") else None
        self.ledger.record_scores(self.identity(), fresh, len(prompts) - len(missing), usage)
        return results  # type: ignore[return-value]

    def with_adapter(self, adapter_path: str | None) -> "CachedLLM":
        return CachedLLM(self.backend.with_adapter(adapter_path), self.cache, self.ledger)

    def close(self) -> None:
        self.backend.close()
