"""Soak: the quickstart's shape three times in one process (a notebook's life) leaks nothing.

Each run has its own run directory and seed (other users, so the LLM calls are not all cache hits)
and goes through every stage on the tiny model: engines loaded and released, DPO trained, the call
cache and run lock opened and closed. After each run we measure the process: resident memory, open
file descriptors, threads, child processes, and the torch tensors and modules still alive.

Tolerances, run 3 against run 1 (run 1 may warm up: imports, the report's embedding model, which
is cached for the process on purpose, allocator arenas):

- file descriptors, threads and child processes: at most run 1's + 2 (an unclosed appender, sqlite
  connection, lock file or thread pool adds one per run; +2 leaves room for a lazily started
  library helper thread, never for one per run);
- live torch tensors and ``nn.Module`` objects: exactly run 1's (a model, adapter or optimizer kept
  alive by a reference is caught here, whatever its size: the tiny model is only ~13 MB);
- resident memory after ``gc.collect()`` and glibc's ``malloc_trim(0)`` (which hands freed heap back
  to the OS, so RSS counts live memory rather than the allocator's high-water mark): grows by under
  100 MB. Measured on a 2-core CPU: ~+20 MB a run over the first runs, flattening (+2 MB from run 3
  to 4), from allocator fragmentation (no Python objects, tensors or modules accumulate); 100 MB is
  ~2x that, and well below what one leaked run's engines and trainer would hold.
"""

from __future__ import annotations

import ctypes
import gc
import threading
import warnings

import pytest

from lettingo import api, plugins
from lettingo.testing import require_module, tiny_overrides

RUNS = 3


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: RSS is measured as it is
        pass


def measure(process) -> dict:
    import torch

    gc.collect()
    rss_raw = process.memory_info().rss
    _malloc_trim()
    tensors = modules = tensor_bytes = 0
    with warnings.catch_warnings():  # isinstance on deprecated module proxies warns
        warnings.simplefilter("ignore")
        for obj in gc.get_objects():
            try:
                if isinstance(obj, torch.Tensor):
                    tensors += 1
                    tensor_bytes += obj.element_size() * obj.nelement()
                elif isinstance(obj, torch.nn.Module):
                    modules += 1
            except Exception:  # objects whose isinstance or size probing raises (lazy proxies)
                continue
    return {
        "rss_mb": round(process.memory_info().rss / 2**20, 1),
        "rss_untrimmed_mb": round(rss_raw / 2**20, 1),
        "fds": process.num_fds(),
        "threads": process.num_threads(),
        "python_threads": sorted(t.name for t in threading.enumerate()),
        "children": len(process.children(recursive=True)),
        "open_files": sorted(f.path for f in process.open_files()),
        "tensors": tensors,
        "tensor_mb": round(tensor_bytes / 2**20, 1),
        "modules": modules,
    }


@pytest.mark.slow
def test_three_runs_in_one_process_leak_nothing(tiny_model, tmp_path):
    psutil = require_module("psutil", "the soak test measures the process with it (make install)")
    plugins.load_entrypoints(only=["transformers", "trl"])
    process = psutil.Process()
    samples = []
    for seed in range(RUNS):
        cfg = api.compose(tiny_overrides(tiny_model, train=6, test=6) + [f"seed={seed}"])
        results = api.run(cfg, tmp_path / f"run-{seed}")
        assert results["methods"], f"run {seed + 1} reported no method"
        samples.append(measure(process))
    table = "\n".join(f"  run {k + 1}: {s}" for k, s in enumerate(samples))
    print(f"\nsoak measurements:\n{table}")
    first, last = samples[0], samples[-1]
    why = f"run {RUNS} against run 1 (all runs below):\n{table}"
    assert last["fds"] <= first["fds"] + 2, f"file descriptors leak: {why}"
    assert last["open_files"] == first["open_files"], f"files left open: {why}"
    assert last["threads"] <= first["threads"] + 2, f"threads leak: {why}"
    assert last["children"] <= first["children"], f"child processes left running: {why}"
    assert (last["tensors"], last["modules"]) == (first["tensors"], first["modules"]), \
        f"torch tensors or modules stay alive after a run: {why}"
    assert last["rss_mb"] - first["rss_mb"] < 100, f"resident memory grows: {why}"
