"""Profile writing through lettingo's backends on the same prompts, in one run:

  (a) transformers, one prompt per call (the baseline every ratio is against)
  (b) transformers, batched (16 sequences per generate call)
  (c0) vllm's first pass over the prompts (a fresh engine's warm-up, timed on its own)
  (c) vllm, through lettingo (CachedLLM over VLLMBackend, a cold cache)
  (c') vllm's own LLM.generate on the same token ids (lettingo's overhead = c - c')
  (d) (c) again: every prompt answered from the warm call cache

    .venv/bin/python benchmarks/generation.py [--prompts 64] [--max-new-tokens 64] [--skip a]

Prompts are real LettinGo profile prompts (MovieLens-100K users, see bench_generation.py), one
sample each at temperature 1. ``profiles/s`` and ``tokens/s`` count generated tokens up to each
answer's end. ``peak MB`` is the highest resident memory of this process and its children
(vLLM's engine core runs in one) above what it was before the path started, sampled every 0.1 s;
``cores`` is CPU time over wall time for the same process tree. Engine start-up is reported on its
own line and left out of the path's time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))


class TreeMonitor:
    """Peak RSS above the start and CPU seconds of this process and all its children."""

    def __init__(self):
        import psutil

        self.root = psutil.Process()
        self.peak = self.start_rss = self._rss()
        self.cpu_start = self._cpu()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _tree(self):
        return [self.root, *self.root.children(recursive=True)]

    def _rss(self) -> int:
        total = 0
        for proc in self._tree():
            try:
                total += proc.memory_info().rss
            except Exception:  # noqa: BLE001  (a child that just exited)
                pass
        return total

    def _cpu(self) -> float:
        total = 0.0
        for proc in self._tree():
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except Exception:  # noqa: BLE001
                pass
        return total

    def _sample(self):
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, self._rss())

    def __enter__(self):
        self.started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.seconds = time.perf_counter() - self.started
        self.cores = (self._cpu() - self.cpu_start) / self.seconds
        self.peak_mb = (self.peak - self.start_rss) / 2**20


def count(outputs) -> tuple[int, int]:
    return sum(len(samples) for samples in outputs), sum(
        g.usage.get("completion_tokens", 0) for samples in outputs for g in samples
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--skip", nargs="*", default=[], choices=["a", "b", "c"], help="paths to leave out")
    args = parser.parse_args()

    from bench_generation import profile_prompts

    from lettingo.cache import CachedLLM, CallCache
    from lettingo.llm import SamplingParams
    from lettingo.models import resolve_model

    model = resolve_model(args.model)
    prompts = profile_prompts(args.prompts)
    seeds = [1000 + i for i in range(len(prompts))]
    params = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=args.max_new_tokens, n=1)
    print(f"{len(prompts)} prompts, {args.max_new_tokens} new tokens, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}")
    rows = []

    def record(label, seconds, outputs, monitor, note=""):
        profiles, tokens = count(outputs)
        rows.append((label, seconds, profiles, tokens, monitor.peak_mb, monitor.cores, note))
        print(f"  {label}: {seconds:.1f} s, {tokens / seconds:.1f} tokens/s {note}", flush=True)

    if {"a", "b"} - set(args.skip):
        from lettingo_transformers.backend import TransformersLLM

        llm = TransformersLLM(model=model, device="cpu", dtype="float32")
        llm.generate(prompts[:1], SamplingParams(max_new_tokens=2), seeds[:1])  # warm-up
        for path, batch in (("a", 1), ("b", 16)):
            if path in args.skip:
                continue
            llm.generate_batch_size = batch
            with TreeMonitor() as monitor:
                outputs = llm.generate(prompts, params, seeds)
            label = "(a) transformers, one prompt per call" if batch == 1 else "(b) transformers, batched 16"
            record(label, monitor.seconds, outputs, monitor)
        llm.close()

    if "c" not in args.skip:
        from vllm import SamplingParams as VSamplingParams

        from lettingo_vllm.backend import VLLMBackend

        started = time.perf_counter()
        with TreeMonitor() as startup:
            backend = VLLMBackend(model=model, dtype="float32", enable_lora=False)
        print(f"  vllm engine start-up: {time.perf_counter() - started:.1f} s, +{startup.peak_mb:.0f} MB")
        engine = backend._engine.llm
        token_prompts = [{"prompt_token_ids": backend._encode(p)} for p in prompts]

        def raw_params(offset: int):
            return [VSamplingParams(n=1, temperature=1.0, top_p=1.0, max_tokens=args.max_new_tokens,
                                    seed=s + offset) for s in seeds]

        # A fresh engine's first big batch is much slower (measured: ~80 s against ~33 s for the
        # same work after it, whichever path comes first); every engine pays it once, so it is
        # timed on its own, with other seeds, and kept out of (c) and (c').
        with TreeMonitor() as monitor:
            first = engine.generate(token_prompts, raw_params(10_000), use_tqdm=False)
        rows.append(("(c0) vllm engine's first pass (warm-up)", monitor.seconds, len(first),
                     sum(len(o.outputs[0].token_ids) for o in first), monitor.peak_mb, monitor.cores,
                     "paid once per engine"))
        print(f"  (c0) first pass: {monitor.seconds:.1f} s", flush=True)
        with tempfile.TemporaryDirectory() as cache_dir:
            cached = CachedLLM(backend, CallCache(Path(cache_dir) / "calls.sqlite"))
            with TreeMonitor() as monitor:
                outputs = cached.generate(prompts, params, seeds)
            record("(c) vllm through lettingo", monitor.seconds, outputs, monitor)
            lettingo_seconds = monitor.seconds

            with TreeMonitor() as monitor:
                raw = engine.generate(token_prompts, raw_params(0), use_tqdm=False)
            raw_tokens = sum(len(o.outputs[0].token_ids) for o in raw)
            overhead = (lettingo_seconds - monitor.seconds) / lettingo_seconds
            rows.append(("(c') vllm LLM.generate alone", monitor.seconds, len(raw), raw_tokens, monitor.peak_mb,
                         monitor.cores, f"lettingo overhead {overhead:+.1%} of (c)"))
            print(f"  (c') raw vllm: {monitor.seconds:.1f} s; lettingo overhead {overhead:+.1%}", flush=True)

            with TreeMonitor() as monitor:
                again = cached.generate(prompts, params, seeds)
            assert all(g.usage.get("cached") for samples in again for g in samples)
            record("(d) rerun, warm cache", monitor.seconds, again, monitor, "(all cache hits)")
        backend.close()

    base = rows[0][1] if rows and rows[0][0].startswith("(a)") else None
    print()
    print(f"| path | seconds | profiles/s | tokens/s | vs (a) | peak MB | cores | note |")
    print("|---|---|---|---|---|---|---|---|")
    for label, seconds, profiles, tokens, peak, cores, note in rows:
        ratio = f"{base / seconds:.2f}x" if base else "-"
        print(f"| {label} | {seconds:.2f} | {profiles / seconds:.2f} | {tokens / seconds:.1f} | {ratio} | "
              f"{peak:.0f} | {cores:.2f} | {note} |")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
