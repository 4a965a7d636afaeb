"""DPO step time and memory of the lettingo-trl aligner on CPU: float32 (the default) against
bfloat16, in one process, on the same pairs.

    .venv/bin/python benchmarks/bench_dpo.py [--pairs 8] [--batch-size 2] [--max-length 768]
        [--variants fp32 bf16-weights]

Pairs are real LettinGo profile prompts (MovieLens-100K users, ``bench_generation.profile_prompts``)
with a chosen and a rejected profile of about 90 tokens each, as the quickstart writes them.
Variants: ``fp32`` loads and trains in float32 (``aligner.dtype=float32``); ``bf16-weights``
loads the model in bfloat16 (``aligner.dtype=bfloat16``). Seconds per optimizer step are the median over steps after the first (warm-up);
``rss`` is the process's peak resident memory after the variant ran (it only grows); ``loss``
is the mean training loss, to show the variants train alike.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))

CHOSEN = ("Enjoys character-driven dramas and thoughtful science fiction, rates classic films highly, "
          "and prefers stories with strong performances and clever writing. Tends to dislike broad "
          "comedies and formulaic action sequels. Likely to enjoy acclaimed 1990s dramas, mysteries and "
          "well-made thrillers with a twist.")
REJECTED = ("This user watches many movies. They like some films and dislike others. Their taste is "
            "varied and includes several genres such as drama, comedy, action and thriller. They have "
            "rated a number of movies from different decades and may enjoy popular movies that other "
            "people also like to watch at home.")


def pairs(count: int):
    from bench_generation import profile_prompts

    from lettingo.types import PreferencePair

    return [
        PreferencePair(f"user-{i}", f"bench-{i}", messages, CHOSEN, REJECTED, 1.0)
        for i, messages in enumerate(profile_prompts(count))
    ]


class StepTimer:
    def __init__(self):
        from transformers import TrainerCallback

        timer = self

        class Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                timer.started = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                timer.steps.append(time.perf_counter() - timer.started)

        self.steps: list[float] = []
        self.callback = Callback()


def run_variant(variant: str, train_pairs, model: str, args) -> dict:
    from lettingo_trl.dpo import DPOAligner

    cfg = {"batch_size": args.batch_size, "max_length": args.max_length, "epochs": 1, "save_steps": 10_000,
           "dtype": "bfloat16" if variant == "bf16-weights" else "float32"}
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as out:
        aligned = DPOAligner(cfg, callbacks=[timer.callback]).train(train_pairs, model, Path(out))
        log = [json.loads(line) for line in (Path(out) / "training_log.jsonl").read_text().splitlines()]
    steady = timer.steps[1:] or timer.steps
    return {
        "variant": variant,
        "steps": len(timer.steps),
        "s/step": statistics.median(steady),
        "first": timer.steps[0],
        "loss": aligned.metrics["train_loss"],
        "losses": " ".join(f"{row['loss']:.3f}" for row in log),
        "margins": " ".join(f"{row['rewards/margins']:.3f}" for row in log),
        "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "load": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=768)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--variants", nargs="+", default=["fp32", "bf16-weights"])
    args = parser.parse_args()

    import torch

    from lettingo.models import resolve_model

    if args.threads:
        torch.set_num_threads(args.threads)
    model = resolve_model(args.model)
    train_pairs = pairs(args.pairs)
    print(f"model {args.model}, {len(train_pairs)} pairs, batch {args.batch_size}, max_length {args.max_length}, "
          f"torch threads {torch.get_num_threads()}, load before {os.getloadavg()[0]:.2f}")
    rows = [run_variant(v, train_pairs, model, args) for v in args.variants]
    base = rows[0]["s/step"]
    print(f"{'variant':<15}{'steps':>6}{'s/step':>9}{'first':>8}{'ratio':>8}{'loss':>9}{'rss GB':>8}{'load':>6}")
    for r in rows:
        print(f"{r['variant']:<15}{r['steps']:>6}{r['s/step']:>9.2f}{r['first']:>8.2f}{base / r['s/step']:>7.2f}x"
              f"{r['loss']:>9.4f}{r['rss_gb']:>8.2f}{r['load']:>6.2f}")
    for r in rows:
        print(f"{r['variant']}: per-step loss {r['losses']}; reward margin {r['margins']}")


if __name__ == "__main__":
    main()
