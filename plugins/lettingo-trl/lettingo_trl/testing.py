"""Pairs with a known preference and a check that a policy learned it: for tests of this plugin
and of aligners built on it."""

from __future__ import annotations

from lettingo.types import AlignedModel, PreferencePair

GENRES = ["films", "books", "restaurants"]


def make_pairs(n: int = 6) -> list[PreferencePair]:
    """Chosen profiles all praise science fiction, rejected ones all talk about cooking."""
    return [
        PreferencePair(
            user_id=f"u{i}",
            task_id=f"t{i}",
            prompt_messages=[
                {"role": "system", "content": "You write short user profiles for a recommender."},
                {"role": "user", "content": f"User {i} rated these {GENRES[i % 3]}: item {i}, item {i + 7}. "
                                            "Describe the user."},
            ],
            chosen="The user loves science fiction and space adventures.",
            rejected="The user mostly cares about cooking and kitchen gadgets.",
            margin=1.0,
        )
        for i in range(n)
    ]


def completion_logprob(model, tokenizer, messages, text) -> float:
    """Sum of log-probabilities of ``text`` as the assistant's answer to ``messages``."""
    import torch

    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": text}], tokenize=False)
    assert full.startswith(prompt)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(full[len(prompt):], add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + completion_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    targets = ids[0, 1:]
    token_logprobs = logprobs.gather(1, targets[:, None])[:, 0]
    return token_logprobs[len(prompt_ids) - 1:].sum().item()


def preference_gain(base_model: str, aligned: AlignedModel) -> float:
    """Mean over make_pairs() of (chosen − rejected log-prob) under the aligned policy minus the same
    under the base model: > 0 when training moved the policy towards the chosen profiles."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    base = AutoModelForCausalLM.from_pretrained(base_model).eval()
    if aligned.model_path:
        policy = AutoModelForCausalLM.from_pretrained(aligned.model_path).eval()
    else:
        policy = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_model), aligned.adapter_path).eval()

    def margin(model, pair):
        return (completion_logprob(model, tokenizer, pair.prompt_messages, pair.chosen)
                - completion_logprob(model, tokenizer, pair.prompt_messages, pair.rejected))

    pairs = make_pairs()
    return sum(margin(policy, p) - margin(base, p) for p in pairs) / len(pairs)
