"""Per-row sampling, so prompts can share a ``generate`` call without sharing randomness.

Hugging Face sampling draws every row's next token from one global random stream, so a prompt's
samples would depend on which other prompts share its batch. Here each row (prompt ``i``, sample
``j``) owns a ``torch.Generator`` seeded from ``(seeds[i], j)``; a logits processor draws the
row's token by inverse CDF and forces it, while ``generate`` itself runs greedy. Inverse CDF in
token-id order (not sorted by probability) keeps the choice stable under the last-bit float noise
that left-padded batched forward passes add: a token flips only when the row's uniform draw lands
within that noise of a cumulative-probability boundary.
"""

from __future__ import annotations

import hashlib

import torch
from transformers import LogitsProcessor


def row_seed(seed: int, sample: int) -> int:
    """The generator seed of sample ``sample`` of a prompt sampled with ``seed`` (63 bits)."""
    digest = hashlib.sha256(f"lettingo-row/{int(seed)}/{int(sample)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def top_p_mask(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Per row, the smallest set of most likely tokens whose mass reaches ``top_p`` (never empty)."""
    if top_p >= 1.0:
        return probs > 0
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    mass_before = sorted_probs.cumsum(-1) - sorted_probs
    keep_sorted = mass_before < top_p
    keep_sorted[:, 0] = True
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)


def inverse_cdf_tokens(
    logits: torch.Tensor, temperature: float, top_p: float, uniforms: torch.Tensor
) -> torch.Tensor:
    """Each row's token: the first (by token id) whose cumulative probability exceeds its uniform.

    Probabilities are computed in float64 from ``logits / temperature`` and cut to ``top_p``;
    ``uniforms`` holds one draw in [0, 1) per row.
    """
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    probs = probs * top_p_mask(probs, top_p)
    cdf = probs.cumsum(-1)
    targets = (uniforms.to(cdf) * cdf[:, -1])[:, None]
    tokens = torch.searchsorted(cdf, targets, right=True)[:, 0]
    return tokens.clamp(max=logits.shape[-1] - 1)


class RowSampler(LogitsProcessor):
    """Samples row ``r``'s next token with generator ``r`` and returns logits that force it.

    Use with ``do_sample=False``: greedy decoding then picks exactly the forced token, and no
    temperature/top-k/top-p warper of ``generate`` runs. A finished row keeps drawing from its own
    generator (its output is padding by then), which no other row can see.
    """

    def __init__(self, seeds: list[int], temperature: float, top_p: float):
        if temperature <= 0:
            raise ValueError("RowSampler needs temperature > 0; temperature 0 is plain greedy decoding")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.temperature = float(temperature)
        self.top_p = float(top_p)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[0] != len(self.generators):
            raise RuntimeError(f"RowSampler has {len(self.generators)} generators for {scores.shape[0]} rows")
        # CPU generators: the same seed gives the same draws on every device.
        uniforms = torch.cat([torch.rand(1, generator=g, dtype=torch.float64) for g in self.generators])
        tokens = inverse_cdf_tokens(scores, self.temperature, self.top_p, uniforms.to(scores.device))
        forced = torch.full_like(scores, float("-inf"))
        return forced.scatter_(1, tokens[:, None], 0.0)


def plan_batches(lengths: list[int], per_prompt: int, max_sequences: int) -> list[list[int]]:
    """Prompt indices for each ``generate`` call: prompts of similar length together (less padding),
    at most ``max_sequences`` rows (``per_prompt`` each) per call, but always at least one prompt."""
    order = sorted(range(len(lengths)), key=lambda index: (lengths[index], index))
    prompts_per_call = max(1, max_sequences // max(1, per_prompt))
    return [order[start : start + prompts_per_call] for start in range(0, len(order), prompts_per_call)]
