"""Start and stop vLLM's OpenAI-compatible server on 127.0.0.1 (tests, benchmarks, local serving).

The CPU build's ``vllm`` console script is broken, so this runs
``python -m vllm.entrypoints.openai.api_server``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def openai_server(model: str, served_name: str = "model", *, dtype: str = "float32", max_model_len: int = 2048,
                  cpu_kvcache_gb: int = 1, extra_args: tuple[str, ...] = (), startup_timeout_s: float = 900,
                  log_file: str | Path | None = None) -> Iterator[str]:
    """A running server for ``model``; yields its base URL (``http://127.0.0.1:PORT/v1``).

    A cold first start compiles the model (torch.compile, cached in ~/.cache/vllm): ~215 s on an idle
    2-core AVX2 CPU, longer under load, so the default wait is generous."""
    port = free_port()
    env = {**os.environ, "VLLM_NO_USAGE_STATS": "1"}
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(cpu_kvcache_gb))
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
        "--served-model-name", served_name, "--host", "127.0.0.1", "--port", str(port),
        "--dtype", dtype, "--max-model-len", str(max_model_len), "--max-logprobs", "20", *extra_args,
    ]
    log = open(log_file, "ab") if log_file else subprocess.DEVNULL
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the vLLM server for {model} exited with code {proc.returncode} while starting"
                                   + (f"; see {log_file}" if log_file else ""))
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the vLLM server for {model} did not answer /health in {startup_timeout_s} s")
            time.sleep(1)
        yield f"{base}/v1"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if log_file:
            log.close()
