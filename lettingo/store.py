"""The run directory: append-only JSONL per stage, the manifest, and resume.

Every stage appends one JSON line per finished unit and flushes it to disk, so a kill at any moment
loses at most the unit in flight. Reading repairs a torn last line (a write cut short by a kill) by
dropping it, and rows are keyed, so a unit redone after a restart never appears twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from lettingo.errors import ConfigChangedError, RunLockedError


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All complete rows; a torn last line is cut off the file (and reported) so appends stay valid."""
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    good_bytes = 0
    with open(path, "rb") as fh:
        data = fh.read()
    for lineno, line in enumerate(data.splitlines(keepends=True), start=1):
        complete = line.endswith(b"\n")
        try:
            row = json.loads(line) if complete else None
        except json.JSONDecodeError:
            row = None
        if row is None:
            if good_bytes + len(line) == len(data):  # the last line: a torn write
                print(f"lettingo: {path}: line {lineno} was cut short by an interrupted write; "
                      "dropped it, that unit will be redone", file=sys.stderr)
                with open(path, "r+b") as fh:
                    fh.truncate(good_bytes)
                break
            raise ValueError(f"{path}: line {lineno} is not valid JSON; the run directory is damaged "
                             "(move the file away to redo that stage)")
        rows.append(row)
        good_bytes += len(line)
    return rows


class JsonlAppender:
    """Appends keyed rows, skipping keys already present; each row is flushed and fsynced."""

    def __init__(self, path: Path, key: Callable[[dict], str]):
        self.path = path
        self.key = key
        self.rows = read_jsonl(path)
        self.keys = {key(r) for r in self.rows}
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "a", encoding="utf-8")

    def __contains__(self, key: str) -> bool:
        return key in self.keys

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        lines = []
        for row in rows:
            k = self.key(row)
            if k in self.keys:
                continue
            self.keys.add(k)
            self.rows.append(row)
            lines.append(json.dumps(row, ensure_ascii=False) + "\n")
        if lines:
            self._fh.write("".join(lines))
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RunStore:
    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_fh = None

    def path(self, name: str) -> Path:
        return self.dir / name

    # -- locking: one process per run directory ------------------------------------------------
    def lock(self, name: str = ".lock") -> None:
        """Refuse a second process on the same run (or, for shards, on the same shard of it)."""
        self._lock_fh = open(self.dir / name, "w")
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            self._lock_fh = None
            raise RunLockedError(f"another lettingo process is working in {self.dir}"
                                 f"{'' if name == '.lock' else ' on this shard'}; "
                                 "wait for it to finish or use another run directory") from None

    @contextlib.contextmanager
    def waiting_lock(self, name: str):
        """A lock that waits (for work that shards of one run must do once, like prepare)."""
        with open(self.dir / name, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def unlock(self) -> None:
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    # -- manifest ---------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    def manifest(self) -> dict[str, Any]:
        if not self.manifest_path.exists():
            return {}
        return json.loads(self.manifest_path.read_text(encoding="utf-8"))

    def update_manifest(self, **fields: Any) -> dict[str, Any]:
        return self.modify_manifest(lambda manifest: manifest.update(fields))

    def modify_manifest(self, change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
        """Read, change and write the manifest under a lock: shards of one run write it concurrently."""
        with self.waiting_lock(".manifest.lock"):
            manifest = self.manifest()
            change(manifest)
            write_json(self.manifest_path, manifest)
            return manifest

    # -- stage bookkeeping ------------------------------------------------------------------------
    def check_stage(self, stage: str, fingerprint: str, inputs: dict[str, Any], restart: bool,
                    redo: Mapping[str, Iterable[str]]) -> None:
        """Refuse (or, when asked, restart) a stage whose recorded inputs differ from these. A restart
        clears ``redo``: ``{stage: its outputs}`` for this stage and every stage after it."""
        stages = self.manifest().get("stages", {})
        recorded = stages.get(stage)
        if recorded is None or recorded["fingerprint"] == fingerprint:
            return
        changed = sorted(k for k in set(inputs) | set(recorded.get("inputs", {}))
                         if inputs.get(k) != recorded.get("inputs", {}).get(k))
        if not restart:
            raise ConfigChangedError(
                f"{self.dir}: the '{stage}' stage was run with different inputs "
                f"(changed: {', '.join(changed) or 'upstream results'}). Use a new run directory, "
                f"or pass resume=restart to redo '{stage}' and the stages after it."
            )
        self.clear(redo)

    def clear(self, outputs: Mapping[str, Iterable[str]]) -> None:
        """Remove ``{stage: output names}``: the files and folders (shards' parts of JSONL files
        included) and the stages' manifest entries (shards' entries included)."""
        import shutil

        cleared = set(outputs)
        for name in (n for names in outputs.values() for n in names):
            targets = [self.dir / name]
            if name.endswith(".jsonl"):  # and the shards' files of a per-user stage
                targets += self.dir.glob(f"{name[: -len('.jsonl')]}.shard-*-of-*.jsonl")
            for target in targets:
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()

        def drop(manifest):
            stages = manifest.setdefault("stages", {})
            for key in list(stages):
                if key.split("@")[0] in cleared:  # a shard's entry is "<stage>@shard-i-of-n"
                    del stages[key]

        self.modify_manifest(drop)

    def mark_stage(self, stage: str, fingerprint: str, inputs: dict[str, Any], status: str,
                   summary: dict[str, Any] | None = None) -> None:
        entry = {"fingerprint": fingerprint, "inputs": inputs, "status": status}
        if summary is not None:
            entry["summary"] = summary
        self.modify_manifest(lambda manifest: manifest.setdefault("stages", {}).__setitem__(stage, entry))

    def stage_done(self, stage: str) -> bool:
        return self.manifest().get("stages", {}).get(stage, {}).get("status") == "done"
