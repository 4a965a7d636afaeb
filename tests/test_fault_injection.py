"""Fault injection on whole runs: kill -9 inside explore, evaluate and align, a torn write, a full
disk, and two jobs on one shard. After each fault the run is finished with `lettingo resume` (or
`api.run`), and every stage file, the preference pairs and the results must equal those of one
uninterrupted run with no unit lost or written twice.

The kill points are drawn from a seeded generator: ``LETTINGO_FAULT_SEED=<n>`` draws others (the
chosen points are printed and named in every assertion message).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lettingo import api, plugins
from lettingo.errors import DiskFullError, RunLockedError
from lettingo.ledger import Ledger
from lettingo.pipeline.stages import clear_from
from lettingo.store import JsonlAppender, RunStore, read_jsonl
from lettingo.testing import comparable_rows, tiny_overrides

SEED = int(os.environ.get("LETTINGO_FAULT_SEED", "0"))
TRAIN, TEST, NUM_PROFILES = 8, 6, 2  # NUM_PROFILES: tiny_overrides' explore.num_profiles

# One user per generate call (explore: 2 samples of one user; test: 1), so a user's profiles don't
# depend on who shares its batch; judgements in batches of 4, so evaluate appends several times;
# a DPO checkpoint after every step, so a training killed after the first resumes from it; DPO
# batches of 2, so the pairs left after the held-out users' (align.heldout_users) take several steps.
DETERMINISTIC = ["explore.sequences_per_call=2", "test.sequences_per_call=1", "evaluate.batch_size=4",
                 "aligner.save_steps=1", "aligner.batch_size=2"]

KEYS = {  # every per-unit stage file, and what makes a row unique in it
    "tasks.jsonl": lambda r: r["task_id"],
    "profiles.jsonl": lambda r: f"{r['task_id']}/{r['generator']}/{r['prompt_style']}/{r['sample']}",
    "judgements.jsonl": lambda r: r["profile_id"],
    "test_profiles.jsonl": lambda r: f"{r['task_id']}/{r['generator']}/{r['prompt_style']}/{r['sample']}",
    "test_judgements.jsonl": lambda r: r["profile_id"],
}


def overrides(tiny_model: str, cache: Path) -> list[str]:
    return tiny_overrides(tiny_model, train=TRAIN, test=TEST) + DETERMINISTIC + [f"cache.path={cache}"]


def assert_same_as_reference(run_dir: Path, reference_dir: Path, context: str = "") -> None:
    for name, key in KEYS.items():
        rows = comparable_rows(run_dir / name)
        keys = [key(r) for r in rows]
        assert len(keys) == len(set(keys)), f"{name}: duplicated rows {sorted(k for k in keys if keys.count(k) > 1)} {context}"
        assert rows == comparable_rows(reference_dir / name), f"{name} differs from the uninterrupted run {context}"
    assert read_jsonl(run_dir / "pairs.jsonl") == read_jsonl(reference_dir / "pairs.jsonl"), f"pairs.jsonl {context}"
    results = json.loads((run_dir / "results.json").read_text())
    reference = json.loads((reference_dir / "results.json").read_text())
    assert results["methods"] == reference["methods"], f"results.json methods {context}"
    assert all(s["status"] == "done" for s in RunStore(run_dir).manifest()["stages"].values())


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_model):
    """The uninterrupted run, in this process, with its own LLM-call cache."""
    plugins.load_entrypoints(only=["transformers", "trl"])
    run_dir = tmp_path_factory.mktemp("reference")
    cache = tmp_path_factory.mktemp("reference-cache") / "calls.sqlite"
    api.run(api.compose(overrides(tiny_model, cache)), run_dir)
    return run_dir


# -- subprocesses ----------------------------------------------------------------------------------

def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "lettingo.cli", *args]


def child_env() -> dict[str, str]:
    return {**os.environ, "LETTINGO_LOAD_PLUGINS": "transformers,trl"}


def stage_status(run_dir: Path, stage: str) -> str | None:
    try:  # the manifest is replaced atomically: it is absent or whole
        manifest = json.loads((run_dir / "manifest.json").read_text())
    except FileNotFoundError:
        return None
    return manifest.get("stages", {}).get(stage, {}).get("status")


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else -1


def run_and_kill(command: list[str], cwd: Path, log: Path, ready, what: str, timeout: float = 300) -> None:
    """Start ``command``; SIGKILL it as soon as ``ready()`` holds (polled every few ms)."""
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=cwd, env=child_env(), stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if ready():
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        if proc.poll() is None and time.monotonic() >= deadline:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, (
        f"{what}: the process ended with {proc.returncode} before it could be killed:\n{log.read_text()[-3000:]}")


def after(delay: float, condition):
    """A condition that holds ``delay`` seconds after ``condition`` first held."""
    since = []

    def ready():
        if not since and condition():
            since.append(time.monotonic())
        return bool(since) and time.monotonic() - since[0] >= delay
    return ready


def kill_points(seed: int) -> dict:
    rng = random.Random(seed)
    return {
        # kill once this many users' profiles are written (of TRAIN; the next one is in flight)
        "explore_users": rng.randint(1, TRAIN - 1),
        # ... once this many batches of 4 judgements are written (0: while judging the first); not
        # the last batch: judging 4 profiles takes a few milliseconds, too few to kill it reliably
        "evaluate_batches": rng.randint(0, TRAIN * NUM_PROFILES // 4 - 2),
        # align: this long after the first DPO checkpoint is complete (the second step takes ~1.5 s)
        "align_delay_s": round(rng.uniform(0.0, 0.8), 3),
    }


# -- 1. kill -9 ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_kill_9_in_explore_evaluate_and_align_then_resume_equals_the_uninterrupted_run(reference, tiny_model,
                                                                                        tmp_path, caplog):
    points = kill_points(SEED)
    context = f"(LETTINGO_FAULT_SEED={SEED}: kill points {points})"
    print("kill points:", context)
    run_dir = tmp_path / "run"
    # its own, cold call cache: the resumed run must generate what the kills lost, not read it back
    run = cli("run", *overrides(tiny_model, tmp_path / "calls.sqlite"), f"run_dir={run_dir}",
              f"hydra.run.dir={tmp_path / 'hydra'}")
    resume = cli("resume", str(run_dir))

    profiles = run_dir / "profiles.jsonl"
    run_and_kill(run, tmp_path, tmp_path / "1-explore.log", lambda: (
        stage_status(run_dir, "explore") == "running"
        and lines(profiles) >= NUM_PROFILES * points["explore_users"]), f"explore {context}")
    assert stage_status(run_dir, "explore") == "running"
    partial = read_jsonl(profiles)
    assert NUM_PROFILES * points["explore_users"] <= len(partial) < NUM_PROFILES * TRAIN, context

    judgements = run_dir / "judgements.jsonl"
    run_and_kill(resume, tmp_path, tmp_path / "2-evaluate.log", lambda: (
        stage_status(run_dir, "evaluate") == "running"
        and lines(judgements) >= 4 * points["evaluate_batches"]), f"evaluate {context}")
    assert stage_status(run_dir, "explore") == "done" and stage_status(run_dir, "evaluate") == "running"
    assert len(read_jsonl(judgements)) < NUM_PROFILES * TRAIN, context

    checkpoint = run_dir / "aligned" / "checkpoints" / "checkpoint-1"
    run_and_kill(resume, tmp_path, tmp_path / "3-align.log", after(points["align_delay_s"], lambda: (
        stage_status(run_dir, "align") == "running" and (checkpoint / "trainer_state.json").exists())),
        f"align {context}")
    assert stage_status(run_dir, "align") == "running" and not (run_dir / "aligned" / "DONE.json").exists()
    assert list((run_dir / "aligned" / "checkpoints").glob("checkpoint-*")), "no checkpoint to resume from"

    with caplog.at_level(logging.INFO, logger="lettingo_trl.aligner"):
        api.run(api.load_config(run_dir), run_dir)  # what `lettingo resume` does, in this process
    assert "resuming DPO training from" in caplog.text and "another training" not in caplog.text, caplog.text
    assert_same_as_reference(run_dir, reference, context)


# -- 2. a torn write -------------------------------------------------------------------------------

REAL_APPEND = JsonlAppender.append
LEDGER_RECORD = Ledger._record


class Killed(BaseException):
    """A kill: no ``except Exception`` in the pipeline stops it, no stage is marked failed."""


def break_append(monkeypatch, successful_appends: int, stage_file: str, error: BaseException) -> list[int]:
    """``JsonlAppender.append`` to ``stage_file`` works ``successful_appends`` times; the next call
    writes its first row whole and half of its second (a write cut short), then raises ``error``."""
    calls = []

    def append(self, rows):
        rows = list(rows)
        if self.path.name != stage_file or not rows:
            return REAL_APPEND(self, rows)
        calls.append(len(rows))
        if len(calls) <= successful_appends:
            return REAL_APPEND(self, rows)
        first, *rest = [json.dumps(r, ensure_ascii=False) + "\n" for r in rows]
        self._fh.write(first + (rest[0][: len(rest[0]) // 2] if rest else ""))
        self._fh.flush()
        raise error

    monkeypatch.setattr(JsonlAppender, "append", append)
    return calls


@pytest.mark.slow
def test_a_torn_last_line_is_dropped_and_its_unit_redone(reference, tiny_model, tmp_path, monkeypatch, capfd):
    """Explore is killed in the middle of writing a user's two samples: the first is whole, the
    second cut short. The resumed run drops the torn line, says so, writes that user's second
    sample again (generated anew: a fresh call cache) and goes on; nothing is lost or doubled."""
    plugins.load_entrypoints(only=["transformers", "trl"])
    run_dir, profiles = tmp_path / "run", tmp_path / "run" / "profiles.jsonl"
    users = random.Random(SEED + 1).randint(1, TRAIN - 1)
    break_append(monkeypatch, users, "profiles.jsonl", Killed())
    with pytest.raises(Killed):
        api.run(api.compose(overrides(tiny_model, tmp_path / "calls.sqlite")), run_dir, stages=["prepare", "explore"])
    monkeypatch.setattr(JsonlAppender, "append", REAL_APPEND)
    assert stage_status(run_dir, "explore") == "running"
    data = profiles.read_bytes()
    assert data.count(b"\n") == NUM_PROFILES * users + 1 and not data.endswith(b"\n")  # one whole, one torn
    capfd.readouterr()

    api.run(api.compose(overrides(tiny_model, tmp_path / "calls-again.sqlite")), run_dir, stages=["prepare", "explore"])

    err = capfd.readouterr().err
    line = NUM_PROFILES * users + 2
    assert f"{profiles}: line {line} was cut short by an interrupted write; dropped it, that unit will be redone" in err
    assert err.count("cut short") == 1  # dropped on the first read; the file is repaired
    rows = read_jsonl(profiles)
    assert rows[: line - 1] == [json.loads(x) for x in data.splitlines()[: line - 1]]  # kept as they were
    assert len({KEYS["profiles.jsonl"](r) for r in rows}) == len(rows) == NUM_PROFILES * TRAIN
    assert comparable_rows(profiles) == comparable_rows(reference / "profiles.jsonl"), f"torn after {users} users"


@pytest.mark.slow
def test_a_kill_while_the_ledger_is_written_then_resume_completes(reference, tiny_model, tmp_path, monkeypatch):
    """The kill lands in the test stage, while the usage ledger's row for the first call is being
    written (after the call, before its profiles): ledger.jsonl ends in half a row. (Found here: the
    ledger appended to it without cutting the torn row off, so the resumed run's first row was glued to
    it, the bad line was no longer the last, and the report's read_ledger failed on every resume.)"""
    from lettingo.ledger import read_ledger

    plugins.load_entrypoints(only=["transformers", "trl"])
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)  # everything up to the trained adapter, from the reference
    clear_from(RunStore(run_dir), "test")
    rows_before = len(read_ledger(run_dir))
    cfg = api.compose(overrides(tiny_model, tmp_path / "calls.sqlite"))

    def killed_while_writing(self, kind, identity, counts):
        with open(self.path, "a") as fh:
            fh.write('{"stage": "test", "generator": "base", "model": "transf')
        raise Killed

    monkeypatch.setattr(Ledger, "_record", killed_while_writing)
    with pytest.raises(Killed):
        api.run(cfg, run_dir)
    monkeypatch.setattr(Ledger, "_record", LEDGER_RECORD)

    # a fresh call cache: the call made before the kill is made again, not read back
    api.run(api.compose(overrides(tiny_model, tmp_path / "calls-again.sqlite")), run_dir)
    assert len(read_ledger(run_dir)) > rows_before  # the torn row dropped, the resumed run's calls recorded
    assert_same_as_reference(run_dir, reference)


# -- 3. a full disk --------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_full_disk_stops_with_a_clear_error_and_a_rerun_completes(reference, tiny_model, tmp_path, monkeypatch,
                                                                    capfd):
    plugins.load_entrypoints(only=["transformers", "trl"])
    run_dir = tmp_path / "run"
    cfg = api.compose(overrides(tiny_model, tmp_path / "calls.sqlite"))
    calls = break_append(monkeypatch, 3, "profiles.jsonl", OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(DiskFullError) as err:
        api.run(cfg, run_dir)
    message = str(err.value)
    assert str(run_dir) in message and f"`lettingo resume {run_dir}`" in message and "'explore' stage" in message
    assert "No space left on device" in message and err.value.__cause__ is None
    assert len(calls) == 4 and stage_status(run_dir, "explore") == "running"
    capfd.readouterr()
    # the three users written before, and the fourth's first sample, are kept and readable; the
    # half-written line after them (the disk filled up in the middle of it) is dropped
    written = comparable_rows(run_dir / "profiles.jsonl")
    assert "was cut short by an interrupted write" in capfd.readouterr().err
    assert len(written) == 3 * NUM_PROFILES + 1
    assert written == comparable_rows(reference / "profiles.jsonl")[: len(written)]

    monkeypatch.setattr(JsonlAppender, "append", REAL_APPEND)  # space freed
    # a fresh call cache, so what the full disk lost is generated again
    api.run(api.compose(overrides(tiny_model, tmp_path / "calls-again.sqlite")), run_dir)
    assert_same_as_reference(run_dir, reference)


@pytest.mark.slow
def test_a_full_disk_while_dpo_writes_a_checkpoint_then_resume_completes(reference, tiny_model, tmp_path,
                                                                         monkeypatch):
    """The disk fills up while the Trainer writes its first checkpoint: after the model, optimizer and
    RNG state, before trainer_state.json. The DiskFullError says to free space and resume; resuming
    must then finish the run (from the last whole checkpoint, or from the start). (Found here:
    lettingo-trl resumed from the newest checkpoint-N directory, whole or not, and every resume failed
    with FileNotFoundError for its trainer_state.json.)"""
    from transformers.trainer_callback import TrainerState

    plugins.load_entrypoints(only=["transformers", "trl"])
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)  # the reference's data, profiles, judgements and pairs
    clear_from(RunStore(run_dir), "align")
    cfg = api.compose(overrides(tiny_model, tmp_path / "calls.sqlite"))

    def save_to_json(self, json_path):
        raise OSError(errno.ENOSPC, "No space left on device", json_path)

    real_save_to_json = TrainerState.save_to_json
    monkeypatch.setattr(TrainerState, "save_to_json", save_to_json)
    with pytest.raises(DiskFullError, match=rf"during the 'align' stage.*`lettingo resume {re.escape(str(run_dir))}`"):
        api.run(cfg, run_dir)
    checkpoint = run_dir / "aligned" / "checkpoints" / "checkpoint-1"
    assert (checkpoint / "adapter_model.safetensors").exists() and not (checkpoint / "trainer_state.json").exists()
    monkeypatch.setattr(TrainerState, "save_to_json", real_save_to_json)  # space freed

    api.run(cfg, run_dir)
    assert_same_as_reference(run_dir, reference)


@pytest.mark.slow
def test_a_full_disk_while_the_manifest_records_a_finished_stage_is_a_disk_full_error(tiny_model, tmp_path,
                                                                                     monkeypatch):
    """The disk fills up outside a stage's run(), while the manifest records the stage as done: still
    a DiskFullError (the CLI's one line, no traceback), and a rerun finds every unit in place. (Found
    here: only OSErrors inside run() were converted.)"""
    from lettingo import store as store_module

    plugins.load_entrypoints(only=["transformers", "trl"])
    run_dir = tmp_path / "run"
    cfg = api.compose(tiny_overrides(tiny_model, train=2, test=2) + [f"cache.path={tmp_path / 'calls.sqlite'}"])
    real_write_atomic = store_module.write_atomic

    def write_atomic(path, text):
        if path.name == "manifest.json" and json.loads(text).get("stages", {}).get("explore", {}).get("status") == "done":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_atomic(path, text)

    monkeypatch.setattr(store_module, "write_atomic", write_atomic)
    with pytest.raises(DiskFullError, match=re.escape(f"`lettingo resume {run_dir}`")):
        api.run(cfg, run_dir, stages=["prepare", "explore"])
    monkeypatch.setattr(store_module, "write_atomic", real_write_atomic)
    assert len(read_jsonl(run_dir / "profiles.jsonl")) == 2 * NUM_PROFILES  # every unit was written
    api.run(cfg, run_dir, stages=["prepare", "explore"])
    assert stage_status(run_dir, "explore") == "done"


DISK_FULL_CLI = """
import errno, sys
from lettingo import cli
from lettingo.store import JsonlAppender
real_append, calls = JsonlAppender.append, []
def append(self, rows):
    rows = list(rows)
    if self.path.name == "profiles.jsonl" and rows:
        calls.append(1)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
    return real_append(self, rows)
JsonlAppender.append = append
cli.main(sys.argv[1:])
"""


@pytest.mark.slow
def test_a_full_disk_through_the_cli_prints_one_error_line(tiny_model, tmp_path):
    run_dir = tmp_path / "run"
    overrides_ = tiny_overrides(tiny_model, train=4, test=2) + [f"cache.path={tmp_path / 'calls.sqlite'}"]
    result = subprocess.run(
        [sys.executable, "-c", DISK_FULL_CLI, "run", *overrides_, f"run_dir={run_dir}",
         f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("lettingo: error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert f"the disk holding {run_dir} is full" in errors[0] and f"`lettingo resume {run_dir}`" in errors[0]
    assert len(read_jsonl(run_dir / "profiles.jsonl")) == NUM_PROFILES  # the first user's, kept


# -- 4. two jobs on one shard ----------------------------------------------------------------------

def test_a_second_job_on_the_same_shard_is_refused_while_another_shard_runs(tiny_model, tmp_path):
    """While shard 0 of 2 runs (its lock held), a second job for shard 0 is refused before any work,
    and shard 1 runs next to it."""
    plugins.load_entrypoints(only=["transformers", "trl"])
    base = tiny_overrides(tiny_model, train=4, test=2) + [f"cache.path={tmp_path / 'calls.sqlite'}",
                                                          "shard.count=2"]
    run_dir = tmp_path / "run"
    running = RunStore(run_dir)
    running.lock(".lock.shard-0-of-2")  # what a running `shard.index=0` job holds
    try:
        with pytest.raises(RunLockedError, match=re.escape(f"another lettingo process is working in {run_dir} on this shard")):
            api.run(api.compose(base + ["shard.index=0"]), run_dir)
        assert not (run_dir / "manifest.json").exists()  # refused before any work
        done = api.run(api.compose(base + ["shard.index=1"]), run_dir, stages=["prepare", "explore"])
        assert done == {"shard": "shard-1-of-2", "done": ["explore"], "stopped_before": None}
        assert stage_status(run_dir, "explore@shard-1-of-2") == "done"
        with pytest.raises(RunLockedError, match="on this shard"):  # still refused after shard 1 ran
            api.run(api.compose(base + ["shard.index=0"]), run_dir, stages=["prepare", "explore"])
    finally:
        running.unlock()
    assert stage_status(run_dir, "explore@shard-0-of-2") is None  # the refused job wrote nothing
