"""Log-probabilities of preference pairs under a trained policy and its reference.

They give DPO's implicit reward, beta * [(log pi(c) - log ref(c)) - (log pi(r) - log ref(r))], on
pairs the training never saw: whether the learned preference generalises to other users, which
the training loss and training reward accuracy cannot say. The prompt is run once per pair and
both profiles continue from its key-value cache (a prompt is ~6x longer than a profile).
"""

from __future__ import annotations

from typing import Any

from lettingo.types import PreferencePair


def load_policy(base_model: str, adapter: str | None = None, model_path: str | None = None, dtype: str = "float32"):
    """The model a round starts from or ends with: ``model_path`` (a whole fine-tune), or
    ``base_model`` with ``adapter`` (LoRA) merged in, or ``base_model`` alone."""
    import torch
    from transformers import AutoModelForCausalLM

    torch_dtype = getattr(torch, dtype) if dtype != "auto" else "auto"
    model = AutoModelForCausalLM.from_pretrained(model_path or base_model, dtype=torch_dtype)
    if adapter and not model_path:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    return model.eval()


def completion_ids(tokenizer, messages: list[dict[str, str]], texts: list[str]) -> tuple[list[int], list[list[int]]]:
    """Token ids of the templated prompt and of each text as the assistant's answer, split where
    the chat template puts the generation prompt (as TRL splits prompt and completion)."""
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    completions = []
    for text in texts:
        full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": text}], tokenize=False)
        if not full.startswith(prompt):  # a template that rewrites earlier turns: keep what follows the prompt
            raise ValueError("the chat template renders the prompt differently once an answer follows; "
                             "pair scoring needs a template whose prompt is a prefix of prompt + answer")
        completions.append(tokenizer(full[len(prompt):], add_special_tokens=False)["input_ids"])
    return tokenizer(prompt, add_special_tokens=False)["input_ids"], completions


def completion_logprobs(model, prompt_ids: list[int], completions: list[list[int]]) -> list[float]:
    """Summed log-probability of each completion after the prompt; the prompt is encoded once."""
    import torch

    with torch.inference_mode():
        prompt = torch.tensor([prompt_ids])
        out = model(input_ids=prompt, use_cache=True)
        first = torch.log_softmax(out.logits[0, -1].float(), -1)  # predicts each completion's first token
        width = max(len(c) for c in completions)
        rows = len(completions)
        ids = torch.full((rows, width), 0, dtype=torch.long)
        for row, tokens in enumerate(completions):
            ids[row, :len(tokens)] = torch.tensor(tokens)
        cache = out.past_key_values
        cache.batch_repeat_interleave(rows)
        # right padding: a padded position comes after every real one, so causal attention keeps
        # it out of the real tokens' logits, which are the only ones read
        mask = torch.ones((rows, len(prompt_ids) + width), dtype=torch.long)
        logits = model(input_ids=ids, past_key_values=cache, attention_mask=mask).logits.float()
        logprobs = torch.log_softmax(logits, -1)
        sums = []
        for row, tokens in enumerate(completions):
            if not tokens:
                sums.append(0.0)
                continue
            total = first[tokens[0]].item()
            if len(tokens) > 1:
                targets = torch.tensor(tokens[1:])
                total += logprobs[row, :len(tokens) - 1].gather(1, targets[:, None]).sum().item()
            sums.append(total)
    return sums


def score_pairs(pairs: list[PreferencePair], policy, reference, tokenizer, special: set[str],
                max_length: int | None = None) -> list[dict[str, Any]]:
    """Per pair: summed log-probs of chosen and rejected under ``policy`` and ``reference``.
    Pairs are cut like training cuts them (``max_length``, keeping the start)."""
    from lettingo_trl.aligner import _as_text, conversational_prompt

    rows = []
    for pair in pairs:
        prompt_ids, (chosen, rejected) = completion_ids(
            tokenizer, conversational_prompt(pair, special), [_as_text(pair.chosen, special), _as_text(pair.rejected, special)])
        if max_length is not None:
            room = max(0, int(max_length) - len(prompt_ids))
            chosen, rejected = chosen[:room], rejected[:room]
        row = {"user_id": pair.user_id, "task_id": pair.task_id, "chosen_id": pair.chosen_id,
               "rejected_id": pair.rejected_id, "recommender_margin": pair.margin}
        for name, model in (("policy", policy), ("reference", reference)):
            row[f"{name}_chosen"], row[f"{name}_rejected"] = completion_logprobs(model, prompt_ids, [chosen, rejected])
        rows.append(row)
    return rows
