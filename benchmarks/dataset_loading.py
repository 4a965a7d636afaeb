"""Preparing a large Amazon-format dataset: lettingo's streaming loader against pandas, in one run.

    .venv/bin/python benchmarks/dataset_loading.py [--lines 5000000] [--items 200000] [--workdir DIR]

Writes a synthetic Amazon Reviews 2018 category (``Books.json.gz``, one review per line with a
150-400 character review text, and ``meta_Books.json.gz``) and then, each in a fresh subprocess so
that peak memory is its own (``ru_maxrss``):

  (a) pandas ``read_json(lines=True)`` on the review file: the baseline every ratio is against
  (b) lettingo's ``amazon`` loader, cold: stream both files into the Parquet cache
  (c) the paper's protocol on the prepared dataset (what the prepare stage adds: ordering,
      duplicates, windows, 3,000 train + 2,000 test users, candidates, window review texts)
  (d) the loader again, warm: the Parquet cache is found and reused

Rows per second count review lines. The synthetic files are kept in ``--workdir`` and reused
when the same sizes are asked for again.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

WORDS = ("book story read author character plot great boring loved slow ending series writing "
         "recommend pages world twist novel first chapter style classic fun dark long short").split()


def write_synthetic(folder: Path, n_lines: int, n_items: int, seed: int = 0) -> None:
    """Amazon 2018 layout; users' activity is skewed (a few thousand long histories, many short)."""
    import orjson

    done = folder / f"done-{n_lines}-{n_items}"
    if done.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(25, 65))) for _ in range(5000)]
    with gzip.open(folder / "meta_Books.json.gz", "wb", compresslevel=1) as meta:
        for i in range(n_items):
            meta.write(orjson.dumps({
                "asin": f"B{i:09d}", "title": f"Book number {i}", "category": ["Books", rng.choice(WORDS).title()],
                "description": [texts[i % len(texts)]], "brand": f"Author {i % 997}",
                "feature": [], "also_buy": [], "rank": f"{i:,} in Books (", "price": "$9.99",
            }) + b"\n")
    n_users = max(n_lines // 40, 10)
    heavy = n_users // 20  # 5% of users write half the reviews: long histories, like real data
    start = 1_200_000_000
    with gzip.open(folder / "Books.json.gz", "wb", compresslevel=1) as reviews:
        for line in range(n_lines):
            user = rng.randrange(heavy) if line % 2 else rng.randrange(n_users)
            stamp = start + rng.randrange(300_000_000)
            reviews.write(orjson.dumps({
                "overall": float(rng.randint(1, 5)), "verified": True,
                "reviewTime": time.strftime("%m %d, %Y", time.gmtime(stamp)), "reviewerID": f"A{user:012d}",
                "asin": f"B{rng.randrange(n_items):09d}", "reviewerName": "Reader", "reviewText": texts[line % 5000],
                "summary": rng.choice(WORDS).title(), "unixReviewTime": stamp,
            }) + b"\n")
    done.touch()


CHILD = {
    "pandas": """
import pandas as pd
frame = pd.read_json(PATH / "Books.json.gz", lines=True)
ROWS = len(frame)
""",
    "lettingo": """
from omegaconf import OmegaConf
from lettingo.data.amazon import Amazon
cfg = OmegaConf.create({"path": str(PATH), "category": "Books", "cache": CACHE})
data = Amazon(cfg).load()
ROWS = data.report["interactions"] + data.report["bad_records"]["skipped"]
""",
    "protocol": """
from omegaconf import OmegaConf
from lettingo.data.amazon import Amazon
from lettingo.data.protocol import build_tasks
dataset = Amazon(OmegaConf.create({"path": str(PATH), "category": "Books"}))
data = dataset.load()
start = time.perf_counter()
protocol = OmegaConf.load(ROOT / "conf/protocol/paper.yaml")
protocol.seed = 0
tasks, summary = build_tasks(data, protocol, dataset.cfg)
ROWS = data.report["interactions"]
EXTRA = {"tasks": len(tasks), "protocol_seconds": time.perf_counter() - start}
""",
}


def run_child(kind: str, path: Path, cache_dir: Path, cache: bool = True) -> dict:
    code = (
        "import json, resource, sys, time\nfrom pathlib import Path\n"
        f"ROOT = Path({str(Path(__file__).resolve().parents[1])!r}); PATH = Path({str(path)!r}); CACHE = {cache!r}\n"
        "sys.path.insert(0, str(ROOT)); EXTRA = {}\nstart = time.perf_counter()\n"
        + CHILD[kind]
        + "\nprint(json.dumps({'seconds': time.perf_counter() - start, 'rows': ROWS, "
        "'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **EXTRA}))\n"
    )
    env = dict(os.environ, LETTINGO_CACHE_DIR=str(cache_dir))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["killed"])[-1], "returncode": out.returncode}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=5_000_000)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/lettingo-bench-datasets"))
    parser.add_argument("--skip", nargs="*", default=[], choices=["a", "b", "c", "d"])
    args = parser.parse_args()
    data_dir = args.workdir / f"amazon-{args.lines}"
    started = time.perf_counter()
    write_synthetic(data_dir, args.lines, args.items)
    size = (data_dir / "Books.json.gz").stat().st_size
    print(f"synthetic Books.json.gz: {args.lines:,} lines, {size / 1e6:.0f} MB gzip "
          f"(written or found in {time.perf_counter() - started:.0f} s); load {os.getloadavg()[0]:.2f}")
    cache_dir = args.workdir / "cache"
    paths = {
        "a": ("(a) pandas read_json(lines=True)", "pandas", True),
        "b": ("(b) lettingo amazon loader, cold", "lettingo", False),
        "c": ("(c) + paper protocol (5,000 users)", "protocol", True),
        "d": ("(d) lettingo amazon loader, warm", "lettingo", True),
    }
    results = {}
    for key, (label, kind, cache) in paths.items():
        if key in args.skip:
            continue
        results[key] = run_child(kind, data_dir, cache_dir, cache)
        result, base = results[key], results.get("a", {})
        if "error" in result:
            print(f"{label:40s} failed: {result['error']} (rc {result['returncode']})")
            continue
        rate = result["rows"] / result["seconds"]
        ratios = ""
        if "seconds" in base and key != "a":
            ratios = (f"  time x{result['seconds'] / base['seconds']:.2f}, "
                      f"memory x{result['peak_mb'] / base['peak_mb']:.3f} of pandas")
        extra = "".join(f", {k} {v:.1f}" if isinstance(v, float) else f", {k} {v}"
                        for k, v in result.items() if k not in ("seconds", "rows", "peak_mb"))
        print(f"{label:40s} {result['seconds']:8.1f} s {rate:12,.0f} rows/s  peak {result['peak_mb']:8,.0f} MB"
              f"{extra}{ratios}  (load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
