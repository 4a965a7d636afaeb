"""DPO through lettingo against the same TRL ``DPOTrainer`` call written directly, in one run.

    .venv/bin/python benchmarks/alignment.py [--steps 8] [--max-pairs 16] [--batch-size 2]
        [--max-length 768] [--model smollm2-135m-instruct|tiny|DIR] [--pairs pairs.jsonl]
        [--repeat 1] [--variants ...] [--work-dir DIR] [--json PATH] [--dry-run]

Each variant trains in a fresh subprocess, so its peak memory (``ru_maxrss``) is its own and
nothing is warm from another variant:

  direct               the baseline: a hand-written ``trl.DPOTrainer`` call. The model loaded with
                       ``AutoModelForCausalLM.from_pretrained`` (float32), a ``peft.LoraConfig`` and a
                       ``DPOConfig`` with lettingo's settings (r/alpha/dropout/targets, beta, sigmoid
                       loss, learning rate, batch size, max_length, max_steps, seed, logging every
                       step, ``truncation_mode="keep_start"``, ``bf16=False`` on CPU) and lettingo's save
                       settings (``save_strategy="steps"``, ``save_steps`` 50, ``save_total_limit=1``: the
                       Trainer writes one checkpoint at the last step), the pairs in TRL's conversational
                       format; afterwards ``trainer.save_model`` + ``tokenizer.save_pretrained``
  direct-nosave        (optional) the same with ``save_strategy="no"``: what the end-of-training
                       checkpoint costs
  lettingo             ``DPOAligner({...}).train(pairs, model, out_dir)``: the whole lettingo path
                       (fingerprint, checkpoint handling, dataset checks, adapter, model card, log)
  lettingo+precompute  the same with ``precompute_ref_log_probs: true``
  lettingo+no-checkpointing, lettingo+precompute+no-checkpointing
                       ``gradient_checkpointing: false`` (activations kept, not recomputed in the
                       backward pass), alone and with the precomputed reference
  lettingo+lora-attention
                       LoRA on the attention projections only (q/k/v/o) instead of ``all-linear``
  lettingo+bf16        the model loaded in bfloat16 (``dtype: bfloat16``)
  lettingo+half-prompt today's settings on the same pairs with the older half of each prompt's
                       history lines dropped (what a prompt half as long costs)

Each lettingo variant's times are also printed as a ratio to ``lettingo`` (today's settings). Not
measurable with TRL 1.16: ``padding_free`` (its DPOTrainer warns and falls back to padding).

Times: ``loop`` is ``on_train_begin`` → ``on_train_end`` of a ``TrainerCallback`` (the same
measurement in every variant); ``train()`` is the wall time of the ``DPOTrainer.train`` call;
``setup`` is from the start of the variant to that call (tokenizer and model loading, dataset
tokenization, and with precompute the reference log-probabilities, which TRL computes in
``DPOTrainer.__init__``); ``after`` is from the end of ``train()`` to the adapter saved (lettingo:
also the model card, training log and ``DONE.json``); ``total`` is all of it (imports excluded in
every variant). ``steps/s`` = optimizer steps / loop seconds. ``peak MB`` is the variant process's
``ru_maxrss``. The JSON also has each run's median step time, CPU seconds, per-step losses (direct and
lettingo train on the same rows with the same seed, so their losses agree: the check that the two do
the same work) and the load average when it finished.

Pairs: ``--pairs FILE`` (``pairs.jsonl``: one ``PreferencePair`` a line), else the quickstart's: the
pipeline's prepare → explore → evaluate → pair stages with ``experiment=quickstart`` in
``<work-dir>/quickstart`` (resumed on reruns; the LLM-call cache answers repeated calls). The
first ``--max-pairs`` are used. ``--dry-run`` stops before training (with the quickstart pairs: the
prepare stage with ``dry_run=true`` and the estimate of what explore would ask for).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORK_DIR = ROOT / "benchmarks" / ".work" / "alignment"
PIPELINE_STAGES = ["prepare", "explore", "evaluate", "pair"]
# lettingo variants: aligner settings over today's (``lettingo``); each is a way to make a pair cheaper
LETTINGO_VARIANTS = {
    "lettingo": {},
    "lettingo+precompute": {"precompute_ref_log_probs": True},
    "lettingo+no-checkpointing": {"gradient_checkpointing": False},
    "lettingo+precompute+no-checkpointing": {"precompute_ref_log_probs": True, "gradient_checkpointing": False},
    "lettingo+lora-attention": {"lora": {"target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}},
    "lettingo+bf16": {"dtype": "bfloat16"},
    "lettingo+half-prompt": {},  # the same settings on prompts that keep the newer half of the history
}


def half_prompt(pair: dict) -> dict:
    """The pair with the older half of its numbered history lines dropped: what a prompt half as long
    costs (``prompt.max_items`` / ``protocol.profile_window`` shorten real prompts)."""
    def shorten(text: str) -> str:
        lines = text.split("\n")
        history = [i for i, line in enumerate(lines) if line[:1].isdigit() and ". " in line[:5]]
        drop = set(history[: len(history) // 2])
        return "\n".join(line for i, line in enumerate(lines) if i not in drop)

    return {**pair, "prompt_messages": [{**m, "content": shorten(m["content"])} for m in pair["prompt_messages"]]}


VARIANTS = ["direct", "direct-nosave", *LETTINGO_VARIANTS]
DEFAULT_VARIANTS = ["direct", "lettingo", "lettingo+precompute"]
RATIOS = [("lettingo", "direct"), ("direct-nosave", "direct"),
          *((v, "lettingo") for v in LETTINGO_VARIANTS if v != "lettingo")]
NUMBERS = ["steps", "loop_s", "train_call_s", "setup_s", "after_s", "total_s", "steps_per_s", "step_median_s",
           "peak_mb", "cpu_s", "mean_loss", "last_margin"]


# -- the child: one variant, one fresh process -------------------------------------------------------

def child(job_path: Path) -> None:
    job = json.loads(job_path.read_text())
    variant, settings = job["variant"], job["settings"]
    out = Path(job["out_dir"])

    # imports first, in every variant, so that no variant's times include them
    import torch

    if job.get("threads"):
        torch.set_num_threads(job["threads"])
    from transformers import TrainerCallback
    from trl import DPOTrainer

    if variant.startswith("lettingo"):
        from omegaconf import OmegaConf

        from lettingo.types import PreferencePair
        from lettingo_trl.dpo import DPOAligner
    else:
        from datasets import Dataset
        from peft import LoraConfig
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from trl import DPOConfig

    marks: dict[str, float] = {}
    steps: list[float] = []
    seen: dict = {}

    class Timer(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            marks["loop_begin"] = time.perf_counter()

        def on_step_begin(self, args, state, control, **kwargs):
            marks["step"] = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            steps.append(time.perf_counter() - marks["step"])

        def on_train_end(self, args, state, control, **kwargs):
            marks["loop_end"] = time.perf_counter()

    original_train = DPOTrainer.train

    def timed_train(self, *args, **kwargs):  # the same wrapper around DPOTrainer.train in every variant
        seen["trainer"] = self
        marks["train_begin"] = time.perf_counter()
        try:
            return original_train(self, *args, **kwargs)
        finally:
            marks["train_end"] = time.perf_counter()

    DPOTrainer.train = timed_train
    raw_pairs = [json.loads(line) for line in Path(job["pairs"]).read_text().splitlines() if line.strip()]
    if out.exists():
        shutil.rmtree(out)

    if variant.startswith("lettingo"):
        if variant == "lettingo+half-prompt":
            raw_pairs = [half_prompt(p) for p in raw_pairs]
        pairs = [PreferencePair.from_dict(p) for p in raw_pairs]
        cfg = OmegaConf.merge({"batch_size": settings["batch_size"], "max_length": settings["max_length"],
                               "max_steps": settings["max_steps"]}, LETTINGO_VARIANTS[variant])
        aligner = DPOAligner(cfg, None, callbacks=[Timer()])
        marks["start"] = time.perf_counter()
        aligned = aligner.train(pairs, job["model"], out)
        marks["end"] = time.perf_counter()
        assert aligned.adapter_path and (out / "DONE.json").exists()
    else:
        s = settings
        marks["start"] = time.perf_counter()
        tokenizer = AutoTokenizer.from_pretrained(job["model"])
        model = AutoModelForCausalLM.from_pretrained(job["model"], dtype=torch.float32)
        dataset = Dataset.from_list([
            {"prompt": [{"role": m["role"], "content": m["content"]} for m in p["prompt_messages"]],
             "chosen": [{"role": "assistant", "content": p["chosen"]}],
             "rejected": [{"role": "assistant", "content": p["rejected"]}]}
            for p in raw_pairs
        ])
        peft_config = LoraConfig(task_type="CAUSAL_LM", r=s["lora"]["r"], lora_alpha=s["lora"]["alpha"],
                                 lora_dropout=s["lora"]["dropout"], target_modules=s["lora"]["target_modules"])
        on_cpu = not torch.cuda.is_available()
        config = DPOConfig(
            output_dir=str(out / "checkpoints"),
            learning_rate=s["learning_rate"],
            num_train_epochs=s["epochs"],
            max_steps=s["max_steps"],
            per_device_train_batch_size=s["batch_size"],
            gradient_accumulation_steps=s["gradient_accumulation_steps"],
            max_length=s["max_length"],
            logging_steps=s["logging_steps"],
            save_strategy="no" if variant == "direct-nosave" else "steps",
            save_steps=s["save_steps"],
            save_total_limit=1,
            seed=s["seed"],
            data_seed=s["seed"],
            report_to=[],
            use_cpu=on_cpu,
            bf16=False,  # DPOConfig's default is True: autocast to bfloat16, even on a CPU
            fp16=False,
            beta=s["beta"],
            loss_type=s["loss_type"],
            precompute_ref_log_probs=False,
            truncation_mode="keep_start",
            **({"loss_weights": list(s["loss_weights"])} if s.get("loss_weights") else {}),
        )
        trainer = DPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=peft_config, callbacks=[Timer()])
        trainer.train()
        trainer.save_model(str(out / "adapter"))
        tokenizer.save_pretrained(out / "adapter")
        marks["end"] = time.perf_counter()

    usage = resource.getrusage(resource.RUSAGE_SELF)
    trainer = seen["trainer"]
    log = [row for row in trainer.state.log_history if "loss" in row]
    loop = marks["loop_end"] - marks["loop_begin"]
    n_steps = trainer.state.global_step
    result = {
        "variant": variant,
        "steps": n_steps,
        "loop_s": loop,
        "train_call_s": marks["train_end"] - marks["train_begin"],
        "setup_s": marks["train_begin"] - marks["start"],
        "after_s": marks["end"] - marks["train_end"],
        "total_s": marks["end"] - marks["start"],
        "steps_per_s": n_steps / loop,
        "step_median_s": statistics.median(steps[1:] or steps),
        "peak_mb": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,  # the whole process, imports included
        "mean_loss": sum(r["loss"] for r in log) / len(log) if log else float("nan"),
        "last_margin": log[-1].get("rewards/margins", float("nan")) if log else float("nan"),
        "losses": [r["loss"] for r in log],
        "pairs_kept": len(trainer.train_dataset),
        "torch_threads": torch.get_num_threads(),
    }
    Path(job["result"]).write_text(json.dumps(result))


def run_child(variant: str, run: int, model: str, pairs_file: Path, settings: dict, work_dir: Path,
              threads: int | None = None) -> dict:
    runs = work_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    name = f"{variant}-{run}"
    job = {"variant": variant, "model": model, "pairs": str(pairs_file), "settings": settings,
           "out_dir": str(runs / name), "result": str(runs / f"{name}.result.json"), "threads": threads}
    job_path = runs / f"{name}.job.json"
    job_path.write_text(json.dumps(job, indent=2))
    Path(job["result"]).unlink(missing_ok=True)
    log_path = runs / f"{name}.log"
    with log_path.open("w") as log:
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(job_path)],
                              stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, TQDM_DISABLE="1"))
    if done.returncode != 0 or not Path(job["result"]).exists():
        tail = "\n".join(log_path.read_text().strip().splitlines()[-15:])
        raise SystemExit(f"{variant} failed (exit {done.returncode}); its output ({log_path}) ends:\n{tail}")
    return json.loads(Path(job["result"]).read_text())


# -- the pairs ------------------------------------------------------------------------------------------

def quickstart_pairs(work_dir: Path, dry_run: bool) -> Path | None:
    """Run (or resume) prepare → explore → evaluate → pair of the quickstart in ``<work-dir>/quickstart``."""
    from lettingo import api
    from lettingo.pipeline import stage_fingerprints
    from lettingo.store import RunStore

    run_dir = work_dir / "quickstart"
    cfg = api.compose(["experiment=quickstart", *(["dry_run=true"] if dry_run else [])])
    fingerprints = stage_fingerprints(cfg)
    recorded = RunStore(run_dir).manifest().get("stages", {})
    todo = PIPELINE_STAGES
    for i, stage in enumerate(PIPELINE_STAGES):  # the first stage not done with these inputs, and the rest
        entry = recorded.get(stage, {})
        if entry.get("status") != "done" or entry.get("fingerprint") != fingerprints[stage][0]:
            todo = PIPELINE_STAGES[i:]
            break
    else:
        todo = []
    if dry_run:
        print(f"quickstart pairs: run dir {run_dir}; stages to run: {', '.join(todo) or 'none (pairs.jsonl is done)'}")
        if todo:
            estimate = api.run(cfg, run_dir, stages=["prepare"]).get("dry_run")
            print("dry run (prepare only), estimate:", json.dumps(estimate, default=str)[:1500])
        return None
    if todo:
        print(f"quickstart pairs: running {', '.join(todo)} in {run_dir} (resumes; cached LLM calls are free)",
              flush=True)
        started = time.perf_counter()
        api.run(cfg, run_dir, stages=todo)
        print(f"  pairs written in {time.perf_counter() - started:.0f} s", flush=True)
    return run_dir / "pairs.jsonl"


def describe_pairs(pairs: list[dict], model: str, settings: dict) -> dict:
    """Token counts, and whether lettingo's dataset rows equal the direct variant's (lettingo breaks up
    special-token spellings in the text; then the two would train on different strings)."""
    from transformers import AutoTokenizer

    from lettingo.types import PreferencePair
    from lettingo_trl.dpo import DPOAligner

    tokenizer = AutoTokenizer.from_pretrained(model)
    special = set(tokenizer.all_special_tokens) | {t.content for t in tokenizer.added_tokens_decoder.values()}
    lettingo_rows = DPOAligner(settings).examples([PreferencePair.from_dict(p) for p in pairs], special)
    direct_rows = [{"prompt": [{"role": m["role"], "content": m["content"]} for m in p["prompt_messages"]],
                    "chosen": [{"role": "assistant", "content": p["chosen"]}],
                    "rejected": [{"role": "assistant", "content": p["rejected"]}]} for p in pairs]
    prompt = [len(tokenizer(tokenizer.apply_chat_template(p["prompt_messages"], add_generation_prompt=True,
                                                          tokenize=False), add_special_tokens=False)["input_ids"])
              for p in pairs]
    profile = [max(len(tokenizer(p["chosen"])["input_ids"]), len(tokenizer(p["rejected"])["input_ids"]))
               for p in pairs]
    return {
        "pairs": len(pairs),
        "prompt_tokens_mean": statistics.fmean(prompt),
        "profile_tokens_mean": statistics.fmean(profile),
        "longest_pair_tokens": max(a + b for a, b in zip(prompt, profile)),
        "over_max_length": sum(a + b > settings["max_length"] for a, b in zip(prompt, profile)),
        "same_dataset_rows": lettingo_rows == direct_rows,
    }


# -- the parent -----------------------------------------------------------------------------------------

def median_row(rows: list[dict]) -> dict:
    out = dict(rows[0])
    for key in NUMBERS:
        out[key] = statistics.median(r[key] for r in rows)
    out["runs"] = len(rows)
    return out


def fmt(value, digits: int = 2) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        return child(Path(sys.argv[2]))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=Path, default=None, help="pairs.jsonl to train on (default: the quickstart's)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--model", default="smollm2-135m-instruct",
                        help="a packaged alias, a local directory or HF id; 'tiny': a random 2-layer model (smoke run)")
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps (max_steps)")
    parser.add_argument("--max-pairs", type=int, default=16, help="train on the first K pairs")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=768)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each variant; >1 reports the median")
    parser.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=VARIANTS)
    parser.add_argument("--threads", type=int, default=None, help="torch threads in each variant (default: torch's)")
    parser.add_argument("--json", type=Path, default=None,
                        help="write the numbers here (default <work-dir>/results.json)")
    parser.add_argument("--dry-run", action="store_true", help="find the pairs and print the plan; train nothing")
    args = parser.parse_args()

    work_dir = args.work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    if work_dir.is_relative_to(ROOT / "benchmarks" / ".work"):  # keep the benchmark's files out of git
        ignore = ROOT / "benchmarks" / ".work" / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n")

    from omegaconf import OmegaConf

    from lettingo.models import resolve_model
    from lettingo_trl.dpo import DPOAligner

    # lettingo's resolved settings: the lettingo variants get only the overrides below, the direct
    # variant writes every value out by hand from this
    overrides = {"batch_size": args.batch_size, "max_length": args.max_length, "max_steps": args.steps}
    settings = OmegaConf.to_container(DPOAligner(overrides).cfg, resolve=True)

    pairs_file = args.pairs
    if pairs_file is None:
        pairs_file = quickstart_pairs(work_dir, args.dry_run)
        if pairs_file is None:  # dry run
            print(f"would train {', '.join(args.variants)} on the first {args.max_pairs} quickstart pairs with "
                  f"{json.dumps(settings)}")
            return
    pairs = [json.loads(line) for line in Path(pairs_file).read_text().splitlines() if line.strip()]
    pairs = pairs[: args.max_pairs]
    if not pairs:
        raise SystemExit(f"{pairs_file} holds no pairs")
    used = work_dir / "pairs-used.jsonl"
    used.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs))

    if args.model == "tiny":
        from lettingo.testing import tiny_model_dir

        model = str(tiny_model_dir(work_dir / "tiny"))
    else:
        model = resolve_model(args.model)
    about = describe_pairs(pairs, model, settings)
    per_epoch = math.ceil(len(pairs) / args.batch_size)
    print(f"model {args.model} ({model})")
    print(f"pairs {len(pairs)} from {pairs_file}: prompt {about['prompt_tokens_mean']:.0f} tokens, "
          f"profile {about['profile_tokens_mean']:.0f} (mean), longest pair {about['longest_pair_tokens']}, "
          f"{about['over_max_length']} over max_length {args.max_length}; lettingo's dataset rows "
          f"{'equal' if about['same_dataset_rows'] else 'DIFFER from'} the direct ones")
    print(f"{args.steps} steps of batch {args.batch_size} ({per_epoch} steps make one pass over the pairs"
          f"{'; the data repeats' if args.steps > per_epoch else ''}); variants {', '.join(args.variants)}, "
          f"repeat {args.repeat}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)
    if args.dry_run:
        print("settings:", json.dumps(settings))
        return

    runs: dict[str, list[dict]] = {v: [] for v in args.variants}
    load_before = os.getloadavg()[0]
    if load_before > 0.5 * (os.cpu_count() or 1):
        print(f"warning: load average {load_before:.2f} on {os.cpu_count()} cores; other work competes for the "
              "cores and the times will be noisy (torch's threads wait on each other when a core is taken)")
    for run in range(args.repeat):  # interleaved, so drift in the machine's load hits every variant alike
        for variant in args.variants:
            result = run_child(variant, run, model, used, settings, work_dir, args.threads)
            result["load"] = os.getloadavg()[0]
            runs[variant].append(result)
            print(f"  {variant} run {run + 1}: {result['steps']} steps, loop {result['loop_s']:.2f} s "
                  f"(median step {result['step_median_s']:.3f} s), "
                  f"total {result['total_s']:.2f} s, peak {result['peak_mb']:.0f} MB, load {result['load']:.2f}",
                  flush=True)
    rows = {v: median_row(r) for v, r in runs.items()}

    print()
    label = "median of " + str(args.repeat) + " runs" if args.repeat > 1 else "one run each"
    print(f"| variant ({label}) | steps | loop s | train() s | setup s | after s | total s | steps/s | "
          "peak MB | mean loss | last margin |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for v, r in rows.items():
        print(f"| {v} | {r['steps']:.0f} | {fmt(r['loop_s'])} | {fmt(r['train_call_s'])} | {fmt(r['setup_s'])} | "
              f"{fmt(r['after_s'])} | {fmt(r['total_s'])} | {fmt(r['steps_per_s'], 3)} | {r['peak_mb']:.0f} | "
              f"{fmt(r['mean_loss'], 4)} | {fmt(r['last_margin'], 4)} |")

    ratios = {}
    print()
    print("| ratio | loop | train() | total | peak MB |")
    print("|---|---|---|---|---|")
    for top, bottom in RATIOS:
        if top in rows and bottom in rows:
            a, b = rows[top], rows[bottom]
            ratio = {k: a[k] / b[k] for k in ("loop_s", "train_call_s", "total_s", "peak_mb")}
            ratios[f"{top} / {bottom}"] = ratio
            print(f"| {top} / {bottom} | {ratio['loop_s']:.3f} | {ratio['train_call_s']:.3f} | "
                  f"{ratio['total_s']:.3f} | {ratio['peak_mb']:.3f} |")
    if "direct" in rows and "lettingo" in rows:
        d, lt = runs["direct"][0]["losses"], runs["lettingo"][0]["losses"]
        same = len(d) == len(lt) and all(abs(x - y) <= 1e-4 * max(1.0, abs(x)) for x, y in zip(d, lt))
        overhead = rows["lettingo"]["total_s"] / rows["direct"]["total_s"] - 1
        print(f"\nlettingo's overhead over the direct call: {overhead:+.1%} of the total "
              f"(target < +5%); per-step losses of direct and lettingo {'agree' if same else 'DIFFER'}: "
              f"{' '.join(f'{x:.4f}' for x in d)} | {' '.join(f'{x:.4f}' for x in lt)}")
    load_after = os.getloadavg()[0]
    print(f"load average before {load_before:.2f}, after {load_after:.2f} ({os.cpu_count()} cores)")

    out = args.json or work_dir / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "model": args.model, "model_path": model, "pairs_file": str(pairs_file), "pairs": about,
        "settings": settings, "steps": args.steps, "repeat": args.repeat, "cores": os.cpu_count(),
        "load_before": load_before, "load_after": load_after,
        "median": rows, "ratios": ratios, "runs": runs,
    }, indent=2))
    print(f"numbers: {out}")


if __name__ == "__main__":
    main()
