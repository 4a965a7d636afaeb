"""Profile-writing throughput of the transformers backend: one prompt per ``generate`` call (the
old path) against prompts batched per call, in the same process on the same prompts and seeds.

    .venv/bin/python benchmarks/bench_generation.py [--model smollm2-135m-instruct] [--prompts 16]
        [--n 1] [--max-new-tokens 64] [--batch-size 16] [--threads N] [--legacy]

The test stage writes 1 profile per user (``--n 1``), explore several (``--n 4 --prompts 8``
keeps a run near two minutes on two cores).

Prompts are real LettinGo profile prompts (``LettinGoPrompt``) over MovieLens-100K users' oldest
ratings (the packaged copy), 8 to 14 movies each, so lengths vary as in a run. Tokens/s counts the
generated tokens up to each answer's end-of-turn. Because each row samples with its own seeded
generator, both paths should write the same profiles; the ``same`` column counts the prompts whose
samples are identical to the one-prompt-per-call path, which shows how rarely batched float
noise flips a token. Ratios are against "one prompt per call", which already shares a prompt's
prefill among its n samples; ``--legacy`` adds the path without that sharing.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def profile_prompts(count: int) -> list[list[dict[str, str]]]:
    """LettinGo prompts for the first ``count`` MovieLens users with enough ratings."""
    from omegaconf import OmegaConf

    from lettingo.data.movielens import MovieLens
    from lettingo.prompts.lettingo import LettinGoPrompt
    from lettingo.run_data import RunData
    from lettingo.types import Interaction, UserTask

    data = MovieLens(OmegaConf.create({"path": None, "like_min": 4, "dislike_max": 2})).load()
    prompt = LettinGoPrompt()
    frame = data.interactions().astype({"user_id": str, "item_id": str}).sort_values(["user_id", "timestamp"],
                                                                                   kind="stable")
    run_data = RunData(data.items(), like_min=4, dislike_max=2)
    prompts = []
    for user_id, rows in frame.groupby("user_id", sort=True):
        window = 8 + len(prompts) % 7
        if len(rows) < window + 1:
            continue
        interactions = [
            Interaction(str(r.user_id), str(r.item_id), float(r.rating), int(r.timestamp))
            for r in rows.head(window + 1).itertuples()
        ]
        task = UserTask(
            task_id=f"bench-{user_id}", user_id=str(user_id), split="test",
            profile_window=interactions[:-1], recent_window=[], target=interactions[-1],
            label="like", candidates=[], candidate_seed=0,
        )
        prompts.append(prompt.messages(task, run_data))
        if len(prompts) == count:
            break
    return prompts


def timed_generate(llm, prompts, params, seeds) -> tuple[float, int, list[list[str]]]:
    started = time.perf_counter()
    out = llm.generate(prompts, params, seeds)
    seconds = time.perf_counter() - started
    tokens = sum(g.usage["completion_tokens"] for samples in out for g in samples)
    return seconds, tokens, [[g.text for g in samples] for samples in out]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--n", type=int, nargs="+", default=[1], help="samples per prompt, e.g. --n 1 4")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16, help="generate_batch_size of the batched path")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument(
        "--legacy", action="store_true",
        help="also time one prompt per call with each sample prefilled on its own (the backend before "
        "batching: generate(num_return_sequences=n) prefills the prompt n times)",
    )
    args = parser.parse_args()

    import torch

    from lettingo.llm import SamplingParams
    from lettingo_transformers.backend import TransformersLLM
    from lettingo_transformers.sampling import plan_batches

    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (torch threads "
          f"{args.threads or torch.get_num_threads()})")
    llm = TransformersLLM(model=args.model, device="cpu", threads=args.threads)
    prompts = profile_prompts(args.prompts)
    lengths = sorted(len(llm._encode(p)) for p in prompts)
    print(f"{len(prompts)} prompts of {lengths[0]}-{lengths[-1]} tokens (median {lengths[len(lengths) // 2]}), "
          f"max_new_tokens {args.max_new_tokens}, temperature {args.temperature}, top_p {args.top_p}")
    seeds = [1000 + i for i in range(len(prompts))]
    llm.generate(prompts[:2], SamplingParams(max_new_tokens=4), seeds[:2])  # warm-up

    header = (
        f"{'n':>3} {'path':<22} {'calls':>5} {'seconds':>8} {'tokens':>7} {'tokens/s':>9} {'ratio':>6} "
        f"{'same':>7} {'load':>5}"
    )
    print(header)
    print("-" * len(header))
    for n in args.n:
        params = SamplingParams(args.temperature, args.top_p, args.max_new_tokens, n)
        paths = [("one prompt per call", n, True)]
        if args.legacy and n > 1:
            paths.append(("per prompt, n prefills", n, False))
        paths.append((f"batched ({args.batch_size} seqs)", args.batch_size, True))
        base_rate = base_texts = None
        for label, batch_size, shared_prefill in paths:
            llm.generate_batch_size = batch_size
            if not shared_prefill:
                llm._prefill = lambda *unused: None  # each sample's row prefilled on its own
            rows_per_prompt = 1 if args.temperature <= 0 else n
            calls = len(plan_batches([len(p) for p in prompts], rows_per_prompt, batch_size))
            seconds, tokens, texts = timed_generate(llm, prompts, params, seeds)
            llm.__dict__.pop("_prefill", None)
            rate = tokens / seconds
            if base_rate is None:
                base_rate, base_texts, same = rate, texts, ""
            else:
                same = f"{sum(a == b for a, b in zip(base_texts, texts))}/{len(prompts)}"
            print(f"{n:>3} {label:<22} {calls:>5} {seconds:>8.1f} {tokens:>7} {rate:>9.1f} "
                  f"{rate / base_rate:>6.2f} {same:>7} {os.getloadavg()[0]:>5.1f}", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    llm.close()


if __name__ == "__main__":
    main()
